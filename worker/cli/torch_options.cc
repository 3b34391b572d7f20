#include "worker/cli/torch_options.h"

#include "absl/strings/str_cat.h"

namespace likeness::cli {

absl::StatusOr<torch::Dtype> ParseDtype(const std::string& text) {
  if (text.empty() || text == "float32" || text == "fp32") return torch::kFloat32;
  if (text == "bfloat16" || text == "bf16") return torch::kBFloat16;
  if (text == "float16" || text == "fp16") return torch::kFloat16;
  return absl::InvalidArgumentError(
      absl::StrCat("dtype '", text, "' is not one of float32, bfloat16, float16"));
}

absl::StatusOr<torch::Device> ParseDevice(const std::string& text) {
  if (text.empty()) return torch::cuda::is_available() ? torch::kCUDA : torch::kCPU;
  try {
    torch::Device device(text);
    if (device.is_cuda()) {
      const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
      if (count == 0 || device.index() >= count) {
        return absl::FailedPreconditionError(absl::StrCat(
            "device '", text, "': this machine has ", count, " CUDA device(s)"));
      }
    }
    return device;
  } catch (const c10::Error&) {
    return absl::InvalidArgumentError(
        absl::StrCat("device '", text, "' is not cpu, cuda or cuda:N"));
  }
}

}  // namespace likeness::cli
