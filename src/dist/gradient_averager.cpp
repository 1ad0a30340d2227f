#include "spvit/dist/gradient_averager.h"

#include "spvit/core/error.h"
#include "spvit/kernels/multi_tensor.h"

namespace spvit::dist {
namespace {

// Offset of parameter `param` in a bucket holding `params` at `offsets`.
int64_t offset_in(const std::vector<size_t>& params, const std::vector<int64_t>& offsets, size_t param) {
  size_t pos = 0;
  while (params[pos] != param) ++pos;
  return offsets[pos];
}

}  // namespace

GradientAverager::Options GradientAverager::Options::from_config(const DistConfig& dist) {
  return {parse_mode(dist.grad_average), dist.bucket_mb};
}

GradientAverager::Mode GradientAverager::parse_mode(const std::string& name) {
  if (name == "flat") return Mode::Flat;
  if (name == "two-stage") return Mode::TwoStage;
  SPVIT_THROW(ConfigError, "gradient averaging mode '", name, "' is not one of flat, two-stage");
}

GradientAverager::GradientAverager(std::vector<torch::Tensor> parameters, const CommPtr& world, const CommPtr& seq,
                                   const CommPtr& data, Options options)
    : options_(options) {
  for (auto& p : parameters) {
    if (p.requires_grad()) parameters_.push_back(p);
  }
  SPVIT_CHECK(!parameters_.empty(), "GradientAverager: no trainable parameters");
  SPVIT_CHECK(options.bucket_mb > 0, "GradientAverager: bucket size must be positive, got ", options.bucket_mb);
  const auto dtype = parameters_[0].scalar_type();
  const auto device = parameters_[0].device();
  for (auto& p : parameters_) {
    SPVIT_CHECK(p.scalar_type() == dtype && p.device() == device,
                "GradientAverager: all parameters must share one dtype and device");
  }
  // One process: the average over one rank is the gradient itself. No buckets, no hooks, no copies (on a GPU the
  // hooks' copies alone would cost a kernel launch per parameter per step).
  if (world->size() == 1) {
    passthrough_ = true;
    return;
  }
  world_ = world->duplicate(world->name() + ".grads");
  seq_ = seq->duplicate(seq->name() + ".grads");
  data_ = data->duplicate(data->name() + ".grads");
  num_data_ = data->size();

  // Buckets in reverse parameter order, each closed once it reaches the size limit.
  const double cap_bytes = options.bucket_mb * 1024.0 * 1024.0;
  bucket_of_.assign(parameters_.size(), 0);
  std::vector<std::vector<size_t>> groups(1);
  double bytes = 0;
  for (size_t k = parameters_.size(); k-- > 0;) {
    const double pbytes = static_cast<double>(parameters_[k].numel()) * parameters_[k].element_size();
    if (!groups.back().empty() && bytes + pbytes > cap_bytes) {
      groups.emplace_back();
      bytes = 0;
    }
    groups.back().push_back(k);
    bytes += pbytes;
  }
  for (auto& group : groups) {
    Bucket b;
    int64_t numel = 0;
    for (size_t k : group) {
      b.params.push_back(k);
      b.offsets.push_back(numel);
      bucket_of_[k] = buckets_.size();
      numel += parameters_[k].numel();
    }
    b.flat = torch::zeros({numel}, parameters_[0].options().requires_grad(false));
    buckets_.push_back(std::move(b));
  }
  seen_.assign(parameters_.size(), false);
  for (size_t k = 0; k < parameters_.size(); ++k) {
    hook_ids_.push_back(parameters_[k].register_hook([this, k](const torch::Tensor& grad) { on_gradient(k, grad); }));
  }
}

GradientAverager::~GradientAverager() {
  for (size_t k = 0; k < hook_ids_.size(); ++k) parameters_[k].remove_hook(hook_ids_[k]);
}

void GradientAverager::arm() {
  for (auto& b : buckets_) {
    b.flat.zero_();
    b.pending = static_cast<int>(b.params.size());
    b.launched = false;
    b.work.reset();
  }
  std::fill(seen_.begin(), seen_.end(), false);
  next_launch_ = 0;
  launched_in_backward_ = 0;
  armed_ = true;
}

void GradientAverager::on_gradient(size_t param, const torch::Tensor& grad) {
  if (!armed_) arm();
  auto& bucket = buckets_[bucket_of_[param]];
  SPVIT_CHECK(!bucket.launched, "parameter #", param,
              " received a gradient after its bucket was already reduced: call GradientAverager::finish() after "
              "every backward, and do not use one parameter twice in a graph");
  torch::NoGradGuard no_grad;
  // Copies into the bucket go through the kernel layer: LibTorch's copy_/add_ on CPU, the multi-tensor kernel on CUDA.
  const std::vector<int64_t> offset = {offset_in(bucket.params, bucket.offsets, param)};
  if (seen_[param]) {
    kernels::flatten_into({grad}, bucket.flat, offset, 1.0, /*accumulate=*/true);
    return;
  }
  seen_[param] = true;
  kernels::flatten_into({grad}, bucket.flat, offset);
  // The hook runs before autograd accumulates into .grad: include what .grad already holds (accumulation).
  const auto& existing = parameters_[param].grad();
  if (existing.defined()) kernels::flatten_into({existing}, bucket.flat, offset, 1.0, /*accumulate=*/true);
  if (--bucket.pending == 0) launch_ready_buckets();
}

void GradientAverager::launch_ready_buckets() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) {
    launch(buckets_[next_launch_++]);
    if (!in_finish_) ++launched_in_backward_;
  }
}

void GradientAverager::launch(Bucket& bucket) {
  bucket.launched = true;
  if (options_.mode == Mode::Flat) {
    if (world_->size() > 1) bucket.work = world_->all_reduce(bucket.flat, ReduceOp::Sum);
  } else if (seq_->size() > 1) {
    bucket.work = seq_->reduce(bucket.flat, 0, ReduceOp::Sum);  // stage 1: sum of the sequence group on seq rank 0
  }
}

void GradientAverager::finish() {
  if (passthrough_) {
    // As on several ranks, every parameter leaves with a defined gradient (zeros when it got none).
    for (auto& p : parameters_) {
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p, at::MemoryFormat::Contiguous);
    }
    return;
  }
  if (!armed_) arm();
  in_finish_ = true;
  torch::NoGradGuard no_grad;
  // Parameters that got no gradient this step still take part (every rank must launch every bucket): what their .grad
  // holds (or zeros) goes in, one batched copy per bucket.
  std::vector<std::vector<torch::Tensor>> leftovers(buckets_.size());
  std::vector<std::vector<int64_t>> leftover_offsets(buckets_.size());
  for (size_t k = 0; k < parameters_.size(); ++k) {
    if (seen_[k]) continue;
    seen_[k] = true;
    auto& bucket = buckets_[bucket_of_[k]];
    const auto& existing = parameters_[k].grad();
    if (existing.defined()) {
      leftovers[bucket_of_[k]].push_back(existing);
      leftover_offsets[bucket_of_[k]].push_back(offset_in(bucket.params, bucket.offsets, k));
    }
    --bucket.pending;
  }
  for (size_t b = 0; b < buckets_.size(); ++b) {
    if (!leftovers[b].empty()) kernels::flatten_into(leftovers[b], buckets_[b].flat, leftover_offsets[b]);
  }
  launch_ready_buckets();
  in_finish_ = false;
  for (auto& b : buckets_) {
    if (b.work) b.work->wait();
  }
  // The mean over data groups: 1/N_d, applied while unflattening into .grad (flat mode) or before the broadcast.
  double scale = num_data_ > 1 ? 1.0 / num_data_ : 1.0;
  if (options_.mode == Mode::TwoStage) {
    // Stage 2: mean across data groups among the seq-rank-0 processes; stage 3: broadcast back within seq.
    if (seq_->rank() == 0 && data_->size() > 1) {
      std::vector<WorkPtr> works;
      for (auto& b : buckets_) works.push_back(data_->all_reduce(b.flat, ReduceOp::Sum));
      for (auto& w : works) w->wait();
    }
    if (num_data_ > 1) {
      for (auto& b : buckets_) b.flat.mul_(scale);
    }
    scale = 1.0;
    if (seq_->size() > 1) {
      std::vector<WorkPtr> works;
      for (auto& b : buckets_) works.push_back(seq_->broadcast(b.flat, 0));
      for (auto& w : works) w->wait();
    }
  }
  // Unflatten each bucket into .grad in one batched (scaled) copy.
  for (auto& b : buckets_) {
    std::vector<torch::Tensor> grads;
    for (size_t k : b.params) {
      auto& grad = parameters_[k].mutable_grad();
      if (!grad.defined()) grad = torch::empty_like(parameters_[k], at::MemoryFormat::Contiguous);
      grads.push_back(grad);
    }
    kernels::unflatten_from(b.flat, b.offsets, grads, scale);
  }
  armed_ = false;
}

}  // namespace spvit::dist
