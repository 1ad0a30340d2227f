// Device synchronisation and memory statistics for timings and reports (CUDA caching-allocator peaks on GPUs, the
// process's peak resident memory on the CPU).
#pragma once
#include <torch/torch.h>

namespace spvit {

// Waits for all work queued on `device` (no-op on the CPU).
void synchronize(const torch::Device& device);
// Starts a new peak-memory window.
void reset_peak_memory(const torch::Device& device);
// Peak bytes allocated by LibTorch on `device` since the last reset (CUDA), or the process's peak RSS (CPU), in GiB.
double peak_memory_gib(const torch::Device& device);
// A field of /proc/self/status in bytes: "VmRSS:" (resident now), "VmHWM:" (peak resident); 0 where absent.
double process_memory_bytes(const char* key);
// Sets the process's peak resident set (VmHWM) back to its current size (Linux >= 4.0); false where not allowed.
bool reset_process_peak_rss();
// Total memory of `device` in bytes: the GPU's (cudaMemGetInfo), or the host's physical memory (CPU).
double total_memory_bytes(const torch::Device& device);
// Returns the caching allocator's unused blocks to the driver (after an out-of-memory attempt).
void release_cached_memory(const torch::Device& device);

}  // namespace spvit
