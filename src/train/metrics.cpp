#include "spvit/train/metrics.h"

#include "spvit/core/error.h"

namespace spvit::train {

void SegmentationCounts::add(const SegmentationCounts& o) {
  if (!tp.defined()) {
    *this = o;
    tp = o.tp.clone();
    fp = o.fp.clone();
    fn = o.fn.clone();
    return;
  }
  tp += o.tp;
  fp += o.fp;
  fn += o.fn;
  correct += o.correct;
  total += o.total;
}

void SegmentationCounts::all_reduce(dist::Communicator& comm) {
  auto packed = torch::cat({tp, fp, fn, torch::tensor({correct, total}, torch::kFloat64)});
  comm.all_reduce(packed, dist::ReduceOp::Sum)->wait();
  const int64_t K = tp.size(0);
  tp = packed.narrow(0, 0, K).clone();
  fp = packed.narrow(0, K, K).clone();
  fn = packed.narrow(0, 2 * K, K).clone();
  correct = packed[3 * K].item<double>();
  total = packed[3 * K + 1].item<double>();
}

std::vector<double> SegmentationCounts::dice() const {
  std::vector<double> out;
  for (int64_t k = 0; k < tp.size(0); ++k) {
    const double t = tp[k].item<double>(), d = 2 * t + fp[k].item<double>() + fn[k].item<double>();
    out.push_back(d > 0 ? 2 * t / d : 1.0);
  }
  return out;
}

std::vector<double> SegmentationCounts::iou() const {
  std::vector<double> out;
  for (int64_t k = 0; k < tp.size(0); ++k) {
    const double t = tp[k].item<double>(), d = t + fp[k].item<double>() + fn[k].item<double>();
    out.push_back(d > 0 ? t / d : 1.0);
  }
  return out;
}

double SegmentationCounts::mean_dice(bool skip_background) const {
  const auto d = dice();
  double sum = 0;
  size_t n = 0;
  for (size_t k = skip_background ? 1 : 0; k < d.size(); ++k, ++n) sum += d[k];
  return n ? sum / static_cast<double>(n) : 0.0;
}

SegmentationCounts count_segmentation(const torch::Tensor& logits, const torch::Tensor& target, int64_t classes,
                                      const torch::Tensor& weight) {
  torch::NoGradGuard no_grad;
  auto pred = logits.dim() == target.dim() + 1 ? logits.argmax(1) : logits;
  SPVIT_CHECK(pred.sizes() == target.sizes(), "metrics: prediction ", pred.sizes(), " vs target ", target.sizes());
  auto w = weight.defined() ? weight.to(torch::kFloat64).flatten() : torch::ones({target.numel()}, torch::kFloat64);
  auto p = pred.flatten().to(torch::kLong), t = target.flatten().to(torch::kLong);
  if (t.lt(0).any().item<bool>()) {  // ignored pixels (negative labels, data.unannotated = ignore) count nowhere
    w = w * t.ge(0).to(torch::kFloat64);
    t = t.clamp_min(0);
  }
  SegmentationCounts c;
  c.tp = torch::zeros({classes}, torch::kFloat64).index_add_(0, t, w * (p == t).to(torch::kFloat64));
  auto predicted = torch::zeros({classes}, torch::kFloat64).index_add_(0, p, w);
  auto actual = torch::zeros({classes}, torch::kFloat64).index_add_(0, t, w);
  c.fp = predicted - c.tp;
  c.fn = actual - c.tp;
  c.correct = c.tp.sum().item<double>();
  c.total = w.sum().item<double>();
  return c;
}

}  // namespace spvit::train
