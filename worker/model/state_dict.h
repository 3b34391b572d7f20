// Moving weights between files and modules by diffusers' state-dict names.
//
// The module tree is the weight namespace (STYLE.md §1): every module registers its children
// under the exact diffusers names, so `module.named_parameters()` yields
// `down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight` and loading is a lookup.
//
// LoadStateDict, strictly:
//   1. every parameter and persistent buffer of the module must be in the source, else
//      INVALID_ARGUMENT listing all missing names (the first kMaxNamesInError, then a count);
//   2. every shape must match, else INVALID_ARGUMENT naming the tensor and both shapes;
//   3. values are copied with one dtype/device conversion per tensor (no second full copy);
//   4. source tensors the module does not have are returned in LoadReport::unexpected, for
//      the caller to report, never silently ignored.
#ifndef LIKENESS_WORKER_MODEL_STATE_DICT_H_
#define LIKENESS_WORKER_MODEL_STATE_DICT_H_

#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/safetensors/safetensors_file.h"

namespace likeness::model {

inline constexpr int kMaxNamesInError = 20;

using StateDict = std::map<std::string, torch::Tensor>;

struct LoadReport {
  int loaded = 0;
  std::vector<std::string> unexpected;  // In the source, not in the module.
};

// Called with each source tensor right after its values were copied into the module.
using AfterCopy = std::function<void(const torch::Tensor& source)>;

// `source_name` (a file or folder) goes into every error message. `after_copy` (optional) lets
// a loader release a mapped source tensor's pages at once (safetensors::ReleaseMappedPages),
// so the checkpoint is never resident beside the whole model.
absl::StatusOr<LoadReport> LoadStateDict(torch::nn::Module& module, const StateDict& source,
                                         absl::string_view source_name, const AfterCopy& after_copy = nullptr);

// The module's parameters and persistent buffers by name.
StateDict ModuleStateDict(const torch::nn::Module& module);

// Every tensor of `file` whose name starts with `prefix`, with the prefix removed; names that
// start with "__" (golden inputs/outputs, __metadata__) are skipped. Tensors are zero-copy
// views of the mapping where the file allows.
absl::StatusOr<StateDict> ReadStateDict(const safetensors::SafetensorsFile& file,
                                        absl::string_view prefix = "");

// "a, b, c and 17 more": for error messages about many names.
std::string JoinNamesForError(const std::vector<std::string>& names);

}  // namespace likeness::model

#endif  // LIKENESS_WORKER_MODEL_STATE_DICT_H_
