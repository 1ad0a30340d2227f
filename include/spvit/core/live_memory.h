// Counts the bytes LibTorch allocates and frees on one device type while a probe is alive, on this thread and the
// threads LibTorch hands its thread-local state to (autograd, at::launch). Used to measure what a layer keeps for
// backward: the net bytes its forward leaves allocated, minus its output (docs/sequence-parallel.md, "Counting bytes").
//
// It listens the way LibTorch's memory profiler does (a c10 MemoryReportingInfoBase installed as the thread's
// profiler state), so the CPU allocator and the CUDA caching allocator both report to it; bytes are the tensors'
// requested sizes, not the allocator's rounding or caching. Not re-entrant with torch's own profiler.
#pragma once
#include <torch/torch.h>

#include <memory>

namespace spvit {

class LiveMemoryProbe {
 public:
  explicit LiveMemoryProbe(c10::DeviceType device_type);
  ~LiveMemoryProbe();
  LiveMemoryProbe(const LiveMemoryProbe&) = delete;
  LiveMemoryProbe& operator=(const LiveMemoryProbe&) = delete;

  // Bytes allocated minus bytes freed since the probe started (blocks allocated before it are not seen when freed,
  // so keep the inputs alive while probing).
  int64_t net_bytes() const;
  int64_t peak_bytes() const;  // the largest net_bytes() seen

 private:
  struct Listener;
  std::shared_ptr<Listener> listener_;
  std::unique_ptr<c10::DebugInfoGuard> guard_;
};

// Bytes of the storage behind each tensor, counted once per storage (views share one).
int64_t storage_bytes(const std::vector<torch::Tensor>& tensors);

}  // namespace spvit
