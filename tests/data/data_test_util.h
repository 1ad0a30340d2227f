// Helpers for the data layer tests: temporary folders, error capture and exact tensor comparison.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "spvit/core/error.h"
#include "spvit/data/dataset.h"
#include "test_support.h"

namespace spvit::data::testing {

// A fresh folder under the system temp dir, removed when the object goes away.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    path_ = std::filesystem::temp_directory_path() / ("spvit_data_" + tag + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// The message of the spvit::Error `f` throws ("" if it throws none).
template <typename F>
std::string error_message(F&& f) {
  return spvit::testing::thrown_message<Error>(std::forward<F>(f));
}

#define EXPECT_ERROR_MENTIONS(message, text) \
  EXPECT_NE((message).find(text), std::string::npos) << "message: '" << (message) << "' lacks '" << (text) << "'"

inline bool same(const torch::Tensor& a, const torch::Tensor& b) {
  return a.sizes() == b.sizes() && a.scalar_type() == b.scalar_type() && torch::equal(a, b);
}

inline void expect_same_sample(const Sample& a, const Sample& b) {
  EXPECT_TRUE(same(a.image, b.image)) << a.id << " " << to_string(a.region) << " vs " << to_string(b.region);
  EXPECT_TRUE(same(a.mask, b.mask)) << a.id << " " << to_string(a.region) << " vs " << to_string(b.region);
  EXPECT_EQ(a.region, b.region);
  EXPECT_EQ(a.full_shape, b.full_shape);
}

}  // namespace spvit::data::testing
