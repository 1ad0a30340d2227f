// The generic progress line (core/progress.h) used by the trainer's steps and the inference tiles.
#include <gtest/gtest.h>

#include "spvit/core/progress.h"

namespace spvit {
namespace {

TEST(ProgressLine, ShowsLabelCountBarPercentDetailsAndEta) {
  const auto line = format_progress_line("tiles", 250, 1000, "3.2 tiles/s", 3725, 8);
  // 250/1000 of 8 cells: two filled, then the head; the count is padded to the total's width.
  EXPECT_EQ(line, "tiles  250/1000 [==>     ]  25% | 3.2 tiles/s | ETA 1h02m");
  EXPECT_EQ(format_progress_line("step", 0, 7, "", -1, 4), "step 0/7 [    ]   0% | ETA ?");
  EXPECT_EQ(format_progress_line("step", 7, 7, "", 0, 4), "step 7/7 [====] 100% | ETA 0s");
  // More done than the total (a caller's rounding) never overflows the bar.
  EXPECT_EQ(format_progress_line("step", 9, 7, "", 0, 4), "step 9/7 [====] 100% | ETA 0s");
}

TEST(ProgressLine, DurationsAndRates) {
  EXPECT_EQ(format_duration(45), "45s");
  EXPECT_EQ(format_duration(723), "12m03s");
  EXPECT_EQ(format_duration(3725), "1h02m");
  EXPECT_EQ(format_duration(-3), "0s");
  EXPECT_EQ(human_rate(950), "950");
  EXPECT_EQ(human_rate(5300), "5.3k");
  EXPECT_EQ(human_rate(2.1e6), "2.1M");
}

TEST(ProgressLine, ModesOnAndOffAreObeyed) {
  EXPECT_TRUE(progress_wanted("on"));
  EXPECT_FALSE(progress_wanted("off"));
  ProgressBar disabled("tiles", 10, 0, false);
  EXPECT_FALSE(disabled.enabled());
  EXPECT_LT(disabled.eta_s(0), 0) << "no pace before any progress";
  EXPECT_GE(disabled.eta_s(5), 0);
}

}  // namespace
}  // namespace spvit
