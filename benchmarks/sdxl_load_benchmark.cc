// How long loading a full-size SDXL checkpoint takes and how much memory it needs.
//
//   sdxl_load_benchmark --write PATH   # SDXL base in single-file naming, random fp16 weights
//   sdxl_load_benchmark --load PATH    # LoadSdxlModels in fp16; prints one JSON line
//     [--model-config JSON]            # a config for checkpoints of other sizes (the golden tiny)
//     [--json PATH]                    # also append the common record (bench_record.h)
//
// Run the two in separate processes (launch/bench-sdxl-load does) so the writer's memory does
// not count against the loader. The loader reports wall time, peak resident memory (VmHWM),
// and at the end the anonymous (the weights themselves) and file-backed (the mapped checkpoint,
// reclaimable page cache) parts of what stays resident. One load per process, so the record
// has one repeat; the nightly runs the loader several times and the history merges them.
// LIKENESS_BENCH_INJECT_DELAY_MS (bench_switches.h) adds that many ms to the timed load.
#include <sys/resource.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>

#include "benchmarks/bench_record.h"
#include "benchmarks/bench_switches.h"
#include "common/safetensors/writer.h"
#include "nlohmann/json.hpp"
#include "worker/model/checkpoint/sgm_convert.h"
#include "worker/model/layers.h"
#include "worker/model/sdxl/sdxl_models.h"
#include "worker/model/state_dict.h"

namespace {

using namespace likeness;
constexpr uint64_t kSeed = 2026;
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// "VmHWM:  123 kB" and friends from /proc/self/status, in bytes.
int64_t StatusBytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == field + ":") {
      int64_t kb = 0;
      status >> kb;
      return kb * 1024;
    }
    status.ignore(1 << 20, '\n');
  }
  return -1;
}

int Write(const std::string& path) {
  model::SdxlBuildOptions options;
  options.dtype = torch::kFloat16;
  options.vae_in_float32 = false;
  auto models = model::BuildSdxlArchitecture(model::kArchSdxlBase, options);
  if (!models.ok()) return std::cerr << models.status() << "\n", 1;
  model::checkpoint::SdxlComponents components;
  torch::manual_seed(kSeed);
  int64_t parameters = 0;
  for (const char* name : model::kSdxlComponents) {
    model::StateDict dict = model::ModuleStateDict(*models->Component(name));
    for (auto& [n, t] : dict) {
      torch::NoGradGuard no_grad;
      t.uniform_(-0.05, 0.05);
      parameters += t.numel();
    }
    if (std::string(name) == "unet") components.unet = dict;
    if (std::string(name) == "vae") components.vae = dict;
    if (std::string(name) == "text_encoder") components.text_encoder = dict;
    if (std::string(name) == "text_encoder_2") components.text_encoder_2 = dict;
  }
  auto sgm = model::checkpoint::ToSingleFile(components, "sdxl-base");
  if (!sgm.ok()) return std::cerr << sgm.status() << "\n", 1;
  const auto start = std::chrono::steady_clock::now();
  absl::Status s = safetensors::WriteSafetensors(path, safetensors::NamedTensors(sgm->begin(), sgm->end()));
  if (!s.ok()) return std::cerr << s << "\n", 1;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << nlohmann::json{{"wrote", path}, {"tensors", sgm->size()}, {"parameters", parameters},
                              {"write_seconds", seconds}}
                   .dump()
            << "\n";
  return 0;
}

int Load(const std::string& path, const std::string& model_config, const std::string& json_path) {
  model::SdxlBuildOptions options;
  options.dtype = torch::kFloat16;
  nlohmann::json config_override = nullptr;
  if (!model_config.empty()) {
    std::ifstream in(model_config);
    config_override = nlohmann::json::parse(in, nullptr, false);
    if (config_override.is_discarded()) return std::cerr << "--model-config: not JSON\n", 1;
    if (config_override.contains("config")) config_override = config_override["config"];
  }
  const int64_t before = StatusBytes("VmRSS");
  const auto start = std::chrono::steady_clock::now();
  model::SdxlLoadReport report;
  auto models = model::LoadSdxlModels(path, options, &report, config_override);
  bench::SleepInjectedDelay();  // a test switch; no-op in real runs
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!models.ok()) return std::cerr << models.status() << "\n", 1;
  int64_t weight_bytes = 0;
  for (const char* name : model::kSdxlComponents) {
    for (const auto& p : models->Component(name)->parameters()) weight_bytes += p.numel() * p.element_size();
  }
  std::cout << nlohmann::json{{"loaded", path},
                              {"format", report.format},
                              {"load_seconds", seconds},
                              {"weights_gib", weight_bytes / kGiB},
                              {"rss_before_gib", before / kGiB},
                              {"peak_rss_gib", StatusBytes("VmHWM") / kGiB},
                              {"rss_anon_after_gib", StatusBytes("RssAnon") / kGiB},
                              {"rss_file_after_gib", StatusBytes("RssFile") / kGiB},
                              {"unexpected", report.unexpected.size()}}
                   .dump()
            << "\n";
  if (json_path.empty()) return 0;
  bench::BenchRecord record = bench::NewRecord("sdxl_load");
  record.machine.libtorch = TORCH_VERSION;
  record.config = {{"checkpoint", std::filesystem::path(path).filename().string()},
                   {"format", report.format},
                   {"dtype", "float16"}};
  record.figures = {
      bench::SummarizeRepeats("load_seconds", "s", bench::Better::kLower, {seconds}),
      bench::SummarizeRepeats("peak_rss_gib", "GiB", bench::Better::kLower,
                              {StatusBytes("VmHWM") / kGiB})};
  record.extra["weights_gib"] = weight_bytes / kGiB;
  const absl::Status appended = bench::AppendRecord(json_path, record);
  if (!appended.ok()) return std::cerr << appended << "\n", 1;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  bool well_formed = argc >= 3 && argc % 2 == 1;
  for (int i = 1; well_formed && i + 1 < argc; i += 2) {
    const std::string name = argv[i];
    well_formed = name == "--write" || name == "--load" || name == "--model-config" || name == "--json";
    flags[name] = argv[i + 1];
  }
  if (well_formed && flags.count("--write") && flags.size() == 1) return Write(flags["--write"]);
  if (well_formed && flags.count("--load") && !flags.count("--write")) {
    return Load(flags["--load"], flags["--model-config"], flags["--json"]);
  }
  std::cerr << "usage: sdxl_load_benchmark --write PATH\n"
               "       sdxl_load_benchmark --load PATH [--model-config JSON] [--json PATH]\n";
  return 2;
}
