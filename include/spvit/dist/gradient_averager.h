// Double gradient averaging (docs/sequence-parallel.md, "Double gradient averaging"): g = (1/N_d) Σ_d Σ_s g_{d,s} — a
// SUM over the sequence group (each sequence rank holds part of one sample's loss) and a MEAN over the data groups
// (different samples).
//
// Parameters are packed into ~25 MB buckets in reverse registration order (roughly the order backward produces
// their gradients). A gradient hook copies each gradient into its bucket as soon as autograd produces it, and a
// bucket whose gradients are all present is reduced right away, so communication overlaps the rest of backward.
// Buckets are always launched in bucket order, so every rank issues the same collectives in the same order.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "spvit/core/config.h"
#include "spvit/dist/communicator.h"

namespace spvit::dist {

class GradientAverager {
 public:
  enum class Mode {
    Flat,      // one all-reduce (sum) over the world per bucket, then scale by 1/N_d
    TwoStage,  // reduce within seq (intra-node) -> all-reduce across data -> scale -> broadcast within seq
  };
  static Mode parse_mode(const std::string& name);  // "flat" | "two-stage"

  struct Options {
    Mode mode = Mode::Flat;
    double bucket_mb = 25.0;

    static Options from_config(const DistConfig& dist);  // dist.grad_average, dist.bucket_mb
  };

  // `world`, `seq` and `data` are the grid's communicators; the averager duplicates them so its traffic never
  // interleaves with the layers' collectives. All parameters must share one dtype and device.
  GradientAverager(std::vector<torch::Tensor> parameters, const CommPtr& world, const CommPtr& seq,
                   const CommPtr& data, Options options);
  ~GradientAverager();
  GradientAverager(const GradientAverager&) = delete;
  GradientAverager& operator=(const GradientAverager&) = delete;

  // Call after each backward: launches the buckets that are not launched yet (parameters that received no gradient
  // contribute zeros), waits for all of them, and sets every parameter's .grad to the averaged gradient. On a world
  // of one rank there is nothing to average: no buckets exist and finish() only gives gradient-less parameters zeros.
  void finish();

  int num_buckets() const { return static_cast<int>(buckets_.size()); }
  // Buckets launched from gradient hooks (during backward) in the last step, as opposed to from finish().
  int buckets_launched_during_backward() const { return launched_in_backward_; }

 private:
  struct Bucket {
    torch::Tensor flat;         // the bucket's contiguous storage
    std::vector<size_t> params; // indices into parameters_
    std::vector<int64_t> offsets;
    int pending = 0;            // parameters whose gradient has not arrived this step
    WorkPtr work;
    bool launched = false;
  };

  void on_gradient(size_t param, const torch::Tensor& grad);
  void arm();                      // start of a step: zero the buckets, mark everything pending
  void launch_ready_buckets();     // launch, in bucket order, every bucket that is complete
  void launch(Bucket& bucket);

  std::vector<torch::Tensor> parameters_;
  std::vector<unsigned> hook_ids_;
  std::vector<size_t> bucket_of_;
  std::vector<bool> seen_;
  std::vector<Bucket> buckets_;
  size_t next_launch_ = 0;
  bool armed_ = false;
  bool passthrough_ = false;  // world of one rank: finish() only fills missing gradients with zeros
  bool in_finish_ = false;
  int launched_in_backward_ = 0;
  CommPtr world_, seq_, data_;
  int num_data_ = 1;
  Options options_;
};

}  // namespace spvit::dist
