// Pieces shared by the two LoRA file formats (lora_kohya_format.cc, lora_peft_format.cc) and
// lora_file.cc. Not part of the library's interface.
#ifndef LIKENESS_WORKER_LORA_LORA_FILE_INTERNAL_H_
#define LIKENESS_WORKER_LORA_LORA_FILE_INTERNAL_H_

#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/safetensors/safetensors_file.h"
#include "common/safetensors/writer.h"
#include "worker/lora/lora_file.h"

namespace likeness::lora::internal {

// A module's tensors as collected from a file's keys, before they are checked against a layer.
struct PendingModule {
  std::string down_key, up_key, alpha_key;
  torch::Tensor down, up;
  std::optional<double> alpha;
};

// INVALID_ARGUMENT naming `key` and the adapter kind when the key belongs to a kind this
// library does not implement (DoRA, LyCORIS, PEFT bias/embedding LoRA).
absl::Status CheckSupportedKey(absl::string_view path, absl::string_view key);

// Checks `pending` against `layer` (both halves present, one rank, shapes fit; 2-D halves of a
// 1x1 conv and 4-D 1x1 halves of a linear are reshaped) and fills `out`. alpha: the pending
// one, 0 or absent meaning rank. Errors name the file and the key.
absl::Status FitModule(absl::string_view path, const std::string& name, const LoraLayer& layer,
                       PendingModule pending, LoraModuleWeights* out);

// Every module name lacking its down or up half: INVALID_ARGUMENT naming the key present and
// the key missing. Used before resolving names, so a broken file fails the same way whether or
// not its names match the model.
absl::Status CheckComplete(absl::string_view path, const std::string& name,
                           const PendingModule& pending, absl::string_view down_suffix,
                           absl::string_view up_suffix);

// A 0-dim (or one-element) tensor's value as a double.
absl::StatusOr<double> ScalarValue(absl::string_view path, absl::string_view key,
                                   const torch::Tensor& tensor);

// Python's str(float) for the values sd-scripts writes with str(): 1.0, 0.5, 1e-05.
std::string PythonFloat(double value);

// {"unet": [...], "text_encoder": [...], "text_encoder_2": [...]}
std::string TargetsJson(const LoraTargets& targets);

// The stored form of a down/up tensor: contiguous, on the CPU, in `dtype` if given.
torch::Tensor StoredTensor(const torch::Tensor& tensor, std::optional<torch::Dtype> dtype);

// Metadata both formats carry (likeness_*).
void AddCommonMetadata(const LoraFileInfo& info, std::map<std::string, std::string>& metadata);

// Format parsers: fill `out->modules`, `out->unmatched`.
absl::Status ParseKohya(const safetensors::SafetensorsFile& file, const LoraLayerIndex& index,
                        LoraFileContents* out);
absl::Status ParsePeft(const safetensors::SafetensorsFile& file, const LoraLayerIndex& index,
                       LoraFileContents* out);

// Format writers' halves.
safetensors::NamedTensors KohyaTensors(const std::vector<LoraModuleWeights>& modules,
                                       std::optional<torch::Dtype> dtype);
std::map<std::string, std::string> KohyaMetadata(const std::vector<LoraModuleWeights>& modules,
                                                 const LoraFileInfo& info);
safetensors::NamedTensors PeftTensors(const std::vector<LoraModuleWeights>& modules,
                                      std::optional<torch::Dtype> dtype);
std::map<std::string, std::string> PeftMetadata(const std::vector<LoraModuleWeights>& modules,
                                                const LoraFileInfo& info);

// True when a key is one of kohya's (lora_unet_, lora_te1_, lora_te2_, lora_te_ prefixes) or
// one of the PEFT/diffusers spellings.
bool IsKohyaKey(absl::string_view key);
bool IsPeftKey(absl::string_view key);

}  // namespace likeness::lora::internal

#endif  // LIKENESS_WORKER_LORA_LORA_FILE_INTERNAL_H_
