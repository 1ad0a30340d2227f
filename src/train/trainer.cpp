#include "spvit/train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "spvit/core/atomic_file.h"
#include "spvit/core/device_memory.h"
#include "spvit/core/logging.h"
#include "spvit/core/stop_signal.h"
#include "spvit/core/timer.h"
#include "spvit/dist/output_agreement.h"
#include "spvit/train/checkpoint.h"
#include "spvit/train/class_colours.h"
#include "spvit/train/data_setup.h"
#include "spvit/train/evaluation.h"
#include "spvit/train/optim/optim.h"
#include "spvit/train/precision.h"
#include "spvit/train/progress.h"
#include "spvit/train/resume_check.h"
#include "spvit/train/train_step.h"

namespace spvit::train {
namespace {

class Trainer {
 public:
  Trainer(const Config& config, const dist::ProcessGrid& grid) : config_(config), grid_(grid) {
    data_ = open_datasets(config);
    // Checkpoints store config_: with the annotations' class colours in it, `spvit infer` draws them the same.
    adopt_annotation_colours(config_.data, *data_.train);
    class_colour_table(config_.data, data_.train->num_classes());  // a bad data.class_colors entry: ConfigError now
    parts_ = make_training_parts(config_, grid_, data_.train->num_classes());
    loader_ = make_loader(data_.train, config, grid, /*training=*/true);
    std::filesystem::create_directories(config.train.out_dir);
    metrics_path_ = config.train.out_dir + "/metrics.jsonl";
    checkpoint_path_ = config.train.out_dir + "/checkpoint.pt";
  }

  TrainSummary run(const TrainOptions& options) {
    TrainingPosition pos;
    const std::string resume_from = options.resume_path.empty() ? checkpoint_path_ : options.resume_path;
    const bool resume = options.resume || (options.resume_if_exists && checkpoint_exists(resume_from));
    if (resume) {
      check_resume(resume_from, read_checkpoint_info(resume_from), config_, grid_.world_size(),
                   options.allow_changes);
      pos = load_checkpoint(resume_from, *parts_->model, parts_->optimizer.get(), nullptr, parts_->scaler.get());
      log::info("resumed from {} at step {} (epoch {}, batch {})", resume_from, pos.step, pos.epoch,
                pos.batch_in_epoch);
    } else if (options.resume_if_exists) {
      log::info("no checkpoint at {}: starting a fresh run (--resume-if-exists)", resume_from);
    }
    // A fresh run starts a fresh log; a resumed one drops the lines written after its checkpoint (the steps it is
    // about to run again), so the log has each step once.
    dist::write_on_one_rank(grid_.world(), grid_.world_rank() == 0,
                            [&] { keep_metrics_up_to(resume ? pos.step : 0); });
    last_checkpoint_time_ = Clock::now();
    loader_->start_epoch(pos.epoch, pos.batch_in_epoch);  // the interrupted run's next batch, nothing read before it
    log::info("training {} for {} steps: {} sample(s) per data group per step, grid {}, {}, {}",
              data_.train->describe(), config_.train.steps, config_.train.batch_size, grid_.shape().str(),
              config_.model.attention, parts_->precision.describe());

    TrainSummary summary;
    int64_t bad_steps = 0, steps_this_run = 0;
    const bool draw_progress = grid_.world_rank() == 0 && progress_wanted(config_.train.progress);
    ProgressBar progress("step", config_.train.steps, pos.step, draw_progress);
    while (pos.step < config_.train.steps) {
      if (options.stop_after > 0 && steps_this_run == options.stop_after) {
        save(pos);  // e.g. the end of a time-limited job: resume continues bit-exactly from here
        break;
      }
      auto batch = next_batch(pos);
      Stopwatch watch;
      const auto result = parts_->step->run(*batch, pos.step, rank_local_news());
      if (result.write_failed) {
        // Rank 0 could not append to the metrics log; every rank learnt it from the step's all-reduce.
        progress.clear();
        if (grid_.world_rank() == 0) throw WriteError(pending_write_error_);
        throw dist::PeerWriteError("rank 0 could not write the metrics log");
      }
      if (result.stop_signal != 0 && !result.finite) {
        progress.clear();
        stop_for_signal(result.stop_signal, pos);  // the step was skipped: the checkpoint is of the step before
      }
      if (result.overflow) {  // fp16 gradients overflowed at this loss scale: normal, not a bad step
        progress.clear();
        log::info("step {}: fp16 gradient overflow, step skipped, loss scale now {}", pos.step + 1,
                  parts_->scaler->scale_value());
        continue;
      }
      if (!result.finite) {
        ++bad_steps;
        progress.clear();
        log::warn("step {}: non-finite loss or gradients, step skipped ({} in a row)", pos.step + 1, bad_steps);
        if (bad_steps >= config_.train.max_bad_steps) {
          SPVIT_THROW(TrainingStopped, "stopping after ", bad_steps, " consecutive non-finite steps (train.max_bad_steps);"
                      " the last good checkpoint is ", checkpoint_path_);
        }
        continue;
      }
      bad_steps = 0;
      ++pos.step;
      ++steps_this_run;
      summary.last_loss = result.loss;
      const double seconds = watch.seconds();
      nlohmann::json line{{"step", pos.step}, {"loss", result.loss}, {"dice", result.dice},
                          {"lr", parts_->optimizer->lr()}, {"grad_norm", result.grad_norm},
                          {"tokens_per_s", result.tokens / seconds}, {"step_s", seconds},
                          {"peak_mem_mib", peak_memory_gib(parts_->precision.device) * 1024.0}};  // device peak on a GPU
      progress.update(pos.step, training_progress_details(result.loss, parts_->optimizer->lr(), result.tokens / seconds));
      const bool last = pos.step == config_.train.steps;
      const bool stopping = result.stop_signal != 0 && !last;  // a scheduler's grace time is short: no evaluation
      if (!stopping && config_.train.eval_every > 0 && data_.val &&
          (pos.step % config_.train.eval_every == 0 || last)) {
        auto counts = evaluate(parts_->model, *data_.val, config_, grid_);
        summary.val_dice = counts.mean_dice();
        line["val_dice"] = summary.val_dice;
        line["val_pixel_accuracy"] = counts.pixel_accuracy();
        progress.clear();
        log::info("step {}: validation mean Dice {:.4f}", pos.step, summary.val_dice);
      }
      if (pos.step % config_.train.log_every == 0 || last) {
        // On a terminal the bar shows every step; the log line is then written only with an evaluation.
        write_metrics(line, !progress.enabled() || line.contains("val_dice"));
      }
      if ((config_.train.checkpoint_every > 0 && pos.step % config_.train.checkpoint_every == 0) || last ||
          result.checkpoint_due) {
        save(pos);
      }
      if (stopping) {
        progress.clear();
        stop_for_signal(result.stop_signal, pos);
      }
    }
    progress.finish();
    summary.steps = pos.step;
    summary.checkpoint = checkpoint_path_;
    summary.metrics = metrics_path_;
    return summary;
  }

 private:
  using Clock = std::chrono::steady_clock;

  // What this rank tells the others in the step's all-reduce: rank 0's clock says a checkpoint is due
  // (train.checkpoint_every_minutes since the last one); rank 0 could not append to the metrics log.
  StepNews rank_local_news() const {
    const bool rank0 = grid_.world_rank() == 0;
    const double minutes = std::chrono::duration<double>(Clock::now() - last_checkpoint_time_).count() / 60.0;
    StepNews news;
    news.checkpoint_due = rank0 && config_.train.checkpoint_every_minutes > 0 &&
                          minutes >= config_.train.checkpoint_every_minutes;
    news.write_failed = !pending_write_error_.empty();
    return news;
  }

  bool checkpoint_exists(const std::string& path) const {
    // Every rank must decide alike (a node-local view of a shared filesystem may lag): rank 0 decides.
    auto flag = torch::tensor({grid_.world_rank() == 0 && std::filesystem::exists(path) ? 1.0 : 0.0}, torch::kFloat64);
    grid_.world()->all_reduce(flag, dist::ReduceOp::Max)->wait();
    return flag.item<double>() > 0;
  }

  // Rewrites the metrics log keeping the lines of steps <= `step` (0: an empty log).
  void keep_metrics_up_to(int64_t step) {
    if (!std::filesystem::exists(metrics_path_)) return;  // nothing to keep or to clear
    std::string kept;
    if (step > 0) {
      std::ifstream in(metrics_path_);
      std::string line;
      while (std::getline(in, line)) {
        try {
          if (nlohmann::json::parse(line).value("step", int64_t{0}) <= step) kept += line + "\n";
        } catch (const nlohmann::json::exception&) {
          // a line cut short by the interruption: dropped
        }
      }
    }
    write_text_atomically(metrics_path_, kept);
  }

  [[noreturn]] void stop_for_signal(int signal, const TrainingPosition& pos) {
    if (pos.step != last_saved_step_) save(pos);
    SPVIT_THROW(TrainingPreempted, stop_signal_name(signal), " received: stopped after step ", pos.step, " of ",
                config_.train.steps, " with checkpoint ", checkpoint_path_,
                "; run the same command with --resume (or --resume-if-exists) to continue");
  }

  // The next batch, moving to the next epoch when one ends.
  std::optional<data::Batch> next_batch(TrainingPosition& pos) {
    auto batch = loader_->next();
    if (!batch) {
      ++pos.epoch;
      pos.batch_in_epoch = 0;
      loader_->start_epoch(pos.epoch);
      batch = loader_->next();
      SPVIT_CHECK(batch.has_value(), "the training data yields no batch: ", data_.train->size(),
                  " sample(s) for ", grid_.data_size(), " data group(s) of batch size ", config_.train.batch_size);
    }
    ++pos.batch_in_epoch;
    return batch;
  }

  void write_metrics(const nlohmann::json& line, bool log_line) {
    if (grid_.world_rank() != 0) return;
    // A failure is reported to every rank by the next step's all-reduce (or the next checkpoint's agreement).
    if (pending_write_error_.empty()) {
      try {
        append_text(metrics_path_, line.dump() + "\n");
      } catch (const WriteError& e) {
        pending_write_error_ = e.what();
      }
    }
    if (!log_line) return;
    log::info("step {} loss {:.5f} dice {:.4f} lr {:.2e} {:.0f} tokens/s", line["step"].get<int64_t>(),
              line["loss"].get<double>(), line["dice"].get<double>(), line["lr"].get<double>(),
              line["tokens_per_s"].get<double>());
  }

  // Rank 0 writes; the agreement's all-reduce also keeps every rank from running ahead of the checkpoint, and ends
  // every rank with the same WriteError exit if it (or an earlier metrics line) could not be written.
  void save(const TrainingPosition& pos) {
    dist::write_on_one_rank(grid_.world(), grid_.world_rank() == 0, [&] {
      if (!pending_write_error_.empty()) throw WriteError(pending_write_error_);
      TrainingPosition stored = pos;
      stored.world_size = grid_.world_size();
      save_checkpoint(checkpoint_path_, *parts_->model, *parts_->optimizer, stored, to_yaml(config_), parts_->scaler.get(),
                      data_.train->statistics_json());
      keep_numbered_checkpoint(checkpoint_path_, pos.step, config_.train.keep_checkpoints);
    });
    last_saved_step_ = pos.step;
    last_checkpoint_time_ = Clock::now();
  }

  Config config_;
  const dist::ProcessGrid& grid_;
  Datasets data_;
  std::unique_ptr<TrainingParts> parts_;  // model, precision, optimiser, schedule, averager, scaler, step
  std::unique_ptr<data::Loader> loader_;
  std::string metrics_path_, checkpoint_path_;
  std::string pending_write_error_;  // rank 0: a metrics line that could not be written
  int64_t last_saved_step_ = -1;
  Clock::time_point last_checkpoint_time_ = Clock::now();
};

}  // namespace

TrainSummary run_training(const Config& config, const dist::ProcessGrid& grid, const TrainOptions& options) {
  install_stop_signal_handlers();  // from here on SIGTERM/SIGINT/SIGUSR1 end the run with a checkpoint
  Trainer trainer(config, grid);
  return trainer.run(options);
}

}  // namespace spvit::train
