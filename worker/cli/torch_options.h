// --dtype and --device, shared by the commands that run models.
#ifndef LIKENESS_WORKER_CLI_TORCH_OPTIONS_H_
#define LIKENESS_WORKER_CLI_TORCH_OPTIONS_H_

#include <torch/torch.h>

#include <string>

#include "absl/status/statusor.h"

namespace likeness::cli {

// "float32"/"fp32", "bfloat16"/"bf16", "float16"/"fp16"; "" is float32.
absl::StatusOr<torch::Dtype> ParseDtype(const std::string& text);
// "cpu", "cuda", "cuda:N"; "" is cuda when a GPU is present, else cpu. FAILED_PRECONDITION
// for a CUDA device this machine does not have.
absl::StatusOr<torch::Device> ParseDevice(const std::string& text);

}  // namespace likeness::cli

#endif  // LIKENESS_WORKER_CLI_TORCH_OPTIONS_H_
