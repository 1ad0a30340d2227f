#include "spvit/train/checkpoint.h"

#include <filesystem>

#include "spvit/core/atomic_file.h"
#include "spvit/core/error.h"

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

}  // namespace

void save_checkpoint(const std::string& path, torch::nn::Module& model, const Optimizer& optimizer,
                     const TrainingPosition& position, const std::string& config_yaml, const LossScaler* scaler) {
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
  archive.write("rng_state", at::detail::getDefaultCPUGenerator().get_state());
  archive.write("config", c10::IValue(config_yaml));
  if (scaler != nullptr && scaler->enabled()) {
    torch::serialize::OutputArchive scaling;
    scaler->save(scaling);
    archive.write("loss_scaler", scaling);
  }
  write_file_atomically(path, [&](const std::string& tmp) { archive.save_to(tmp); });
}

TrainingPosition load_checkpoint(const std::string& path, torch::nn::Module& model, Optimizer* optimizer,
                                 std::string* config_yaml, LossScaler* scaler) {
  auto archive = open_archive(path);
  torch::serialize::InputArchive params;
  archive.read("model", params);
  torch::NoGradGuard no_grad;
  for (auto& p : model.named_parameters()) {
    torch::Tensor stored;
    if (!params.try_read(p.key(), stored)) {
      SPVIT_THROW(DataError, "checkpoint '", path, "' has no parameter '", p.key(),
                  "': it was written for a different model configuration");
    }
    SPVIT_CHECK(stored.sizes() == p.value().sizes(), "checkpoint '", path, "': parameter '", p.key(), "' has shape ",
                stored.sizes(), " but the model expects ", p.value().sizes());
    p.value().copy_(stored);
  }
  for (auto& b : model.named_buffers()) {
    torch::Tensor stored;
    if (params.try_read(b.key(), stored, /*is_buffer=*/true)) b.value().copy_(stored);
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
  if (!archive.try_read("model", params) || !params.try_read(name, value)) return {};
  return value;
}

std::string read_checkpoint_config(const std::string& path) {
  auto archive = open_archive(path);
  c10::IValue text;
  archive.read("config", text);
  return text.toStringRef();
}

}  // namespace spvit::train
