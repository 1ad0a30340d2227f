// The performance model's communication volumes (src/plan/step_model.cpp) equal what the strategies really move:
// for every strategy on this binary's grid, the bus bytes the model predicts on the sequence group per layer equal
// the bytes rank 0's communicator counted in a real forward + backward (spvit selftest's accounting), when the
// tokens and heads split evenly. A model that forgets a collective, or counts a buffer twice, fails here.
#include <gtest/gtest.h>

#include "dist/mpi_test_grid.h"
#include "model/strategy_cases.h"
#include "spvit/model/selftest.h"
#include "spvit/plan/step_model.h"

namespace spvit::plan {
namespace {

MachineSpec any_machine() {  // the volumes do not depend on the machine's numbers
  MachineSpec m;
  m.name = "test";
  m.kind = "gpu";
  m.ranks_per_node = {64, "test"};
  m.memory_gib = {1024, "test"};
  m.memory_bandwidth_gbs = {100, "test"};
  m.matmul_tflops["fp32"] = m.attention_tflops["fp32"] = m.conv_tflops["fp32"] = {1, "test"};
  m.intra_node = m.inter_node = {{1, "test"}, {10, "test"}};
  return m;
}

class PlanVolumes : public ::testing::TestWithParam<std::string> {};

TEST_P(PlanVolumes, SequenceGroupBytesPerLayerEqualTheCountedBytes) {
  const auto& grid = testing::test_grid();
  if (grid.seq_size() == 1) GTEST_SKIP() << "one sequence rank: no sequence collectives to compare";
  model::SelftestOptions o;
  o.length = 96;  // divisible by 2, 3 and 4 ranks: the model assumes even shares
  o.layers = 2;
  o.dim = 48;
  o.heads = 12;   // divisible by 2, 3, 4 (Ulysses' head groups even)
  o.batch = 2;
  o.patch = 2;
  o.dtype = torch::kFloat32;
  o = model::testing_cases::with_strategy(o, GetParam(), grid.seq_size());
  const auto r = model::run_sequence_parallel_selftest(grid, o);
  ASSERT_TRUE(r.passed());
  const auto& counted = r.per_rank.at(0);

  Workload w;
  w.model.dim = o.dim;
  w.model.depth = o.layers;
  w.model.heads = o.heads;
  w.model.decoder = "tile";
  w.tokens = o.length;
  w.batch = o.batch;
  w.element_bytes = 4;
  w.params = 1;
  Candidate c;
  c.data = grid.data_size();
  c.seq = grid.seq_size();
  c.strategy = o.strategy;
  c.ulysses_size = o.ulysses_size;
  c.hybrid_outer = o.hybrid_outer;
  const auto p = predict(w, any_machine(), c, grid.world()->size());
  double predicted = 0;
  for (const auto& part : p.collectives) {
    if (part.group == "seq" || part.group == "ulysses" || part.group == "outer") predicted += part.bus_bytes;
  }
  const double per_layer = predicted / static_cast<double>(o.layers);
  EXPECT_DOUBLE_EQ(per_layer, static_cast<double>(counted.forward_received + counted.backward_received))
      << GetParam() << " on " << grid.shape().str();
  EXPECT_DOUBLE_EQ(per_layer, static_cast<double>(counted.forward_sent + counted.backward_sent))
      << GetParam() << " on " << grid.shape().str();
}

INSTANTIATE_TEST_SUITE_P(Strategies, PlanVolumes, ::testing::ValuesIn(model::testing_cases::strategies()),
                         [](const auto& info) { return model::testing_cases::test_name(info.param); });

}  // namespace
}  // namespace spvit::plan
