#include "app_context.h"

#include <map>
#include <thread>

#include "spvit/core/logging.h"

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

dist::ProcessGrid make_grid(const dist::GridShape& shape, double timeout_s) {
  auto grid = dist::ProcessGrid::create(shape, timeout_s);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = std::max(1, cores / std::max(1, grid.local_size()));
  if (grid.local_size() > 1 && std::getenv("OMP_NUM_THREADS") == nullptr) torch::set_num_threads(threads);
  log::info("grid {} (data x seq) over {} ranks; {} rank(s) on this node; {} CPU thread(s) per rank",
            grid.shape().str(), grid.world_size(), grid.local_size(), torch::get_num_threads());
  return grid;
}

}  // namespace spvit::app
