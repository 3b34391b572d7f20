// Images per second and peak memory of the SDXL training step: UNet forward on noised latents,
// the float32 denoising loss, backward, gradient clipping and AdamW, exactly as the trainer's
// step (worker/train/trainer.h) minus data loading, which the latent cache makes negligible.
// Latents and text embeddings are synthetic (seeded), so no data files are needed.
//
//   train_benchmark --model PATH [--model-config JSON]      # a checkpoint (the tiny golden one)
//   train_benchmark --arch sdxl-base                         # SDXL, random weights
//     [--device cuda] [--dtype bfloat16] [--size 1024] [--batch 1] [--method lora|full]
//     [--checkpointing on|off] [--steps 10] [--warmup 2] [--lora-rank 16] [--json PATH]
//
// --json PATH appends the common benchmark record (benchmarks/bench_record.h): figures
// seconds_per_step, images_per_second and peak_memory (GiB: the CUDA allocator's peak on a GPU,
// max RSS on the CPU), or status "out_of_memory" with no figures.
//
// Precision as the trainer: --dtype bfloat16 with lora stores the frozen UNet in bf16 and
// trains float32 LoRA tensors; with full, the UNet stays float32 (AdamW's master weights).
// On CUDA both run under bf16 autocast.
//
// Output: a human line and one JSON line. Checks: every step's loss must be finite (exit 1
// otherwise). A configuration that does not fit in GPU memory (full fine-tune of SDXL with
// AdamW: 2.6 B float32 weights + gradients + two moments is about 41 GB before activations)
// reports "status": "out_of_memory" and exits 0: that is a result, not a crash.
#include <sys/resource.h>
#include <sys/utsname.h>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "benchmarks/bench_record.h"
#include "common/torch_compat.h"
#include "nlohmann/json.hpp"
#include "worker/lora/lora_network.h"
#include "worker/model/layers.h"
#include "worker/model/sdxl/sdxl_models.h"
#include "worker/sample/noise_schedule.h"
#include "worker/train/diffusion_loss.h"
#include "worker/train/optimizer.h"

namespace {

using namespace likeness;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kWeightsSeed = 2026;
constexpr uint64_t kDataSeed = 7;
constexpr int kTextTokens = 77;  // CLIP's context length
// The trainer's defaults (worker/train/train_settings.h): diffusers' SDXL script rates.
constexpr double kLoraLearningRate = 1e-4;
constexpr double kFullLearningRate = 5e-6;
constexpr double kWeightDecay = 1e-2;
constexpr double kMaxGradNorm = 1.0;
// diffusers' SDXL LoRA examples train rank 16 at 1024².
constexpr int kDefaultLoraRank = 16;
constexpr int kDefaultSize = 1024;  // SDXL's native resolution

std::map<std::string, std::string> ParseFlags(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  for (int i = 1; i + 1 < argc; i += 2) flags[std::string(argv[i]).substr(2)] = argv[i + 1];
  return flags;
}

std::string Flag(const std::map<std::string, std::string>& flags, const std::string& name,
                 const std::string& fallback) {
  auto it = flags.find(name);
  return it == flags.end() ? fallback : it->second;
}

int IntFlag(const std::map<std::string, std::string>& flags, const std::string& name, int fallback) {
  int value = fallback;
  if (flags.count(name) && !absl::SimpleAtoi(flags.at(name), &value)) {
    std::cerr << "train_benchmark: --" << name << " wants an integer\n";
    std::exit(2);
  }
  return value;
}

int64_t MaxRssBytes() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

constexpr double kBytesPerGiB = 1024.0 * 1024.0 * 1024.0;

// The --json record: what changes the figures goes in `config` (bench_record.h's rule).
void AppendBenchRecord(const std::map<std::string, std::string>& flags, const nlohmann::json& r,
                       const std::vector<double>& step_seconds, int batch, double peak_bytes) {
  if (!flags.count("json")) return;
  bench::BenchRecord record = bench::NewRecord("train_step");
  record.machine.libtorch = TORCH_VERSION;
  record.status = r.value("status", "failed");
  const std::string model = r.value("model", "");
  record.config = {{"model", flags.count("arch") ? model : model.substr(model.rfind('/') + 1)},
                   {"size", r.value("size", 0)},
                   {"batch", batch},
                   {"method", r.value("method", "")},
                   {"dtype", r.value("dtype", "")},
                   {"device", r.value("device", "")},
                   {"gradient_checkpointing", r.value("gradient_checkpointing", false)}};
  if (r.contains("lora_rank")) record.config["lora_rank"] = r["lora_rank"];
  if (record.status == "ok") {
    std::vector<double> images_per_second;
    for (double s : step_seconds) images_per_second.push_back(batch / s);
    record.figures.push_back(
        bench::SummarizeRepeats("seconds_per_step", "s", bench::Better::kLower, step_seconds));
    record.figures.push_back(bench::SummarizeRepeats("images_per_second", "images/s",
                                                     bench::Better::kHigher, images_per_second));
    record.figures.push_back(bench::SummarizeRepeats("peak_memory", "GiB", bench::Better::kLower,
                                                     {peak_bytes / kBytesPerGiB}));
  }
  record.extra = {{"first_loss", r.value("first_loss", 0.0)}, {"last_loss", r.value("last_loss", 0.0)}};
  if (absl::Status s = bench::AppendRecord(flags.at("json"), record); !s.ok()) {
    std::cerr << "train_benchmark: --json: " << s.message() << "\n";
  }
}

int Fail(const std::string& what) {
  std::cerr << "train_benchmark: " << what << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const auto flags = ParseFlags(argc, argv);
  const std::string dtype_name = Flag(flags, "dtype", "float32");
  if (dtype_name != "float32" && dtype_name != "bfloat16") return Fail("--dtype: float32 or bfloat16");
  const bool bf16 = dtype_name == "bfloat16";
  const std::string method = Flag(flags, "method", "lora");
  if (method != "lora" && method != "full") return Fail("--method: lora or full");
  const std::string checkpointing = Flag(flags, "checkpointing", "off");
  if (checkpointing != "on" && checkpointing != "off") return Fail("--checkpointing: on or off");
  const int steps = IntFlag(flags, "steps", 10);
  const int warmup = IntFlag(flags, "warmup", 2);
  const int batch = IntFlag(flags, "batch", 1);
  const int rank = IntFlag(flags, "lora-rank", kDefaultLoraRank);
  if (steps < 1 || warmup < 0 || batch < 1) return Fail("--steps >= 1, --warmup >= 0, --batch >= 1");
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(Flag(flags, "device", "cpu"));
  } catch (const c10::Error&) {
    return Fail("--device: cpu, cuda or cuda:N");
  }
  if (device.is_cuda() && !torch::cuda::is_available()) return Fail("--device cuda: no GPU here");
  if (bf16 && method == "full" && !device.is_cuda()) {
    return Fail("--dtype bfloat16 --method full is CUDA autocast; on the CPU use float32");
  }
  // Frozen weights in bf16 for LoRA; a full fine-tune's weights are AdamW's float32 masters.
  const torch::Dtype weight_dtype = bf16 && method == "lora" ? torch::kBFloat16 : torch::kFloat32;
  const int device_index = device.has_index() ? device.index() : 0;

  nlohmann::json result = {
      {"benchmark", "train_step"}, {"method", method}, {"dtype", dtype_name},
      {"device", device.str()},   {"batch", batch},   {"gradient_checkpointing", checkpointing == "on"},
      {"steps", steps},           {"warmup", warmup}, {"libtorch", TORCH_VERSION},
      {"threads", torch::get_num_threads()},          {"cpu", bench::CpuModel()},
  };
  if (method == "lora") result["lora_rank"] = rank;
  std::vector<double> step_seconds;
  std::vector<double> losses;
  std::string model_label;
  int size = 0;
  int64_t trainable = 0;
  try {
    model::SdxlBuildOptions build;
    build.dtype = weight_dtype;
    build.device = device;
    absl::StatusOr<model::SdxlModels> models;
    if (flags.count("arch")) {
      models = model::BuildSdxlArchitecture(flags.at("arch"), build);
      if (!models.ok()) return Fail(std::string(models.status().message()));
      // Only the UNet trains here; its random weights are enough to time it.
      model::InitializeRandomly(*models->unet, kWeightsSeed);
      model_label = flags.at("arch") + " (random weights)";
    } else {
      const std::string path = Flag(flags, "model", "");
      if (path.empty()) return Fail("give --model PATH [--model-config JSON] or --arch sdxl-base");
      nlohmann::json config_override = nullptr;
      if (flags.count("model-config")) {
        std::ifstream in(flags.at("model-config"));
        config_override = nlohmann::json::parse(in, nullptr, false);
        if (config_override.is_discarded()) return Fail("--model-config: not JSON");
        if (config_override.contains("config")) config_override = config_override["config"];
      }
      model::SdxlLoadReport report;
      models = model::LoadSdxlModels(path, build, &report, config_override);
      if (!models.ok()) return Fail(std::string(models.status().message()));
      model_label = path;
    }
    const int64_t factor = models->vae->config().DownsampleFactor();
    size = IntFlag(flags, "size", kDefaultSize);
    const auto& config = models->unet->config();
    const int64_t multiple = factor << (config.num_levels() - 1);
    if (size % multiple != 0) return Fail(absl::StrCat("--size must be a multiple of ", multiple));

    // The trainer freezes everything, then makes the trained tensors require grad.
    for (const char* name : model::kSdxlComponents) {
      for (torch::Tensor& p : models->Component(name)->parameters()) p.requires_grad_(false);
    }
    std::unique_ptr<lora::LoraNetwork> lora_network;
    train::ParamGroup group;
    group.name = "unet";
    group.weight_decay = kWeightDecay;
    if (method == "lora") {
      lora::LoraTrainOptions options;
      options.rank = rank;
      options.seed = kWeightsSeed;
      options.freeze_base = true;
      absl::StatusOr<std::unique_ptr<lora::LoraNetwork>> created =
          lora::LoraNetwork::CreateTrainable(*models, options);
      if (!created.ok()) return Fail(std::string(created.status().message()));
      lora_network = std::move(*created);
      for (auto& [name, tensor] : lora_network->NamedTrainableTensors()) group.params.push_back(tensor);
      group.base_lr = kLoraLearningRate;
    } else {
      for (torch::Tensor& p : models->unet->parameters()) {
        p.requires_grad_(true);
        group.params.push_back(p);
      }
      group.base_lr = kFullLearningRate;
    }
    for (const torch::Tensor& p : group.params) trainable += p.numel();
    // The text encoders' outputs are cached in training; free them and the VAE.
    models->vae = model::AutoencoderKL(nullptr);
    if (method == "full") {
      models->text_encoder = model::CLIPTextModel(nullptr);
      models->text_encoder_2 = model::CLIPTextModelWithProjection(nullptr);
    }
    models->unet->train();
    models->unet->SetGradientCheckpointing(checkpointing == "on");
    train::AdamW optimizer({group}, train::AdamWOptions{});

    const int64_t latent = size / factor;
    const int64_t pooled_dim =
        config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim;
    torch::Generator generator = at::detail::createCPUGenerator(kDataSeed);
    const auto options = torch::TensorOptions().dtype(weight_dtype).device(device);
    const torch::Tensor x0 =
        torch::randn({batch, config.in_channels, latent, latent}, generator, torch::kFloat32);
    const torch::Tensor context =
        torch::randn({batch, kTextTokens, config.cross_attention_dim[0]}, generator, torch::kFloat32)
            .to(options);
    const torch::Tensor pooled =
        torch::randn({batch, pooled_dim}, generator, torch::kFloat32).to(options);
    const torch::Tensor time_ids =
        torch::tensor({double(size), double(size), 0.0, 0.0, double(size), double(size)})
            .repeat({batch, 1})
            .to(options);
    sample::NoiseSchedule schedule;
    compat::ResetCudaPeakMemory(device_index);

    for (int step = 0; step < warmup + steps; ++step) {
      const Clock::time_point start = Clock::now();
      const torch::Tensor noise = torch::randn(x0.sizes(), generator, torch::kFloat32);
      const torch::Tensor t = torch::randint(0, 1000, {batch}, generator, torch::kInt64);
      const torch::Tensor noisy = schedule.AddNoise(x0, noise, t).to(options);
      const torch::Tensor target = schedule.Target(x0, noise, t).to(device);
      torch::Tensor loss;
      {
        std::optional<compat::CudaAutocast> autocast;
        if (device.is_cuda() && bf16) autocast.emplace(torch::kBFloat16);
        const torch::Tensor prediction =
            models->unet->forward(noisy, t.to(device), context, pooled, time_ids);
        loss = train::ComputeDiffusionLoss(prediction, target, torch::Tensor(), batch, 0.0).total;
      }
      loss.backward();
      std::vector<torch::Tensor> grads;
      for (const torch::Tensor& p : optimizer.AllParams()) grads.push_back(p.grad());
      train::ClipGradNorm(grads, kMaxGradNorm);
      optimizer.Step(1.0);
      optimizer.ZeroGrad();
      const double value = loss.item<double>();  // synchronises the device
      if (device.is_cuda()) torch::cuda::synchronize();
      const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
      if (!std::isfinite(value)) return Fail(absl::StrCat("step ", step, ": loss is ", value));
      losses.push_back(value);
      if (step >= warmup) step_seconds.push_back(seconds);
    }
  } catch (const c10::OutOfMemoryError& e) {
    result["status"] = "out_of_memory";
    result["model"] = model_label;
    result["size"] = size;
    result["error"] = std::string(e.what_without_backtrace()).substr(0, 300);
    const compat::CudaMemoryStats cuda = compat::GetCudaMemoryStats(device_index);
    if (cuda.has_cuda_allocator) result["peak_reserved_bytes"] = cuda.peak_reserved_bytes;
    std::cout << "train: " << method << " " << size << "² batch " << batch << " " << dtype_name
              << " checkpointing " << checkpointing << " on " << device.str()
              << ": OUT OF MEMORY (does not fit on this device)\n"
              << result.dump() << "\n";
    AppendBenchRecord(flags, result, {}, batch, 0.0);
    compat::EmptyCudaCache();
    return 0;
  } catch (const c10::Error& e) {
    return Fail(e.what_without_backtrace());
  }
  const double median = bench::UpperMedian(step_seconds);
  double total = 0;
  for (double s : step_seconds) total += s;
  result["status"] = "ok";
  result["model"] = model_label;
  result["size"] = size;
  result["trainable_parameters"] = trainable;
  result["seconds_per_step_median"] = median;
  result["seconds_per_step_min"] = *std::min_element(step_seconds.begin(), step_seconds.end());
  result["images_per_second"] = batch * step_seconds.size() / total;
  result["first_loss"] = losses.front();
  result["last_loss"] = losses.back();
  std::string memory;
  double peak_bytes = 0.0;
  const compat::CudaMemoryStats cuda = compat::GetCudaMemoryStats(device_index);
  if (device.is_cuda() && cuda.has_cuda_allocator) {
    result["peak_allocated_bytes"] = cuda.peak_allocated_bytes;
    result["peak_reserved_bytes"] = cuda.peak_reserved_bytes;
    peak_bytes = static_cast<double>(cuda.peak_allocated_bytes);
    memory = absl::StrCat(cuda.peak_allocated_bytes / double(1 << 30), " GiB peak allocated (",
                          cuda.peak_reserved_bytes / double(1 << 30), " GiB reserved)");
  } else {
    result["peak_rss_bytes"] = MaxRssBytes();
    peak_bytes = static_cast<double>(MaxRssBytes());
    memory = absl::StrCat(MaxRssBytes() / double(1 << 20), " MiB peak RSS");
  }
  utsname machine{};
  uname(&machine);
  result["kernel"] = machine.release;
  std::cout << "train: " << method << " " << size << "² batch " << batch << " " << dtype_name
            << " checkpointing " << checkpointing << " on " << device.str() << ": "
            << result["images_per_second"].get<double>() << " images/s (" << median
            << " s/step median of " << steps << "), " << memory << "\n"
            << result.dump() << "\n";
  AppendBenchRecord(flags, result, step_seconds, batch, peak_bytes);
  return 0;
}
