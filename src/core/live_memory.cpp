#include "spvit/core/live_memory.h"

#include <algorithm>
#include <atomic>
#include <set>

namespace spvit {

struct LiveMemoryProbe::Listener : public c10::MemoryReportingInfoBase {
  explicit Listener(c10::DeviceType type) : device_type(type) {}
  void reportMemoryUsage(void* /*ptr*/, int64_t alloc_size, int64_t /*total_allocated*/, int64_t /*total_reserved*/,
                         c10::Device device) override {
    if (device.type() != device_type) return;
    const int64_t now = net.fetch_add(alloc_size) + alloc_size;  // alloc_size < 0 for a free
    int64_t seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
  }
  bool memoryProfilingEnabled() const override { return true; }

  const c10::DeviceType device_type;
  std::atomic<int64_t> net{0};
  std::atomic<int64_t> peak{0};
};

LiveMemoryProbe::LiveMemoryProbe(c10::DeviceType device_type)
    : listener_(std::make_shared<Listener>(device_type)),
      guard_(std::make_unique<c10::DebugInfoGuard>(c10::DebugInfoKind::PROFILER_STATE, listener_)) {}

LiveMemoryProbe::~LiveMemoryProbe() = default;

int64_t LiveMemoryProbe::net_bytes() const { return listener_->net.load(); }
int64_t LiveMemoryProbe::peak_bytes() const { return listener_->peak.load(); }

int64_t storage_bytes(const std::vector<torch::Tensor>& tensors) {
  std::set<const void*> seen;
  int64_t total = 0;
  for (const auto& t : tensors) {
    if (!t.defined() || !t.has_storage()) continue;
    const auto& storage = t.storage();
    if (seen.insert(storage.unsafeGetStorageImpl()).second) total += static_cast<int64_t>(storage.nbytes());
  }
  return total;
}

}  // namespace spvit
