// Counter-based randomness for the data layer: a value is a pure function of its key (seed, epoch, index, cell...),
// so any worker, rank or region computes the same number without shared generator state.
#pragma once
#include <cstdint>
#include <initializer_list>

namespace spvit::data {

// SplitMix64's finaliser: a bijective, well-mixed 64-bit hash.
inline uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Hash of a sequence of integers (order matters).
inline uint64_t hash_key(std::initializer_list<uint64_t> parts) {
  uint64_t h = 0x243f6a8885a308d3ULL;
  for (uint64_t p : parts) h = mix64(h ^ mix64(p));
  return h;
}

// Uniform in [0, 1) from a hash (53 bits).
inline double unit(uint64_t h) { return static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0); }

// A stream of uniforms from one key: draw i is unit(hash(key, i)).
class HashStream {
 public:
  explicit HashStream(uint64_t key) : key_(key) {}
  double uniform() { return unit(mix64(key_ ^ mix64(++counter_))); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  bool bernoulli(double p) { return uniform() < p; }
  uint64_t bits() { return mix64(key_ ^ mix64(++counter_)); }

 private:
  uint64_t key_;
  uint64_t counter_ = 0;
};

}  // namespace spvit::data
