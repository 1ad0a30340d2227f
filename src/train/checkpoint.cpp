#include "spvit/train/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "spvit/core/atomic_file.h"
#include "spvit/core/error.h"
#include "spvit/model/parameter_names.h"

namespace spvit::train {
namespace {

torch::Tensor scalar(int64_t v) { return torch::tensor({v}, torch::kLong); }

torch::serialize::InputArchive open_archive(const std::string& path) {
  if (!std::filesystem::exists(path)) SPVIT_THROW(DataError, "checkpoint '", path, "' does not exist");
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path, torch::Device(torch::kCPU));  // GPU-trained tensors were stored on the CPU anyway
  } catch (const std::exception& e) {
    SPVIT_THROW(DataError, "checkpoint '", path, "' cannot be read (truncated or not an spvit checkpoint): ",
                std::string(e.what()).substr(0, 200));
  }
  return archive;
}

// Reads a parameter (buffer) of today's model under its name or the name an older version stored it under.
bool read_stored(torch::serialize::InputArchive& params, const std::string& name, torch::Tensor& out,
                 bool is_buffer = false) {
  for (const auto& stored_name : model::stored_parameter_names(name)) {
    if (params.try_read(stored_name, out, is_buffer)) return true;
  }
  return false;
}

}  // namespace

void save_checkpoint(const std::string& path, torch::nn::Module& model, const Optimizer& optimizer,
                     const TrainingPosition& position, const std::string& config_yaml, const LossScaler* scaler,
                     const std::string& data_statistics) {
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive params;
  for (const auto& p : model.named_parameters()) params.write(p.key(), p.value().detach().cpu());
  for (const auto& b : model.named_buffers()) params.write(b.key(), b.value().cpu(), /*is_buffer=*/true);
  archive.write("model", params);
  torch::serialize::OutputArchive opt;
  optimizer.save(opt);
  archive.write("optimizer", opt);
  archive.write("optimizer_name", c10::IValue(optimizer.name()));
  archive.write("step", scalar(position.step));
  archive.write("epoch", scalar(position.epoch));
  archive.write("batch_in_epoch", scalar(position.batch_in_epoch));
  archive.write("world_size", scalar(position.world_size));
  archive.write("rng_state", at::detail::getDefaultCPUGenerator().get_state());
  archive.write("config", c10::IValue(config_yaml));
  if (!data_statistics.empty()) archive.write("data_statistics", c10::IValue(data_statistics));
  if (scaler != nullptr && scaler->enabled()) {
    torch::serialize::OutputArchive scaling;
    scaler->save(scaling);
    archive.write("loss_scaler", scaling);
  }
  write_file_atomically(path, [&](const std::string& tmp) {
    // Through a byte sink, not archive.save_to(tmp): LibTorch's zip writer throws from its destructor when a write
    // fails (disk full), which ends the process; the sink remembers the error and close() reports it.
    FileSink sink(tmp, path);
    archive.save_to([&sink](const void* data, size_t size) { return sink.write(data, size); });
    sink.close();
  });
}

TrainingPosition load_checkpoint(const std::string& path, torch::nn::Module& model, Optimizer* optimizer,
                                 std::string* config_yaml, LossScaler* scaler) {
  auto archive = open_archive(path);
  torch::serialize::InputArchive params;
  archive.read("model", params);
  torch::NoGradGuard no_grad;
  for (auto& p : model.named_parameters()) {
    torch::Tensor stored;
    if (!read_stored(params, p.key(), stored)) {
      SPVIT_THROW(DataError, "checkpoint '", path, "' has no parameter '", p.key(),
                  "': it was written for a different model configuration");
    }
    SPVIT_CHECK(stored.sizes() == p.value().sizes(), "checkpoint '", path, "': parameter '", p.key(), "' has shape ",
                stored.sizes(), " but the model expects ", p.value().sizes());
    p.value().copy_(stored);
  }
  for (auto& b : model.named_buffers()) {
    torch::Tensor stored;
    if (read_stored(params, b.key(), stored, /*is_buffer=*/true)) b.value().copy_(stored);
  }
  if (optimizer != nullptr) {
    c10::IValue name;
    archive.read("optimizer_name", name);
    SPVIT_CHECK(name.toStringRef() == optimizer->name(), "checkpoint '", path, "' holds ", name.toStringRef(),
                " state but the configuration uses ", optimizer->name());
    torch::serialize::InputArchive opt;
    archive.read("optimizer", opt);
    optimizer->load(opt);
  }
  TrainingPosition position;
  torch::Tensor t;
  archive.read("step", t);
  position.step = t.item<int64_t>();
  archive.read("epoch", t);
  position.epoch = t.item<int64_t>();
  archive.read("batch_in_epoch", t);
  position.batch_in_epoch = t.item<int64_t>();
  if (archive.try_read("world_size", t)) position.world_size = t.item<int64_t>();
  torch::Tensor rng;
  archive.read("rng_state", rng);
  at::Generator generator = at::detail::getDefaultCPUGenerator();  // a handle sharing the default generator
  generator.set_state(rng);
  torch::serialize::InputArchive scaling;
  if (scaler != nullptr && scaler->enabled() && archive.try_read("loss_scaler", scaling)) scaler->load(scaling);
  if (config_yaml != nullptr) {
    c10::IValue text;
    archive.read("config", text);
    *config_yaml = text.toStringRef();
  }
  return position;
}

torch::Tensor read_checkpoint_parameter(const std::string& path, const std::string& name) {
  auto archive = open_archive(path);
  torch::serialize::InputArchive params;
  torch::Tensor value;
  if (!archive.try_read("model", params) || !read_stored(params, name, value)) return {};
  return value;
}

std::string read_checkpoint_config(const std::string& path) {
  auto archive = open_archive(path);
  c10::IValue text;
  archive.read("config", text);
  return text.toStringRef();
}

std::string read_checkpoint_data_statistics(const std::string& path) {
  auto archive = open_archive(path);
  c10::IValue text;
  return archive.try_read("data_statistics", text) ? text.toStringRef() : std::string{};
}

CheckpointInfo read_checkpoint_info(const std::string& path) {
  auto archive = open_archive(path);
  CheckpointInfo info;
  c10::IValue text;
  archive.read("config", text);
  info.config_yaml = text.toStringRef();
  torch::Tensor t;
  archive.read("step", t);
  info.position.step = t.item<int64_t>();
  archive.read("epoch", t);
  info.position.epoch = t.item<int64_t>();
  archive.read("batch_in_epoch", t);
  info.position.batch_in_epoch = t.item<int64_t>();
  if (archive.try_read("world_size", t)) info.position.world_size = t.item<int64_t>();
  return info;
}

void keep_numbered_checkpoint(const std::string& checkpoint_path, int64_t step, int64_t keep) {
  namespace fs = std::filesystem;
  if (keep <= 1) return;
  const fs::path latest(checkpoint_path);
  const fs::path dir = latest.has_parent_path() ? latest.parent_path() : fs::path(".");
  const std::string stem = latest.stem().string() + "-";  // checkpoint-
  char number[32];
  std::snprintf(number, sizeof number, "%08lld", static_cast<long long>(step));
  const fs::path numbered = dir / (stem + number + latest.extension().string());
  std::error_code ec;
  fs::remove(numbered, ec);  // a step written before (a resumed run repeating it)
  fs::create_hard_link(latest, numbered, ec);
  if (ec) {  // e.g. a filesystem without hard links: a copy, written atomically like every checkpoint
    write_file_atomically(numbered.string(), [&](const std::string& tmp) {
      std::error_code copy_error;
      fs::copy_file(latest, tmp, fs::copy_options::overwrite_existing, copy_error);
      if (copy_error) throw WriteError(write_failure_message(numbered.string(), copy_error.value(), "copying"));
    });
  }
  // The numbered files sort by step (zero-padded); delete all but the `keep` newest.
  std::vector<fs::path> numbered_files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const auto name = entry.path().filename().string();
    if (name.rfind(stem, 0) == 0 && entry.path().extension() == latest.extension() &&
        name.find(".tmp.") == std::string::npos) {
      numbered_files.push_back(entry.path());
    }
  }
  std::sort(numbered_files.begin(), numbered_files.end());
  for (size_t i = 0; i + static_cast<size_t>(keep) < numbered_files.size(); ++i) fs::remove(numbered_files[i], ec);
}

}  // namespace spvit::train
