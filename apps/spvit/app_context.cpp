#include "app_context.h"

#include <map>
#include <thread>

#include "spvit/core/device.h"
#include "spvit/core/logging.h"
#include "spvit/dist/nccl_communicator.h"

namespace spvit::app {
namespace {
std::map<std::string, AddCommand>& registry() {
  static std::map<std::string, AddCommand> commands;  // function-local: safe during static initialisation
  return commands;
}
}  // namespace

CommandRegistration::CommandRegistration(const char* name, AddCommand add) { registry()[name] = add; }

void add_registered_commands(CLI::App& app, AppContext& ctx) {
  for (const auto& [name, add] : registry()) add(app, ctx);
}

dist::ProcessGrid make_grid(const dist::GridShape& shape, double timeout_s, const std::string& device,
                            const std::string& backend) {
  const int local_rank = dist::node_local_rank();
  const torch::Device dev = select_device(device, local_rank);
  std::string chosen = resolve_backend(backend, dev, dist::nccl_compiled_in());
  // Every rank must choose the same backend: fall back if any node has more ranks than GPUs.
  const int ranks_on_node = dist::node_local_size();
  const bool shared_gpu = ranks_on_node > static_cast<int>(torch::cuda::device_count());
  if (backend == "auto" && dist::world_max(chosen == "nccl" && shared_gpu ? 1 : 0) == 1) {
    // NCCL refuses two ranks on one GPU; MPI (host-staged) still works, e.g. for tests on a one-GPU machine.
    chosen = "mpi";
    log::info("{} ranks share {} GPU(s) on this node: using MPI communicators instead of NCCL", ranks_on_node,
              torch::cuda::device_count());
  }
  auto grid = dist::ProcessGrid::create(shape, timeout_s, chosen, dev.is_cuda() ? dev.index() : -1);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = std::max(1, cores / std::max(1, grid.local_size()));
  if (grid.local_size() > 1 && std::getenv("OMP_NUM_THREADS") == nullptr) torch::set_num_threads(threads);
  log::info("grid {} (data x seq) over {} ranks; {} rank(s) on this node; {} CPU thread(s) per rank; device {}; "
            "{} communicators", grid.shape().str(), grid.world_size(), grid.local_size(), torch::get_num_threads(),
            dev.str(), grid.backend());
  return grid;
}

}  // namespace spvit::app
