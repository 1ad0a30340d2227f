// SPVIT_CHECK_CUDA and SPVIT_CHECK_NCCL: the error names the failing function, the library's reason and the line of
// the call site (this file), not a helper's. Built only with CUDA + NCCL (the GPU machine); the calls fail on
// argument checks, so they need no working GPU state.
#include <gtest/gtest.h>

#include <string>

#include "nccl_watchdog.h"
#include "spvit/core/cuda_check.h"
#include "spvit/core/error.h"

namespace spvit::dist {
namespace {

void expect_message(const std::string& what, const std::string& function, const std::string& reason, int line) {
  EXPECT_NE(what.find(function + " failed: " + reason), std::string::npos) << what;
  EXPECT_NE(what.find("tests/dist/test_cuda_check_gpu.cpp:" + std::to_string(line)), std::string::npos) << what;
}

TEST(CudaCheck, ErrorNamesTheCallTheReasonAndTheCallSite) {
  const int line = __LINE__ + 2;
  try {
    SPVIT_CHECK_CUDA(cudaSetDevice(-1));
    ADD_FAILURE() << "cudaSetDevice(-1) did not fail";
  } catch (const Error& e) {
    expect_message(e.what(), "cudaSetDevice", cudaGetErrorString(cudaErrorInvalidDevice), line);
  }
}

TEST(CudaCheck, CommunicatorCallsFailWithCommError) {
  const int line = __LINE__ + 2;
  try {
    SPVIT_CHECK_COMM_CUDA(cudaSetDevice(-1));
    ADD_FAILURE() << "cudaSetDevice(-1) did not fail";
  } catch (const CommError& e) {
    expect_message(e.what(), "cudaSetDevice", cudaGetErrorString(cudaErrorInvalidDevice), line);
  }
}

TEST(NcclCheck, ErrorNamesTheCallTheReasonAndTheCallSite) {
  int count = 0;
  const int line = __LINE__ + 2;
  try {
    SPVIT_CHECK_NCCL(ncclCommCount(nullptr, &count), nullptr);
    ADD_FAILURE() << "ncclCommCount(nullptr) did not fail";
  } catch (const CommError& e) {
    expect_message(e.what(), "ncclCommCount", ncclGetErrorString(ncclInvalidArgument), line);
  }
}

}  // namespace
}  // namespace spvit::dist
