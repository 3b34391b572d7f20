// Fused attention (kernels/attention) against every backend of at::scaled_dot_product_attention
// in one process on the same inputs: SDXL's shapes at 1024² (self-attention N = 4096 x 10
// heads and N = 1024 x 20 heads, cross-attention to 77 keys), batch 2..8, forward and
// forward+backward. Reports ms (median of CUDA-event-timed repeats after warm-up, inputs rotated
// over several sets so the 50 MB L2 does not hold them), TFLOP/s with 4·Nq·Nk·d·H·B forward and
// 2.5x that backward, and GB/s of the minimum traffic (q, k, v, out once) for cross-attention.
// Every backend's output is checked against the fused kernel's before it is timed.
//
//   attention_benchmark [--batches 2,4,8] [--repeats 30] [--warmup 5] [--dtype bfloat16]
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/torch_compat.h"
#include "worker/model/attention.h"
#include "worker/model/flash_attention.h"

namespace {

using likeness::compat::SdpaBackend;
using likeness::model::AttentionBackend;
using likeness::model::AttentionOptions;

constexpr int kInputSets = 4;          // rotated, so repeats do not run out of L2
constexpr double kBackwardFactor = 2.5;  // backward FLOPs over forward (FlashAttention's count)
constexpr double kCheckTolerance = 2e-2;  // bf16 backends agree to ~1e-3 relative; NaN fails

struct Shape {
  const char* name;
  int64_t heads, seqlen_q, seqlen_k, head_dim;
  bool cross;
};

struct Contender {
  std::string name;
  std::function<bool()> select;  // false: this libtorch lacks it
  AttentionBackend backend;
};

#define CUDA_OK(call)                                                                     \
  do {                                                                                    \
    cudaError_t e = (call);                                                               \
    if (e != cudaSuccess) {                                                               \
      std::cerr << #call << ": " << cudaGetErrorString(e) << "\n";                       \
      std::exit(1);                                                                       \
    }                                                                                     \
  } while (0)

double MedianMs(const std::function<void(int)>& run, int warmup, int repeats) {
  for (int i = 0; i < warmup; ++i) run(i);
  CUDA_OK(cudaDeviceSynchronize());
  cudaEvent_t start, stop;
  CUDA_OK(cudaEventCreate(&start));
  CUDA_OK(cudaEventCreate(&stop));
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    CUDA_OK(cudaEventRecord(start));
    run(i);
    CUDA_OK(cudaEventRecord(stop));
    CUDA_OK(cudaEventSynchronize(stop));
    float ms = 0;
    CUDA_OK(cudaEventElapsedTime(&ms, start, stop));
    times.push_back(ms);
  }
  CUDA_OK(cudaEventDestroy(start));
  CUDA_OK(cudaEventDestroy(stop));
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

std::map<std::string, std::string> ParseFlags(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  for (int i = 1; i + 1 < argc; i += 2) flags[std::string(argv[i]).substr(2)] = argv[i + 1];
  return flags;
}

}  // namespace

int main(int argc, char** argv) {
  if (!torch::cuda::is_available()) {
    std::cerr << "attention_benchmark: no CUDA device\n";
    return 1;
  }
  auto flags = ParseFlags(argc, argv);
  std::vector<int64_t> batches = {2, 4, 8};
  if (flags.count("batches")) {
    batches.clear();
    for (auto part : absl::StrSplit(flags["batches"], ',')) {
      int64_t b = 0;
      if (absl::SimpleAtoi(part, &b)) batches.push_back(b);
    }
  }
  int repeats = 30, warmup = 5;
  if (flags.count("repeats")) absl::SimpleAtoi(flags["repeats"], &repeats);
  if (flags.count("warmup")) absl::SimpleAtoi(flags["warmup"], &warmup);
  const torch::Dtype dtype = flags.count("dtype") && flags["dtype"] == "float16" ? torch::kFloat16 : torch::kBFloat16;

  cudaDeviceProp prop;
  CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  std::printf("# %s, %d SMs, CUDA driver API %d, runtime %d, libtorch %s, %s\n", prop.name,
              prop.multiProcessorCount, driver, runtime, TORCH_VERSION,
              dtype == torch::kBFloat16 ? "bf16" : "fp16");

  const std::vector<Shape> shapes = {{"self N=4096 H=10", 10, 4096, 4096, 64, false},
                                     {"self N=1024 H=20", 20, 1024, 1024, 64, false},
                                     {"cross N=4096x77 H=10", 10, 4096, 77, 64, true},
                                     {"cross N=1024x77 H=20", 20, 1024, 77, 64, true}};
  const std::vector<Contender> contenders = {
      {"likeness", [] { return true; }, AttentionBackend::kFused},
      {"torch-flash", [] { return likeness::compat::SelectSdpaBackend(SdpaBackend::kFlash); },
       AttentionBackend::kTorchSdpa},
      {"torch-cudnn", [] { return likeness::compat::SelectSdpaBackend(SdpaBackend::kCudnn); },
       AttentionBackend::kTorchSdpa},
      {"torch-efficient", [] { return likeness::compat::SelectSdpaBackend(SdpaBackend::kEfficient); },
       AttentionBackend::kTorchSdpa},
  };

  std::printf("%-22s %5s %-16s %10s %9s %10s %9s %8s\n", "shape", "batch", "backend", "fwd ms", "fwd TF/s",
              "fwd+bwd ms", "f+b TF/s", "fwd GB/s");
  for (const Shape& s : shapes) {
    for (int64_t batch : batches) {
      const auto options = torch::TensorOptions().device(torch::kCUDA).dtype(dtype);
      std::vector<torch::Tensor> qs, ks, vs, douts;
      for (int i = 0; i < kInputSets; ++i) {
        auto layout = [&](int64_t rows) {
          return torch::randn({batch, rows, s.heads * s.head_dim}, options)
              .view({batch, rows, s.heads, s.head_dim})
              .transpose(1, 2)
              .requires_grad_(true);
        };
        qs.push_back(layout(s.seqlen_q));
        ks.push_back(layout(s.seqlen_k));
        vs.push_back(layout(s.seqlen_k));
        douts.push_back(torch::randn({batch, s.heads, s.seqlen_q, s.head_dim}, options));
      }
      const double flops = 4.0 * batch * s.heads * s.seqlen_q * s.seqlen_k * s.head_dim;
      const double bytes = 2.0 * batch * s.heads * s.head_dim * (2 * s.seqlen_q + 2 * s.seqlen_k);
      torch::Tensor ours;
      {
        torch::NoGradGuard no_grad;
        AttentionOptions fused;
        fused.backend = AttentionBackend::kFused;
        ours = likeness::model::Attention(qs[0], ks[0], vs[0], fused).to(torch::kFloat32);
      }
      for (const Contender& c : contenders) {
        if (!c.select()) {
          std::printf("%-22s %5ld %-16s unavailable in this libtorch\n", s.name, batch, c.name.c_str());
          continue;
        }
        AttentionOptions attention;
        attention.backend = c.backend;
        try {
          torch::Tensor theirs;
          {
            torch::NoGradGuard no_grad;
            theirs = likeness::model::Attention(qs[0], ks[0], vs[0], attention).to(torch::kFloat32);
          }
          const double diff = (theirs - ours).norm().item<double>() / ours.norm().item<double>();
          if (!(diff < kCheckTolerance)) {
            std::printf("%-22s %5ld %-16s DISAGREES with the fused kernel: rel diff %.3g\n", s.name, batch,
                        c.name.c_str(), diff);
            continue;
          }
          const double fwd_ms = MedianMs(
              [&](int i) {
                torch::NoGradGuard guard;
                likeness::model::Attention(qs[i % kInputSets], ks[i % kInputSets], vs[i % kInputSets], attention);
              },
              warmup, repeats);
          const double fwd_bwd_ms = MedianMs(
              [&](int i) {
                const int k = i % kInputSets;
                torch::Tensor out = likeness::model::Attention(qs[k], ks[k], vs[k], attention);
                torch::autograd::backward({out}, {douts[k]});
              },
              warmup, repeats);
          std::printf("%-22s %5ld %-16s %10.3f %9.1f %10.3f %9.1f %8.0f\n", s.name, batch, c.name.c_str(), fwd_ms,
                      flops / fwd_ms / 1e9, fwd_bwd_ms, flops * (1 + kBackwardFactor) / fwd_bwd_ms / 1e9,
                      s.cross ? bytes / fwd_ms / 1e6 : 0.0);
        } catch (const c10::Error& error) {
          std::printf("%-22s %5ld %-16s not runnable here: %s\n", s.name, batch, c.name.c_str(),
                      error.what_without_backtrace());
        }
        std::fflush(stdout);
      }
      likeness::compat::SelectSdpaBackend(SdpaBackend::kAll);
    }
  }
  return 0;
}
