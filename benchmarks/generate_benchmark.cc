// Seconds per image of the generation pipeline (text encoders + sampling loop + VAE decode),
// and seconds per sampling step, after warm-up, over repeats; one JSON line per run.
//
//   generate_benchmark --model PATH [--model-config JSON]        # a checkpoint
//   generate_benchmark --arch sdxl-base                           # SDXL, random weights (GPU)
//     [--size 1024x1024] [--steps 30] [--sampler euler] [--cfg 5] [--repeats 5] [--warmup 1]
//     [--dtype bfloat16] [--device cuda] [--vocab PATH] [--json PATH]
//
// --json PATH appends the common benchmark record (benchmarks/bench_record.h) to PATH:
// seconds_per_image and seconds_per_step, median/min/max over the repeats. The test switch
// LIKENESS_BENCH_INJECT_DELAY_MS (bench_switches.h) adds that many ms to every sampling step.
//
// The anchor for SDXL 1024², 30 steps, CFG on an H100: diffusers ≈ 2.5 s/image, TensorRT ≈ 1.5 s.
// Results are checked before they are reported: every image must be finite and the same seed
// must give the same bytes twice (a fast pipeline that returns garbage is a failure, exit 1).
#include <sys/utsname.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "benchmarks/bench_record.h"
#include "benchmarks/bench_switches.h"
#include "nlohmann/json.hpp"
#include "worker/generate/pipeline.h"
#include "worker/model/layers.h"

namespace {

using namespace likeness;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kWeightsSeed = 2026;
constexpr char kDefaultVocab[] = "../shared/data/clip/bpe_simple_vocab_16e6.txt.gz";
constexpr char kPrompt[] = "a professional photo of a corgi wearing a red scarf, studio light";

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

int Fail(const std::string& what) {
  std::cerr << "generate_benchmark: " << what << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const auto flags = ParseFlags(argc, argv);
  torch::Dtype dtype = torch::kFloat32;
  const std::string dtype_name = Flag(flags, "dtype", "float32");
  if (dtype_name == "bfloat16") dtype = torch::kBFloat16;
  if (dtype_name == "float16") dtype = torch::kFloat16;
  const torch::Device device(Flag(flags, "device", "cpu"));
  const std::string vocab = Flag(flags, "vocab", kDefaultVocab);
  int steps = 30, repeats = 5, warmup = 1, width = 0, height = 0;
  double cfg = 5.0;
  absl::SimpleAtoi(Flag(flags, "steps", "30"), &steps);
  absl::SimpleAtoi(Flag(flags, "repeats", "5"), &repeats);
  absl::SimpleAtoi(Flag(flags, "warmup", "1"), &warmup);
  absl::SimpleAtod(Flag(flags, "cfg", "5"), &cfg);
  if (flags.count("size")) {
    std::vector<std::string> wh = absl::StrSplit(flags.at("size"), 'x');
    if (wh.size() != 2 || !absl::SimpleAtoi(wh[0], &width) || !absl::SimpleAtoi(wh[1], &height)) {
      return Fail("--size wants WxH");
    }
  }

  std::unique_ptr<generate::Pipeline> pipeline;
  std::string model_label;
  if (flags.count("arch")) {
    model::SdxlBuildOptions build;
    build.dtype = dtype;
    build.device = device;
    absl::StatusOr<model::SdxlModels> models = model::BuildSdxlArchitecture(flags.at("arch"), build);
    if (!models.ok()) return Fail(std::string(models.status().message()));
    for (const char* name : model::kSdxlComponents) {
      model::InitializeRandomly(*models->Component(name), kWeightsSeed);
    }
    absl::StatusOr<text::ClipTokenizer> tokenizer = text::ClipTokenizer::Load(vocab);
    if (!tokenizer.ok()) return Fail(std::string(tokenizer.status().message()));
    generate::ModelInfo info;
    info.name = flags.at("arch") + " (random weights)";
    pipeline = std::make_unique<generate::Pipeline>(
        std::move(*models), std::make_shared<const text::ClipTokenizer>(std::move(*tokenizer)), info);
    model_label = info.name;
  } else {
    generate::PipelineOptions options;
    options.model_path = Flag(flags, "model", "");
    if (options.model_path.empty()) return Fail("give --model PATH or --arch sdxl-base");
    options.dtype = dtype;
    options.device = device;
    options.vocab_path = vocab;
    options.hash_model = false;
    if (flags.count("model-config")) {
      std::ifstream in(flags.at("model-config"));
      nlohmann::json json = nlohmann::json::parse(in, nullptr, false);
      options.config_override = json.contains("config") ? json["config"] : json;
    }
    absl::StatusOr<std::unique_ptr<generate::Pipeline>> loaded = generate::Pipeline::Load(options);
    if (!loaded.ok()) return Fail(std::string(loaded.status().message()));
    pipeline = std::move(*loaded);
    model_label = options.model_path;
  }

  v1::GenerateConfig config;
  config.add_prompts(kPrompt);
  config.set_steps(steps);
  config.set_guidance_scale(cfg);
  config.set_sampler(Flag(flags, "sampler", "euler"));
  config.set_width(width);
  config.set_height(height);
  config.set_seed(1);
  absl::StatusOr<generate::GenerationSettings> settings = generate::ResolveGenerateConfig(config);
  if (!settings.ok()) return Fail(std::string(settings.status().message()));

  std::vector<double> image_seconds, step_seconds;
  std::vector<uint8_t> first_pixels;
  for (int run = 0; run < warmup + repeats; ++run) {
    Clock::time_point first_step, last_step;
    int64_t evaluations = 0;
    const Clock::time_point start = Clock::now();
    absl::StatusOr<std::vector<generate::GeneratedImage>> images = pipeline->Generate(
        *settings, [&](const generate::GenerateProgress& p) {
          bench::SleepInjectedDelay();  // a test switch; no-op in real runs
          if (p.evaluations_done == 1) first_step = Clock::now();
          last_step = Clock::now();
          evaluations = p.evaluations_done;
        });
    if (device.is_cuda()) torch::cuda::synchronize();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (!images.ok()) return Fail(std::string(images.status().message()));
    const std::vector<uint8_t>& pixels = (*images)[0].image.pixels;
    if (run == 0) {
      first_pixels = pixels;
    } else if (pixels != first_pixels) {
      return Fail("the same seed gave different images: results are not reproducible");
    }
    if (std::all_of(pixels.begin(), pixels.end(), [&](uint8_t v) { return v == pixels[0]; })) {
      return Fail("the image is one flat colour: the pipeline produced garbage");
    }
    if (run < warmup) continue;
    image_seconds.push_back(seconds);
    if (evaluations > 1) {
      step_seconds.push_back(std::chrono::duration<double>(last_step - first_step).count() /
                             (evaluations - 1));
    }
  }
  utsname machine{};
  uname(&machine);
  nlohmann::json result = {
      {"benchmark", "generate"},
      {"model", model_label},
      {"size", absl::StrCat(settings->width ? settings->width : pipeline->NativeSize(), "x",
                            settings->height ? settings->height : pipeline->NativeSize())},
      {"steps", steps},
      {"cfg", cfg},
      {"sampler", config.sampler()},
      {"dtype", dtype_name},
      {"device", device.str()},
      {"repeats", repeats},
      {"seconds_per_image_median", bench::UpperMedian(image_seconds)},
      {"seconds_per_image_min", *std::min_element(image_seconds.begin(), image_seconds.end())},
      {"seconds_per_image_max", *std::max_element(image_seconds.begin(), image_seconds.end())},
      {"seconds_per_step_median", bench::UpperMedian(step_seconds)},
      {"cpu", bench::CpuModel()},
      {"threads", torch::get_num_threads()},
      {"libtorch", TORCH_VERSION},
      {"kernel", machine.release},
  };
  std::cout << "generate: " << result["size"].get<std::string>() << ", " << steps << " steps, "
            << dtype_name << " on " << device.str() << ": " << bench::UpperMedian(image_seconds)
            << " s/image (median of " << repeats << "), " << bench::UpperMedian(step_seconds) << " s/step\n";
  std::cout << result.dump() << "\n";
  if (flags.count("json")) {
    bench::BenchRecord record = bench::NewRecord("generate");
    record.machine.libtorch = TORCH_VERSION;
    // The model by file name, not path: the same checkpoint is the same series wherever the
    // data folder is mounted.
    record.config = {{"model", flags.count("arch")
                                   ? model_label
                                   : std::filesystem::path(model_label).filename().string()},
                     {"size", result["size"]},
                     {"steps", steps},
                     {"cfg", cfg},
                     {"sampler", config.sampler()},
                     {"dtype", dtype_name},
                     {"device", device.str()},
                     {"threads", torch::get_num_threads()}};
    record.figures = {
        bench::SummarizeRepeats("seconds_per_image", "s", bench::Better::kLower, image_seconds),
        bench::SummarizeRepeats("seconds_per_step", "s", bench::Better::kLower, step_seconds)};
    record.extra["warmup"] = warmup;
    const absl::Status appended = bench::AppendRecord(flags.at("json"), record);
    if (!appended.ok()) return Fail(std::string(appended.message()));
  }
  return 0;
}
