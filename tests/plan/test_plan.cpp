// The performance model's pieces on their own (docs/scaling.md, "Performance model"): machine files, the α–β
// collective times against the algorithms run step by step, oversubscription, docs/cluster.md's worked example, the planner.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "spvit/core/error.h"
#include "spvit/plan/planner.h"

namespace spvit::plan {
namespace {

std::filesystem::path machines_dir() {
  const char* fixtures = std::getenv("SPVIT_FIXTURE_DIR");  // tests/fixtures, set by the ctest entry
  EXPECT_NE(fixtures, nullptr) << "SPVIT_FIXTURE_DIR is not set: run this test through ctest";
  return std::filesystem::path(fixtures ? fixtures : ".") / ".." / ".." / "machines";
}

MachineSpec machine(const std::string& name) { return load_machine((machines_dir() / (name + ".yaml")).string()); }

// `text` written as a machine file and read back by the loader.
MachineSpec load_text(const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / "spvit-machine-test.yaml";
  std::ofstream(path) << text;
  auto m = load_machine(path.string());
  std::filesystem::remove(path);
  return m;
}

// The loader must refuse `text` with an error that names `key`; `what` says what was wrong with it.
void expect_refused(const std::string& text, const std::string& key, const std::string& what) {
  try {
    load_text(text);
    ADD_FAILURE() << what << " was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'" + key + "'"), std::string::npos) << e.what();
  }
}

TEST(MachineFiles, EveryShippedMachineLoadsAndRoundTrips) {
  int loaded = 0;
  for (const auto& entry : std::filesystem::directory_iterator(machines_dir())) {
    if (entry.path().extension() != ".yaml") continue;
    const auto m = load_machine(entry.path().string());  // throws on a number without a source
    const auto again = load_text(machine_yaml(m));
    EXPECT_EQ(again.name, m.name);
    EXPECT_DOUBLE_EQ(again.intra_node.bandwidth_gbs.value, m.intra_node.bandwidth_gbs.value);
    EXPECT_EQ(again.matmul_tflops.size(), m.matmul_tflops.size());
    EXPECT_EQ(again.inter_node.latency_us.source, m.inter_node.latency_us.source);
    ++loaded;
  }
  EXPECT_GE(loaded, 5) << "frontier, summit, dgx-h100, dgx-h200 and this machine";
}

TEST(MachineFiles, ANumberWithoutItsSourceIsRefusedByName) {
  auto text = machine_yaml(machine("frontier"));
  const auto at = text.find("intra_node:");
  ASSERT_NE(at, std::string::npos);
  const auto key = text.find("bandwidth_gbs: {", at);
  const auto end = text.find('}', key);
  text.replace(key, end - key + 1, "bandwidth_gbs: {value: 50}");
  expect_refused(text, "intra_node.bandwidth_gbs", "a number without a source");
}

TEST(MachineFiles, AnAttentionCurveInterpolatesInLogSizeAndRoundTrips) {
  auto m = machine("frontier");
  m.attention_curve["bf16"] = {{{1e4, 4.0}, {1e6, 2.0}, {1e8, 1.0}}, "test"};
  EXPECT_DOUBLE_EQ(m.attention_rate("bf16", 1e3), 4.0);  // held beyond the ends
  EXPECT_DOUBLE_EQ(m.attention_rate("bf16", 1e9), 1.0);
  EXPECT_NEAR(m.attention_rate("bf16", 1e5), 3.0, 1e-12);  // halfway in log(size) between 1e4 and 1e6
  EXPECT_NEAR(m.attention_rate("bf16", 1e7), 1.5, 1e-12);
  EXPECT_DOUBLE_EQ(m.attention_rate("fp16", 1e5), m.attention_tflops.at("fp16").value);  // no curve: the number
  const auto again = load_text(machine_yaml(m));
  ASSERT_EQ(again.attention_curve.count("bf16"), 1u);
  EXPECT_EQ(again.attention_curve.at("bf16").points, m.attention_curve.at("bf16").points);
  EXPECT_EQ(again.attention_curve.at("bf16").source, "test");
  // Sizes out of order are refused by name.
  auto text = machine_yaml(m);
  const auto at = text.find("[100000000, 1]");
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, 14, "[100, 1]");
  expect_refused(text, "attention_curve.bf16", "a curve with decreasing sizes");
}

// A ring all-gather / reduce-scatter is P−1 steps of one block (bytes/P) per rank; an all-reduce is both in turn.
double ring_steps(int P, double bytes, double alpha, double beta, int phases) {
  double t = 0;
  for (int phase = 0; phase < phases; ++phase) {
    for (int step = 0; step < P - 1; ++step) t += alpha + bytes / P / beta;
  }
  return t;
}

// Rabenseifner's all-reduce step by step: ranks beyond the largest power of two P' first send their whole buffer to
// a partner; P' ranks halve the buffer they exchange at each of log2 P' steps, then double it back; the partners
// send the result back.
double halving_steps(int P, double bytes, double alpha, double beta) {
  int pow2 = 1;
  while (pow2 * 2 <= P) pow2 *= 2;
  double t = pow2 < P ? alpha + bytes / beta : 0.0;
  double block = bytes;
  for (int d = 1; d < pow2; d *= 2) {  // reduce-scatter: send half of what this rank still holds
    block /= 2;
    t += alpha + block / beta;
  }
  for (int d = 1; d < pow2; d *= 2) {  // all-gather: the same blocks, back
    t += alpha + block / beta;
    block *= 2;
  }
  return t + (pow2 < P ? alpha + bytes / beta : 0.0);
}

TEST(CollectiveModel, AlphaBetaTimesEqualTheAlgorithmsStepByStep) {
  const LinkSpec link{{7.0, "test"}, {25.0, "test"}};
  int halving_won = 0, ring_won = 0;
  for (int P : {2, 3, 8, 64, 100, 4096}) {
    for (double bytes : {64.0, 1e6, 3e8}) {
      const double a = 7e-6, b = 25e9;
      EXPECT_NEAR(collective_seconds("all_gather", P, bytes, link), ring_steps(P, bytes, a, b, 1), 1e-12);
      EXPECT_NEAR(collective_seconds("reduce_scatter", P, bytes, link), ring_steps(P, bytes, a, b, 1), 1e-12);
      const double ring = ring_steps(P, bytes, a, b, 2), halving = halving_steps(P, bytes, a, b);
      EXPECT_NEAR(collective_seconds("all_reduce", P, bytes, link), std::min(ring, halving), 1e-12) << P << " " << bytes;
      (halving < ring ? halving_won : ring_won) += 1;
    }
  }
  // Both algorithms are chosen somewhere in this grid (the ring for large buffers on a non-power of two ranks).
  EXPECT_GT(halving_won, 0);
  EXPECT_GT(ring_won, 0);
  EXPECT_EQ(collective_seconds("all_gather", 1, 1e9, link), 0.0);
}

Workload vit_b16(int64_t tokens, const std::string& precision) {
  Config c;
  c.model.dim = 768;
  c.model.depth = 12;
  c.model.heads = 12;
  c.model.patch = 16;
  c.model.decoder = "unetr";
  c.model.decoder_width = 16;
  c.model.pos_encoding = "coords";
  c.data.size = 16 * static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(tokens))));
  auto w = workload_from_config(c, 4);
  set_precision(w, precision);
  return w;
}

// docs/cluster.md, "Worked example: ViT-B/16", 65,536 tokens, N_s = 8, bf16, fused attention: encoder 5.1 GB of
// which K‖V 2.4 GB, decoder 1.0 GB.
TEST(MemoryModel, ReproducesTheWorkedExampleOfTheClusterGuide) {
  const auto w = vit_b16(65536, "bf16");
  Candidate c;
  c.seq = 8;
  c.data = 1;
  const auto e = memory_per_rank(w, c, 8, /*fused_attention=*/true);
  EXPECT_NEAR(e.encoder / 1e9, 5.1, 0.1);
  EXPECT_NEAR(e.decoder / 1e9, 1.0, 0.05);
  EXPECT_EQ(e.attention_scores, 0.0);
  c.checkpointing = true;  // one block's activations + every block's input
  EXPECT_LT(memory_per_rank(w, c, 8, true).encoder, e.encoder / 2);
}

TEST(StepModel, RanksBeyondTheCoresShareThem) {
  auto m = machine("frontier");
  m.kind = "cpu";
  m.ranks_per_node = {2, "test"};
  m.cores_per_node = {2, "test"};
  m.threads_per_rank = {1, "test"};
  const auto w = vit_b16(1024, "fp32");
  Candidate two, four;
  two.seq = 2;
  four.seq = 4;
  const auto p2 = predict(w, m, two, 2), p4 = predict(w, m, four, 4);
  EXPECT_DOUBLE_EQ(p2.oversubscription, 1.0);
  EXPECT_DOUBLE_EQ(p4.oversubscription, 2.0);
  // Half the tokens per rank at twice the slowdown: the matmul time of a rank stays the same.
  EXPECT_NEAR(p4.linear_ms / p2.linear_ms, 1.0, 1e-9);
}

// Every strategy does the same L²-work per layer, cut into calls of different sizes: with a rate that falls from 100
// to 20 TFLOP/s between ring's blocks and one rank's whole matrix, each strategy's attention time says which call
// size the model charged.
TEST(StepModel, AttentionIsChargedAtTheRateOfEachStrategysCallSize) {
  auto m = machine("frontier");
  const auto w = vit_b16(4096, "bf16");
  const double H = 12, L = 4096, S = 4, n = L / S;
  m.attention_curve["bf16"] = {{{H * n * n, 100.0}, {H * L * L, 20.0}}, "test"};  // 16x the scores, 1/5 the rate
  auto attention_ms = [&](const std::string& strategy, int64_t seq) {
    Candidate c;
    c.strategy = strategy;
    c.seq = seq;
    return predict(w, m, c, static_cast<int>(seq)).attention_ms;
  };
  const double flop_ms = 12 * 3.0 * 4.0 * n * L * 768 / 1e12 * 1e3;  // one rank's attention FLOPs at 1 TFLOP/s
  // lss-kv, lss-x: n queries x L keys; ulysses: H/S heads x L x L. Both 4x ring's blocks: halfway in log size.
  for (const char* s : {"lss-kv", "lss-x", "ulysses"}) EXPECT_NEAR(attention_ms(s, 4), flop_ms / 60.0, 1e-9) << s;
  // ring: n x n blocks at the full rate, and a backward that recomputes the scores (3.5 passes, not 3).
  EXPECT_NEAR(attention_ms("ring", 4), flop_ms / 100.0 * 3.5 / 3.0, 1e-9);
  // One rank: the whole L x L matrix, 4x the FLOPs at the lowest rate.
  EXPECT_NEAR(attention_ms("lss-kv", 1), 4.0 * flop_ms / 20.0, 1e-9);
}

// The decoder term is a fixed time per call plus its FLOPs at the conv rate plus its bytes at the bandwidth, for this
// rank's tokens: what --calibrate's two-size fit inverts.
TEST(StepModel, TheDecoderTermIsItsOverheadPlusFlopsAndBytesOfThisRanksTokens) {
  auto m = machine("frontier");
  const auto w = vit_b16(4096, "bf16");
  Candidate c;
  c.seq = 4;
  const double bare = predict(w, m, c, 4).decoder_ms;
  const auto cost = decoder_cost(w, 1024.0);
  EXPECT_NEAR(bare, 1e3 * (cost.flops / (m.conv_tflops.at("bf16").value * 1e12) +
                           cost.bytes / (m.memory_bandwidth_gbs.value * 1e9)), 1e-9);
  m.decoder_overhead_ms = {7.5, "test"};
  EXPECT_NEAR(predict(w, m, c, 4).decoder_ms, bare + 7.5, 1e-9);
  EXPECT_DOUBLE_EQ(load_text(machine_yaml(m)).decoder_overhead_ms.value, 7.5);
}

TEST(StepModel, SequenceGroupsBeyondANodeUseTheNetwork) {
  const auto m = machine("frontier");
  const auto w = vit_b16(65536, "bf16");
  Candidate inside, across;
  inside.data = 2;
  inside.seq = 8;
  across.data = 1;
  across.seq = 16;
  const auto a = predict(w, m, inside, 16), b = predict(w, m, across, 16);
  ASSERT_FALSE(a.collectives.empty());
  EXPECT_FALSE(a.collectives.front().across_nodes);
  EXPECT_TRUE(b.collectives.front().across_nodes);
  EXPECT_GT(b.collectives.front().ms, a.collectives.front().ms);  // slower links for a similar volume
}

TEST(Planner, RecommendsAFittingCandidateAndSaysWhyOrThatNothingFits) {
  const auto m = machine("frontier");
  const auto p = make_plan(vit_b16(65536, "bf16"), m, 16);
  ASSERT_TRUE(p.any_fits());
  EXPECT_TRUE(p.candidates.front().fits);
  for (size_t i = 1; i < p.candidates.size() && p.candidates[i].fits; ++i) {
    EXPECT_GE(p.candidates.front().samples_per_s, 0.99 * p.candidates[i].samples_per_s);
  }
  EXPECT_GE(p.reasons.size(), 4u);
  // A fixed global batch of 2 on 16 ranks leaves N_s >= 8.
  const auto capped = make_plan(vit_b16(65536, "bf16"), m, 16, 2);
  for (const auto& q : capped.candidates) EXPECT_GE(q.candidate.seq, 8);
  // 16M tokens on one rank of 64 GB: nothing fits, and the reason names the smallest need.
  const auto none = make_plan(vit_b16(16777216, "bf16"), m, 1);
  EXPECT_FALSE(none.any_fits());
  ASSERT_EQ(none.reasons.size(), 1u);
  EXPECT_NE(none.reasons.front().find("nothing fits"), std::string::npos);
}

}  // namespace
}  // namespace spvit::plan
