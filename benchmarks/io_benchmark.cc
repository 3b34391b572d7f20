// Throughput of the I/O every job starts with: decoding subject photos, writing PNGs,
// tokenizing prompts, writing and mapping safetensors. Each benchmark checks its result once
// before timing (a fast wrong answer is not a result) and reports the field's unit:
// megapixels/s for images, tokens/s for text, bytes/s for files.
//
//   build/bin/io_benchmark [--benchmark_filter=Decode] [--benchmark_format=json]
//                          [--benchmark_repetitions=5 --json PATH]
//
// --json PATH appends the common record (bench_record.h) per case: time per iteration and
// the rate counters, median/min/max over the repetitions (gbench_record.h).
#include <benchmark/benchmark.h>

#include <filesystem>
#include <random>

#include "benchmarks/gbench_record.h"
#include "common/atomic_file.h"
#include "common/safetensors/safetensors_file.h"
#include "common/safetensors/writer.h"
#include "tests/test_data.h"
#include "worker/image/image_io.h"
#include "worker/text/clip_tokenizer.h"

namespace likeness {
namespace {

namespace fs = std::filesystem;

constexpr int kPngSide = 1024;
constexpr int64_t kSafetensorsBytes = int64_t{256} << 20;
constexpr int kSafetensorsTensors = 64;

std::string FirstPhoto() {
  std::vector<std::string> photos;
  for (const auto& e : fs::recursive_directory_iterator(testing::DreamBenchDir())) {
    if (e.path().extension() == ".jpg") photos.push_back(e.path().string());
  }
  std::sort(photos.begin(), photos.end());
  return photos.empty() ? "" : photos.front();
}

void BM_DecodeJpeg(benchmark::State& state) {
  const std::string path = FirstPhoto();
  auto bytes = ReadFileToString(path);
  if (path.empty() || !bytes.ok()) return state.SkipWithError("no DreamBench photo found");
  auto check = image::DecodeImage(*bytes, path);
  if (!check.ok() || check->channels != 3) return state.SkipWithError("decode check failed");
  for (auto _ : state) benchmark::DoNotOptimize(image::DecodeImage(*bytes, path));
  state.counters["MP/s"] = benchmark::Counter(check->PixelCount() / 1e6, benchmark::Counter::kIsIterationInvariantRate);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes->size()));
}
BENCHMARK(BM_DecodeJpeg)->Unit(benchmark::kMillisecond);

void BM_EncodePng(benchmark::State& state) {
  image::Image img = image::MakeImage(kPngSide, kPngSide, 3);
  std::mt19937 rng(1);
  // A smooth gradient with noise compresses like a photo, not like a flat fill.
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<uint8_t>((i / 3 % kPngSide) / 4 + rng() % 16);
  auto png = image::EncodePng(img, {{"parameters", "a photo of sks dog\nSteps: 30"}});
  auto back = png.ok() ? image::DecodeImage(*png, "bench.png") : absl::StatusOr<image::Image>(png.status());
  if (!back.ok() || back->pixels != img.pixels) return state.SkipWithError("PNG round trip failed");
  for (auto _ : state) benchmark::DoNotOptimize(image::EncodePng(img));
  state.counters["MP/s"] = benchmark::Counter(img.PixelCount() / 1e6, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_EncodePng)->Unit(benchmark::kMillisecond);

void BM_Tokenize(benchmark::State& state) {
  auto tokenizer = text::ClipTokenizer::Load(testing::BpeVocabPath());
  if (!tokenizer.ok()) return state.SkipWithError("vocabulary not found");
  const std::vector<std::string> prompts = {
      "a photo of sks dog in a bucket",
      "portrait of a woman wearing a red dress, highly detailed, 8k, trending on artstation",
      "a professional headshot of ohwx man, studio lighting, 85mm, bokeh"};
  if (tokenizer->EncodeWithSpecials(prompts[0]).size() != 10) return state.SkipWithError("tokenizer check failed");
  int64_t tokens = 0;
  for (auto _ : state) {
    for (const std::string& p : prompts) tokens += static_cast<int64_t>(tokenizer->Encode(p).size());
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Tokenize);

safetensors::NamedTensors MakeTensors() {
  safetensors::NamedTensors tensors;
  const int64_t per_tensor = kSafetensorsBytes / kSafetensorsTensors / sizeof(float);
  for (int i = 0; i < kSafetensorsTensors; ++i) {
    tensors.emplace_back("layer." + std::to_string(i) + ".weight", torch::randn({per_tensor}));
  }
  return tensors;
}

void BM_SafetensorsWrite(benchmark::State& state) {
  const auto tensors = MakeTensors();
  const std::string path = testing::MakeTestTempDir("bench_write") + "/w.safetensors";
  for (auto _ : state) {
    if (!safetensors::WriteSafetensors(path, tensors).ok()) return state.SkipWithError("write failed");
  }
  state.SetBytesProcessed(state.iterations() * kSafetensorsBytes);
}
BENCHMARK(BM_SafetensorsWrite)->Unit(benchmark::kMillisecond)->UseRealTime();

// Open + every tensor summed: the cost of reading weights once they are in the page cache.
void BM_SafetensorsOpenAndRead(benchmark::State& state) {
  const auto tensors = MakeTensors();
  const std::string path = testing::MakeTestTempDir("bench_read") + "/r.safetensors";
  if (!safetensors::WriteSafetensors(path, tensors).ok()) return state.SkipWithError("write failed");
  auto check = safetensors::SafetensorsFile::Open(path);
  if (!check.ok() || !(*check)->Get(tensors[3].first)->equal(tensors[3].second)) {
    return state.SkipWithError("read check failed");
  }
  for (auto _ : state) {
    auto file = safetensors::SafetensorsFile::Open(path);
    double sum = 0;
    for (const auto& [name, t] : tensors) sum += (*file)->Get(name)->sum().item<double>();
    benchmark::DoNotOptimize(sum);
  }
  state.SetBytesProcessed(state.iterations() * kSafetensorsBytes);
}
BENCHMARK(BM_SafetensorsOpenAndRead)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace likeness

int main(int argc, char** argv) {
  const std::string json_path = likeness::bench::TakeJsonFlag(&argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  return likeness::bench::RunAndRecord("io", json_path);
}
