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

// Runs `call`, which must throw ErrorType naming `function` with `reason`, at `line` of this file.
template <typename ErrorType, typename Call>
void expect_failure(Call call, const std::string& function, const std::string& reason, int line) {
  try {
    call();
    ADD_FAILURE() << function << " did not fail";
  } catch (const ErrorType& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(function + " failed: " + reason), std::string::npos) << what;
    EXPECT_NE(what.find("tests/dist/test_cuda_check_gpu.cpp:" + std::to_string(line)), std::string::npos) << what;
  }
}

// Each call and its __LINE__ share one line: the error must name that line.
TEST(CudaCheck, ErrorNamesTheCallTheReasonAndTheCallSite) {
  const std::string bad = cudaGetErrorString(cudaErrorInvalidDevice);
  expect_failure<Error>([] { SPVIT_CHECK_CUDA(cudaSetDevice(-1)); }, "cudaSetDevice", bad, __LINE__);
}

TEST(CudaCheck, CommunicatorCallsFailWithCommError) {
  const std::string bad = cudaGetErrorString(cudaErrorInvalidDevice);
  expect_failure<CommError>([] { SPVIT_CHECK_COMM_CUDA(cudaSetDevice(-1)); }, "cudaSetDevice", bad, __LINE__);
}

TEST(NcclCheck, ErrorNamesTheCallTheReasonAndTheCallSite) {
  const std::string bad = ncclGetErrorString(ncclInvalidArgument);
  int n = 0;
  expect_failure<CommError>([&] { SPVIT_CHECK_NCCL(ncclCommCount(nullptr, &n), nullptr); }, "ncclCommCount", bad, __LINE__);
}

}  // namespace
}  // namespace spvit::dist
