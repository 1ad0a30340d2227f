#include "spvit/dist/output_agreement.h"

#include <torch/torch.h>

namespace spvit::dist {

void agree_on_write_errors(const std::shared_ptr<Communicator>& world, const std::string& local_error) {
  bool any_failed = !local_error.empty();
  if (world && world->size() > 1) {
    auto flag = torch::tensor({local_error.empty() ? 0.0 : 1.0}, torch::kFloat64);
    world->all_reduce(flag, ReduceOp::Max)->wait();
    any_failed = flag.item<double>() > 0;
  }
  if (!any_failed) return;
  if (!local_error.empty()) throw WriteError(local_error);
  throw PeerWriteError("another rank could not write its output (its message says which file and why)");
}

void write_on_one_rank(const std::shared_ptr<Communicator>& world, bool writes, const std::function<void()>& write) {
  std::string error;
  if (writes) {
    try {
      write();
    } catch (const WriteError& e) {
      error = e.what();
    }
  }
  agree_on_write_errors(world, error);
}

}  // namespace spvit::dist
