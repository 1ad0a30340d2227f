#include <gtest/gtest.h>

#include "spvit/core/error.h"
#include "spvit/core/logging.h"

namespace spvit {
namespace {

TEST(Error, CheckCarriesMessageAndLocation) {
  try {
    const int got = 3;
    SPVIT_CHECK(got == 4, "expected 4 tokens, got ", got);
    FAIL();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("expected 4 tokens, got 3"), std::string::npos) << what;
    EXPECT_NE(what.find("tests/core/test_error.cpp:"), std::string::npos) << what;
  }
}

TEST(Error, ContextIsAppendedAndTypeIsKept) {
  try {
    try {
      SPVIT_THROW(DataError, "mask has 3 rows");
    } catch (Error& e) {
      e.add_context("reading sample 7");
      throw;
    }
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("mask has 3 rows"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("while reading sample 7"), std::string::npos);
    return;
  }
  FAIL() << "the rethrown exception lost its type";
}

TEST(Logging, RejectsUnknownLevel) {
  EXPECT_THROW(log::set_level("loud"), ConfigError);
  EXPECT_NO_THROW(log::set_level("warn"));
}

}  // namespace
}  // namespace spvit
