// SPVIT_CHECK_CUDA(call): runs a CUDA runtime call (or a kernel launcher returning cudaError_t) and throws an
// spvit error naming the function, CUDA's reason and the caller's file:line. A macro rather than a function so the
// location is the call site, not this header. Only for translation units built against the CUDA runtime.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "spvit/core/error.h"

namespace spvit::detail {

// "ncclAllGather(buf, n, ...)" -> "ncclAllGather": the function is what a reader of the error needs, not its
// arguments' spelling.
inline std::string called_function(const char* call) {
  const std::string text(call);
  return text.substr(0, text.find('('));
}

template <typename ErrorType>
void check_cuda(cudaError_t status, const char* call, const char* file, int line) {
  if (status == cudaSuccess) return;
  throw ErrorType(with_location(concat(called_function(call), " failed: ", cudaGetErrorString(status)), file, line));
}

}  // namespace spvit::detail

// Variadic so that template arguments with commas (launch<TIn, TOut>(...)) pass through whole.
#define SPVIT_CHECK_CUDA(...) \
  ::spvit::detail::check_cuda<::spvit::Error>((__VA_ARGS__), #__VA_ARGS__, __FILE__, __LINE__)
// The same, throwing the given spvit error type (e.g. CommError for the communicator's stream calls).
#define SPVIT_CHECK_CUDA_AS(ErrorType, ...) \
  ::spvit::detail::check_cuda<ErrorType>((__VA_ARGS__), #__VA_ARGS__, __FILE__, __LINE__)
