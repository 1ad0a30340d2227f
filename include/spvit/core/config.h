// Typed configuration: YAML file -> these structs, validated, with `--set key.sub=value` overrides.
//
// Each section lists its fields once, in visit(); the same list drives parsing (with unknown-key and range
// errors that name the key and the allowed values) and writing back to YAML (saved beside results/checkpoints).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "spvit/core/config_visit.h"

namespace spvit {

// World = data x seq ranks. data = 0 means "world size / seq".
struct GridConfig {
  int64_t data = 0;
  int64_t seq = 1;
  template <class V>
  void visit(V& v) {
    v.field("data", data, Range<int64_t>{0, 1 << 20}, "data-parallel groups (0 = world size / seq)");
    v.field("seq", seq, Range<int64_t>{1, 1 << 20}, "ranks sharing one sample's token sequence");
  }
};

struct ModelConfig {
  int64_t channels = 3;       // image channels C
  int64_t patch = 16;         // patch side P (tokens carry C*P^2 (or C*P^3 in 3D) values)
  int64_t spatial_dims = 2;   // 2 (images) or 3 (volumes)
  int64_t dim = 192;          // embedding width E
  int64_t depth = 4;          // transformer blocks
  int64_t heads = 3;          // attention heads (dim % heads == 0)
  double mlp_ratio = 4.0;     // MLP hidden width = mlp_ratio * dim
  std::string pos_encoding = "grid";  // grid (learned table), coords (coordinate MLP), none
  int64_t max_tokens = 65536;         // rows of the learned grid table
  std::string attention = "lss-kv";   // local, lss-kv, lss-x
  std::string attention_backend = "auto";  // fused attention kernel on CUDA: auto, cudnn, flash, efficient, math
  bool checkpointing = false;         // recompute each block in backward
  std::string decoder = "unetr";      // unetr (uniform grids, halo-exchange conv decoder), tile (adaptive layouts)
  int64_t decoder_width = 16;         // channels of the decoder's full-resolution stage (x2 per coarser stage)
  int64_t decoder_chunk_rows = 0;     // unetr: decode this many token rows at a time, recomputed in backward (0: all)
  template <class V>
  void visit(V& v) {
    v.field("channels", channels, Range<int64_t>{1, 1024}, "image channels");
    v.field("patch", patch, Range<int64_t>{1, 4096}, "patch side in pixels");
    v.field("spatial_dims", spatial_dims, Range<int64_t>{2, 3}, "2 for images, 3 for volumes");
    v.field("dim", dim, Range<int64_t>{1, 1 << 16}, "embedding width");
    v.field("depth", depth, Range<int64_t>{1, 1024}, "number of transformer blocks");
    v.field("heads", heads, Range<int64_t>{1, 1024}, "attention heads");
    v.field("mlp_ratio", mlp_ratio, Range<double>{0.0625, 64.0}, "MLP width / dim");
    v.choice("pos_encoding", pos_encoding, {"grid", "coords", "none"});
    v.field("max_tokens", max_tokens, Range<int64_t>{1, int64_t{1} << 40}, "rows of the learned position table");
    v.field("attention", attention, Range<std::string>{}, "attention strategy (model::attention_strategies())");
    v.choice("attention_backend", attention_backend, {"auto", "cudnn", "flash", "efficient", "math"});
    v.field("checkpointing", checkpointing, Range<bool>{}, "activation checkpointing per block");
    v.field("decoder", decoder, Range<std::string>{}, "decoder (model::decoders())");
    v.field("decoder_width", decoder_width, Range<int64_t>{1, 4096}, "decoder channels at full resolution");
    v.field("decoder_chunk_rows", decoder_chunk_rows, Range<int64_t>{0, 1 << 30},
            "unetr: token rows decoded at a time and recomputed in backward (0: the whole band at once)");
  }
};

struct DistConfig {
  std::string backend = "auto";           // auto (nccl on CUDA devices when built with it, else mpi), mpi, nccl
  double timeout_s = 300.0;               // a collective that does not finish in this time ends the run
  std::string grad_average = "flat";      // flat (one world all-reduce) or two-stage (seq reduce, data all-reduce)
  double bucket_mb = 25.0;                // gradient bucket size
  int64_t ulysses_size = 0;               // model.attention = hybrid: Ulysses group size, a divisor of grid.seq
  std::string hybrid_outer = "lss-kv";    // model.attention = hybrid: the strategy across groups, lss-kv or ring
  template <class V>
  void visit(V& v) {
    v.choice("backend", backend, {"auto", "mpi", "nccl"});
    v.field("timeout_s", timeout_s, Range<double>{0.001, 1e7}, "collective timeout in seconds");
    v.choice("grad_average", grad_average, {"flat", "two-stage"});
    v.field("bucket_mb", bucket_mb, Range<double>{0.001, 1e5}, "gradient bucket size in MB");
    v.field("ulysses_size", ulysses_size, Range<int64_t>{0, 1 << 20},
            "hybrid attention: ranks per Ulysses group (a divisor of grid.seq; meant to be one node)");
    v.choice("hybrid_outer", hybrid_outer, {"lss-kv", "ring"});
  }
};

// How a sample becomes a token sequence (docs/adaptive-patching.md, docs/training.md). The fields mirror
// patch::PatcherOptions, which core cannot include (it is a layer above).
//   uniform : a grid of P-sided patches; with model.decoder = unetr each rank reads a band of whole token rows.
//   adaptive: the fixed-length quadtree (2D) / octree (3D); needs model.decoder = tile.
struct PatcherConfig {
  std::string kind = "uniform";      // uniform, adaptive
  int64_t length = 0;                // L: adaptive (required) the fixed token count; uniform 0 = the grid's size
  int64_t min_side = 0;              // smallest leaf side, a power of two <= model.patch (0 = patch / 4)
  std::string scorer = "variance";   // edges (needs OpenCV), variance, gradient, texture
  int64_t blur_kernel = 5;           // edges: Gaussian blur before Canny (odd)
  double canny_low = 75.0, canny_high = 125.0;
  int64_t texture_window = 16;       // texture: block side of the LBP entropy
  // Augmentation (with data.augment): each sample's Canny thresholds are scaled by a factor drawn from
  // [1 - j, 1 + j] with the sample's flips and turns, so a sequence group draws the same layout.
  double threshold_jitter = 0.0;
  // Plan the layout on the sample shrunk by this factor (area average, a power of two <= model.patch), read band by
  // band: no rank then holds the whole sample, only the pixel box of its own tokens. 1 = plan on the full sample.
  int64_t score_downsample = 1;
  template <class V>
  void visit(V& v) {
    v.field("kind", kind, Range<std::string>{}, "patcher (patch::patchers())");
    v.field("length", length, Range<int64_t>{0, int64_t{1} << 40}, "fixed sequence length L (uniform: 0 = grid)");
    v.field("min_side", min_side, Range<int64_t>{0, 4096}, "smallest leaf side (0 = patch / 4)");
    v.field("scorer", scorer, Range<std::string>{}, "region scorer (patch::scorers())");
    v.field("blur_kernel", blur_kernel, Range<int64_t>{1, 31}, "Gaussian blur kernel before Canny (odd)");
    v.field("canny_low", canny_low, Range<double>{0.0, 10000.0}, "Canny low threshold");
    v.field("canny_high", canny_high, Range<double>{0.0, 10000.0}, "Canny high threshold");
    v.field("texture_window", texture_window, Range<int64_t>{2, 4096}, "block side of the LBP entropy");
    v.field("threshold_jitter", threshold_jitter, Range<double>{0.0, 0.99}, "per-sample scorer threshold scale +-");
    v.field("score_downsample", score_downsample, Range<int64_t>{1, 4096}, "plan the layout on a shrunk sample");
  }
};

// Where samples come from. Synthetic data is generated on the fly, deterministically from `seed`.
struct DataConfig {
  std::string source = "synthetic";  // synthetic, folder (images/ + masks/), hdf5 (datasets images, masks), slides
  std::string kind = "pathology";    // synthetic only: pathology (2D, RGB) or mri (3D, 1 channel)
  std::string path;                  // folder or .h5 file with the training samples
  std::string val_path;              // folder or .h5 file with the validation samples
  int64_t size = 128;                // synthetic sample side in pixels (voxels)
  int64_t train_samples = 32;        // synthetic training samples
  int64_t val_samples = 4;           // synthetic validation samples (drawn from other seeds)
  int64_t workers = 2;               // loader threads per rank
  int64_t prefetch = 4;              // batches loaded ahead
  bool augment = true;               // flips, 90-degree rotations, colour jitter (same draw on a sequence group)
  double color_jitter = 0.1;
  double stain_jitter = 0.0;         // H&E (HED) density jitter strength (RGB images; 0.05 light, 0.2 strong)
  // Whole-slide images (source: slides; docs/data.md, "Slide datasets"). A sample is a data.size² region at the
  // training resolution drawn from tissue.
  double mpp = 0;                    // training resolution in micrometres per pixel (0: data.level's)
  int64_t level = 0;                 // pyramid level to train on when data.mpp is 0
  double mask_downsample = 0;        // level-0 pixels per label-mask pixel (0: from the mask's and slide's sizes)
  NamedValues classes;               // annotation class name -> label id (>= 1) or "ignore"
  NamedValues class_colors;          // class name -> "#rrggbb" in drawings (training fills it from the annotations)
  std::vector<std::string> class_priority;  // overlaps: the first listed wins (unlisted: the later in the file)
  std::string unannotated = "background";   // pixels no annotation covers: background (0) or ignore
  bool include_detections = false;   // QuPath detections (cells) count as annotations
  std::string tissue = "standard";   // tissue detector preset: standard, pale, ihc, none
  double min_tissue = 0.25;          // fraction of a sample's area that must be tissue
  std::string sampling = "tissue";   // tissue (uniform over tissue) or balanced (each class equally often)
  std::string cache_dir;             // tissue masks are cached here ("" = <train.out_dir>/cache)
  // NIfTI volumes (source: nifti; docs/data.md, "Volumes"): samples are data.size³ crops of the cases of one fold.
  int64_t fold = 0;                  // splits_final.json's fold, else fold k of 5 over the sorted cases
  std::vector<std::string> spacing;  // target voxel spacing, mm along i, j, k (empty: the files' own, all equal)
  NamedValues regions;               // evaluation regions: name -> "label,label,..." (a union of labels)
  PatcherConfig patcher;
  template <class V>
  void visit(V& v) {
    v.field("source", source, Range<std::string>{}, "dataset source (data::dataset_sources())");
    v.choice("kind", kind, {"pathology", "mri"});
    v.field("path", path, Range<std::string>{}, "training data path");
    v.field("val_path", val_path, Range<std::string>{}, "validation data path");
    v.field("size", size, Range<int64_t>{8, int64_t{1} << 22}, "synthetic sample side");
    v.field("train_samples", train_samples, Range<int64_t>{1, int64_t{1} << 40}, "synthetic training samples");
    v.field("val_samples", val_samples, Range<int64_t>{0, int64_t{1} << 40}, "synthetic validation samples");
    v.field("workers", workers, Range<int64_t>{0, 256}, "loader threads per rank");
    v.field("prefetch", prefetch, Range<int64_t>{1, 1024}, "batches loaded ahead");
    v.field("augment", augment, Range<bool>{}, "random flips, rotations and colour jitter");
    v.field("color_jitter", color_jitter, Range<double>{0.0, 1.0}, "colour jitter strength");
    v.field("stain_jitter", stain_jitter, Range<double>{0.0, 1.0}, "H&E stain (HED) jitter strength, RGB images");
    v.field("mpp", mpp, Range<double>{0.0, 1e4}, "slides: training resolution in um/px (0: data.level)");
    v.field("level", level, Range<int64_t>{0, 64}, "slides: pyramid level when data.mpp is 0");
    v.field("mask_downsample", mask_downsample, Range<double>{0.0, 1e6},
            "slides: level-0 pixels per label-mask pixel (0: from the sizes)");
    v.mapping("classes", classes, "slides: annotation class name -> label id >= 1, or ignore");
    v.mapping("class_colors", class_colors, "slides: class name -> \"#rrggbb\" for outputs (default: the annotations')");
    v.list("class_priority", class_priority, "slides: class names, the first wins where annotations overlap");
    v.choice("unannotated", unannotated, {"background", "ignore"});
    v.field("include_detections", include_detections, Range<bool>{}, "slides: QuPath detections are annotations");
    v.choice("tissue", tissue, {"standard", "pale", "ihc", "none"});
    v.field("min_tissue", min_tissue, Range<double>{0.0, 1.0}, "slides: tissue fraction a sample needs");
    v.choice("sampling", sampling, {"tissue", "balanced"});
    v.field("cache_dir", cache_dir, Range<std::string>{},
            "slides: tissue mask cache, nifti: intensity statistics (\"\": <train.out_dir>/cache)");
    v.field("fold", fold, Range<int64_t>{0, 1000}, "nifti: the cross-validation fold (splits_final.json or 5 folds)");
    v.list("spacing", spacing, "nifti: resample every case to this spacing, mm along i j k (empty: no resampling)");
    v.mapping("regions", regions, "nifti: evaluation regions, name -> comma-separated label values (their union)");
    v.section("patcher", patcher);
  }
};

struct TrainConfig {
  int64_t steps = 100;                 // optimiser steps
  int64_t batch_size = 1;              // samples per data group and step
  std::string optimizer = "adamw";     // adamw, lamb
  double lr = 1e-3;
  double weight_decay = 0.05;          // not applied to biases, norms and positional tables
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  std::string schedule = "cosine";     // cosine, linear, polynomial, constant (after linear warmup)
  int64_t warmup_steps = 10;
  double min_lr = 0.0;
  double power = 1.0;                  // polynomial schedule exponent
  double clip_grad_norm = 1.0;         // 0 = off
  std::string precision = "fp32";      // fp32; bf16 and fp16 (with loss scaling) on CUDA
  double ce_weight = 1.0, dice_weight = 1.0;
  int64_t log_every = 1;
  int64_t eval_every = 50;             // 0 = only at the end
  int64_t checkpoint_every = 50;       // 0 = only at the end
  double checkpoint_every_minutes = 0; // also checkpoint when this much wall time passed since the last (0 = off)
  int64_t keep_checkpoints = 1;        // checkpoints kept: 1 = checkpoint.pt only; N > 1 also the N newest
                                       // checkpoint-<step>.pt (checkpoint.pt is the newest of them)
  int64_t max_bad_steps = 5;           // consecutive non-finite steps before stopping
  std::string out_dir = "runs/default";
  // Rank 0's progress line (train/progress.h): auto = when stderr is a terminal, or under mpirun (whose ranks write
  // to pipes) when the job has a controlling terminal; the per-step log lines then give way to it.
  std::string progress = "auto";
  template <class V>
  void visit(V& v) {
    v.field("steps", steps, Range<int64_t>{1, int64_t{1} << 40}, "optimiser steps");
    v.field("batch_size", batch_size, Range<int64_t>{1, 1 << 20}, "samples per data group and step");
    v.choice("optimizer", optimizer, {"adamw", "lamb"});
    v.field("lr", lr, Range<double>{0.0, 10.0}, "peak learning rate");
    v.field("weight_decay", weight_decay, Range<double>{0.0, 10.0}, "decoupled weight decay");
    v.field("beta1", beta1, Range<double>{0.0, 0.999999}, "first-moment decay");
    v.field("beta2", beta2, Range<double>{0.0, 0.9999999}, "second-moment decay");
    v.field("eps", eps, Range<double>{0.0, 1.0}, "optimiser epsilon");
    v.choice("schedule", schedule, {"cosine", "linear", "polynomial", "constant"});
    v.field("warmup_steps", warmup_steps, Range<int64_t>{0, int64_t{1} << 40}, "linear warmup steps");
    v.field("min_lr", min_lr, Range<double>{0.0, 10.0}, "final learning rate");
    v.field("power", power, Range<double>{0.0, 100.0}, "polynomial schedule exponent");
    v.field("clip_grad_norm", clip_grad_norm, Range<double>{0.0, 1e9}, "global gradient-norm limit (0 = off)");
    v.choice("precision", precision, {"fp32", "bf16", "fp16"});
    v.field("ce_weight", ce_weight, Range<double>{0.0, 1e6}, "cross-entropy weight");
    v.field("dice_weight", dice_weight, Range<double>{0.0, 1e6}, "soft Dice weight");
    v.field("log_every", log_every, Range<int64_t>{1, int64_t{1} << 40}, "steps between metric lines");
    v.field("eval_every", eval_every, Range<int64_t>{0, int64_t{1} << 40}, "steps between evaluations");
    v.field("checkpoint_every", checkpoint_every, Range<int64_t>{0, int64_t{1} << 40}, "steps between checkpoints");
    v.field("checkpoint_every_minutes", checkpoint_every_minutes, Range<double>{0.0, 1e7},
            "minutes of wall time between checkpoints (0 = off)");
    v.field("keep_checkpoints", keep_checkpoints, Range<int64_t>{1, 1 << 20},
            "checkpoints kept (1 = checkpoint.pt only; N > 1 also keeps checkpoint-<step>.pt files)");
    v.field("max_bad_steps", max_bad_steps, Range<int64_t>{1, 1 << 20}, "non-finite steps tolerated in a row");
    v.field("out_dir", out_dir, Range<std::string>{}, "where checkpoints, metrics and predictions go");
    v.choice("progress", progress, {"auto", "on", "off"});
  }
};

struct Config {
  uint64_t seed = 0;
  std::string log_level = "info";
  std::string dtype = "float32";
  std::string device = "auto";  // auto (the local rank's GPU when CUDA is present, else cpu), cpu, cuda
  GridConfig grid;
  ModelConfig model;
  DistConfig dist;
  DataConfig data;
  TrainConfig train;
  template <class V>
  void visit(V& v) {
    v.field("seed", seed, Range<uint64_t>{}, "random seed");
    v.choice("log_level", log_level, {"trace", "debug", "info", "warn", "error", "off"});
    v.choice("dtype", dtype, {"float32", "float64"});
    v.choice("device", device, {"auto", "cpu", "cuda"});
    v.section("grid", grid);
    v.section("model", model);
    v.section("dist", dist);
    v.section("data", data);
    v.section("train", train);
  }
};

// Parses YAML text; `overrides` are "key.sub=value" strings applied on top (values are YAML scalars).
// Throws ConfigError naming the key for unknown keys, wrong types, out-of-range values and inconsistent settings.
// The names of strategies, decoders, patchers, scorers and dataset sources are stored, not checked: the layers
// above own those lists (their registries); train::check_config checks them and the rules that depend on them.
Config parse_config(const std::string& yaml_text, const std::vector<std::string>& overrides = {});
// Reads a YAML file (ConfigError if it cannot be read) and parses it as above.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});
// Checks relations between fields that need no registry (e.g. dim % heads == 0). parse_config calls it.
void validate(const Config& config);
// The configuration as YAML (every field, defaults included).
std::string to_yaml(const Config& config);

}  // namespace spvit
