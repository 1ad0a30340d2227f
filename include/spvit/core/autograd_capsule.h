// Stores any C++ object in an autograd context's saved_data (which holds IValues only), e.g. a communicator or
// the closure a checkpointed block recomputes in backward.
#pragma once
#include <torch/torch.h>

#include <utility>

namespace spvit {

template <typename T>
struct CapsuleHolder : torch::CustomClassHolder {
  explicit CapsuleHolder(T v) : value(std::move(v)) {}
  T value;
};

template <typename T>
c10::IValue to_capsule(T value) {
  return c10::IValue::make_capsule(c10::make_intrusive<CapsuleHolder<T>>(std::move(value)));
}

// `iv` must have been made by to_capsule<T>.
template <typename T>
T& from_capsule(const c10::IValue& iv) {
  auto holder = c10::static_intrusive_pointer_cast<CapsuleHolder<T>>(iv.toCapsule());
  return holder->value;  // the holder is owned by the IValue, which outlives this reference's use
}

}  // namespace spvit
