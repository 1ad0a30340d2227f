// `spvit selftest sp`: proves on this installation (any grid, any rank count) that the sequence-parallel encoder
// gives the single-process result. Prints max_rel_err_out=... max_rel_err_grad=...; exits 1 above tolerance.
#include <cstdio>

#include "app_context.h"
#include "spvit/core/device.h"
#include "spvit/core/dtype.h"
#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/core/timer.h"
#include "spvit/model/attention.h"
#include "spvit/model/selftest.h"

namespace spvit::app {

namespace {

// The strategies that shard a sequence (the selftest compares one of them with the single-rank reference).
std::vector<std::string> sharding_strategies() {
  return model::attention_strategies().names_where([](const auto& e) { return e.shards_sequence; });
}

// "all_to_all 2 calls (sent 1.2 MB, received 1.2 MB)" for every operation used, per layer.
std::string per_layer_calls(const dist::OpCounters& c, int64_t layers) {
  std::string text;
  for (size_t k = 0; k < dist::OpCounters::kOps; ++k) {
    if (c.calls[k] == 0) continue;
    const auto op = static_cast<dist::CollectiveOp>(k);
    char line[160];
    std::snprintf(line, sizeof line, "%s%s x%g", text.empty() ? "" : ", ", dist::op_name(op),
                  static_cast<double>(c.calls[k]) / static_cast<double>(layers));
    text += line;
  }
  return text.empty() ? "none" : text;
}

void print_accounting(const model::SelftestResult& r, int64_t layers) {
  std::printf("collectives per layer on the sequence group (rank 0): forward %s; backward %s\n",
              per_layer_calls(r.forward, layers).c_str(), per_layer_calls(r.backward, layers).c_str());
  std::printf("bytes per layer and rank (forward sent/received, backward sent/received, kept for backward by the "
              "attention):\n");
  for (size_t rank = 0; rank < r.per_rank.size(); ++rank) {
    const auto& a = r.per_rank[rank];
    std::printf("  rank %zu: forward %lld / %lld, backward %lld / %lld, kept %lld\n", rank,
                static_cast<long long>(a.forward_sent), static_cast<long long>(a.forward_received),
                static_cast<long long>(a.backward_sent), static_cast<long long>(a.backward_received),
                static_cast<long long>(a.kept));
  }
}

void add_selftest_command(CLI::App& app, AppContext& ctx) {
  auto* selftest = app.add_subcommand("selftest", "Correctness checks for a cluster installation");
  selftest->require_subcommand(1);
  auto* sp = selftest->add_subcommand("sp", "Sequence-parallel encoder vs the single-process reference");

  struct Args {
    std::string grid;
    std::string dtype = "float64";
    std::string device = "cpu";
    std::string backend = "auto";
    double timeout_s = 120;
    model::SelftestOptions options;
  };
  auto args = std::make_shared<Args>();
  auto& o = args->options;
  sp->add_option("--grid", args->grid, "DATAxSEQ process grid (default 1xWORLD)");
  sp->add_option("--length", o.length, "tokens per sample")->default_val(o.length)->check(CLI::PositiveNumber);
  sp->add_option("--layers", o.layers, "transformer blocks")->default_val(o.layers)->check(CLI::PositiveNumber);
  sp->add_option("--dim", o.dim, "embedding width")->default_val(o.dim)->check(CLI::PositiveNumber);
  sp->add_option("--heads", o.heads, "attention heads")->default_val(o.heads)->check(CLI::PositiveNumber);
  sp->add_option("--batch", o.batch, "samples per data group")->default_val(o.batch)->check(CLI::PositiveNumber);
  sp->add_option("--dtype", args->dtype, "float64 or float32")
      ->default_val(args->dtype)->check(CLI::IsMember(dtype_names()));
  sp->add_option("--strategy", o.strategy, "sequence-parallel attention strategy: " + join_names(sharding_strategies()))
      ->default_val(o.strategy)->check(CLI::IsMember(sharding_strategies()));
  sp->add_option("--ulysses-size", o.ulysses_size, "hybrid: ranks per Ulysses group (divides SEQ; default SEQ)")
      ->default_val(o.ulysses_size)->check(CLI::NonNegativeNumber);
  sp->add_option("--hybrid-outer", o.hybrid_outer, "hybrid: strategy across the Ulysses groups, lss-kv or ring")
      ->default_val(o.hybrid_outer)->check(CLI::IsMember({"lss-kv", "ring"}));
  sp->add_flag("--checkpointing", o.checkpointing, "recompute every block in backward");
  sp->add_option("--pos", o.pos_encoding, "positional encoding: grid or coords")
      ->default_val(o.pos_encoding)->check(CLI::IsMember({"grid", "coords"}));
  sp->add_option("--grad-average", o.grad_average, "flat or two-stage")
      ->default_val(o.grad_average)->check(CLI::IsMember({"flat", "two-stage"}));
  sp->add_option("--bucket-mb", o.bucket_mb, "gradient bucket size in MB")->default_val(o.bucket_mb);
  sp->add_option("--empty-tokens", o.empty_tokens, "mark the last N tokens as empty adaptive slots")
      ->default_val(o.empty_tokens);
  sp->add_option("--seed", o.seed, "random seed")->default_val(o.seed);
  sp->add_option("--device", args->device, "where the distributed step runs: cpu, cuda or auto (reference: cpu)")
      ->default_val(args->device)->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  sp->add_option("--backend", args->backend, "communicators: auto (nccl on GPUs when built in), mpi or nccl")
      ->default_val(args->backend)->check(CLI::IsMember({"auto", "mpi", "nccl"}));
  sp->add_option("--timeout", args->timeout_s, "seconds before a stuck collective ends the run")
      ->default_val(args->timeout_s);

  sp->callback([&ctx, args]() {
    ctx.run = [&ctx, args]() {
      auto& o = args->options;
      o.dtype = parse_dtype(args->dtype);
      dist::GridShape shape{0, ctx.world_size};
      if (!args->grid.empty()) shape = dist::GridShape::parse(args->grid);
      if (o.dim % o.heads != 0) SPVIT_THROW(ConfigError, "--dim ", o.dim, " must be divisible by --heads ", o.heads);
      auto grid = make_grid(shape, args->timeout_s, args->device, args->backend);
      if (o.ulysses_size == 0) o.ulysses_size = grid.seq_size();
      if (o.strategy == "hybrid" && grid.seq_size() % o.ulysses_size != 0) {
        SPVIT_THROW(ConfigError, "--ulysses-size ", o.ulysses_size, " must divide the grid's sequence ranks (",
                    grid.seq_size(), ")");
      }
      o.device = select_device(args->device, grid.local_rank());
      log::info("selftest sp: L={} layers={} dim={} heads={} batch={} dtype={} strategy={}{} grad-average={} "
                "device={} ({} communicators)", o.length, o.layers, o.dim, o.heads, o.batch, args->dtype,
                o.strategy == "hybrid" ? fmt::format("hybrid (ulysses {} x {})", o.ulysses_size, o.hybrid_outer)
                                       : o.strategy,
                o.checkpointing ? " +checkpointing" : "", o.grad_average, o.device.str(), grid.backend());
      Stopwatch watch;
      const auto r = model::run_sequence_parallel_selftest(grid, o);
      if (ctx.world_rank == 0) {
        std::printf("max_rel_err_out=%.3e max_rel_err_loss=%.3e max_rel_err_grad=%.3e tolerance=%.0e\n",
                    r.max_rel_err_out, r.max_rel_err_loss, r.max_rel_err_grad, r.tolerance);
        std::printf("seq collectives per step: forward all_gather=%lld, backward all_gather=%lld (recompute), "
                    "backward reduce_scatter=%lld, other=%lld, over %lld layers; gradient buckets=%d\n",
                    static_cast<long long>(r.forward_all_gathers), static_cast<long long>(r.backward_all_gathers),
                    static_cast<long long>(r.backward_reduce_scatters),
                    static_cast<long long>(r.other_seq_collectives), static_cast<long long>(o.layers), r.buckets);
        print_accounting(r, o.layers);
        std::printf("%s (grid %s, %.2f s)\n", r.passed() ? "PASSED" : "FAILED", grid.shape().str().c_str(),
                    watch.seconds());
        std::fflush(stdout);
      }
      return r.passed() ? 0 : 1;
    };
  });
}

const CommandRegistration selftest_registration("selftest", add_selftest_command);

}  // namespace
}  // namespace spvit::app
