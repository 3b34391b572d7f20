// A LoRA network: one LoraAdapter (lora_adapter.h) per targeted layer of an SDXL bundle, created
// fresh for training or loaded from a kohya/PEFT file, with one user scale.
//
// Life cycle:
//   1. CreateTrainable or Load attaches the adapters: each is appended to its layer's
//      `adapters` (several networks may sit on one layer; their terms add up).
//   2. SetScale changes every adapter's multiplier; no base weight is read or copied.
//   3. Merge adds scale * alpha/rank * up @ down into each base weight (float32 arithmetic, the
//      result rounded to the weight's dtype) and turns the adapters into no-ops; Unmerge
//      subtracts the same delta. Unmerge is NOT bit-exact: (W + d) - d rounds in the weight's
//      dtype (float32: about 1 ulp of |W| + |d|; bf16 much more). Reload the base model when
//      exact base weights matter. SetScale on a merged network unmerges and re-merges.
//   4. Detach (and the destructor) unmerges if merged and removes the adapters from the layers.
//
// Order (the data-parallel reducer relies on it: every rank must list the same tensors in the
// same order): modules in LoraLayerIndex order (components unet, text_encoder, text_encoder_2;
// within one, named_modules() order, i.e. the model's registration order), and per module
// down then up. It depends only on the model configs and the targets, never on the file, the
// device, hashing or timing.
#ifndef LIKENESS_WORKER_LORA_LORA_NETWORK_H_
#define LIKENESS_WORKER_LORA_LORA_NETWORK_H_

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/lora/lora_adapter.h"
#include "worker/lora/lora_file.h"
#include "worker/lora/lora_layer_index.h"
#include "worker/lora/lora_targets.h"
#include "worker/model/sdxl/sdxl_models.h"

namespace likeness::lora {

inline constexpr int64_t kDefaultRank = 4;

struct LoraTrainOptions {
  int64_t rank = kDefaultRank;
  // 0 means alpha = rank (scale 1, as diffusers' SDXL LoRA script); sd-scripts defaults to 1.
  double alpha = 0.0;
  // On the layer input, before `down` (PEFT's lora_dropout); training mode only.
  double dropout = 0.0;
  uint64_t seed = 0;
  LoraTargets targets = LoraTargets::Default();
  // The adapters' dtype; unset: float32 (master weights, whatever the base dtype). The device is
  // always the base layer's.
  std::optional<torch::Dtype> dtype;
  // Set requires_grad = false on every parameter of the four models, so only LoRA tensors train.
  bool freeze_base = true;
};

struct LoraLoadOptions {
  double scale = 1.0;
  // A file naming layers this model lacks is an error (a silently half-applied LoRA draws wrong
  // pictures); true applies the rest and lists the others in LoraLoadReport::unmatched. A file
  // none of whose modules match (another architecture) is an error either way.
  bool allow_unmatched = false;
  // Adapter dtype; unset: each base layer's dtype. The device is always the base layer's.
  std::optional<torch::Dtype> dtype;
  // requires_grad on the loaded tensors (continue training a LoRA).
  bool trainable = false;
};

struct LoraLoadReport {
  LoraFileFormat format = LoraFileFormat::kKohya;
  int64_t modules = 0;
  std::vector<std::string> unmatched;  // the file's names for modules no layer has
  std::map<std::string, std::string> metadata;
};

struct LoraSaveOptions {
  LoraFileFormat format = LoraFileFormat::kKohya;
  // Stored dtype of down/up; unset: as held (float32 for a trained network).
  std::optional<torch::Dtype> dtype;
  std::string base_model_hash;  // sha256 of the base checkpoint file, if known
  std::string base_model_name;
  std::string title;
  std::map<std::string, std::string> extra_metadata;
};

class LoraNetwork {
 public:
  // Fresh adapters on every layer its targets match (see LoraTrainOptions), deterministic from
  // options.seed. INVALID_ARGUMENT for rank < 1, dropout outside [0, 1), a pattern matching no
  // Linear/Conv2d layer of its component; FAILED_PRECONDITION for targets on a component the
  // bundle lacks.
  static absl::StatusOr<std::unique_ptr<LoraNetwork>> CreateTrainable(
      model::SdxlModels& models, const LoraTrainOptions& options);

  // A kohya or PEFT file (auto-detected), attached with options.scale.
  static absl::StatusOr<std::unique_ptr<LoraNetwork>> Load(model::SdxlModels& models,
                                                           const std::string& path,
                                                           const LoraLoadOptions& options = {},
                                                           LoraLoadReport* report = nullptr);

  ~LoraNetwork();
  LoraNetwork(const LoraNetwork&) = delete;
  LoraNetwork& operator=(const LoraNetwork&) = delete;

  // The user's strength (1 = as trained; 0 = off, output bit-identical to the base).
  void SetScale(double scale);
  double scale() const { return scale_; }

  // See the header comment, step 3. FAILED_PRECONDITION when detached or already (un)merged.
  absl::Status Merge();
  absl::Status Unmerge();
  bool merged() const { return merged_; }

  // Step 4; idempotent. An error (libtorch failing to unmerge) leaves the network attached and
  // merged. The destructor detaches and ignores that error.
  absl::Status Detach();
  bool attached() const { return attached_; }

  // down, up per module, in the documented order: what the optimizer and the reducer get.
  std::vector<torch::Tensor> TrainableTensors() const;
  // The same, named "<component>.<path>.lora_A.weight" / ".lora_B.weight" (PEFT's key names).
  std::vector<std::pair<std::string, torch::Tensor>> NamedTrainableTensors() const;
  int64_t NumTrainableParameters() const;
  void SetRequiresGrad(bool requires_grad);

  int64_t NumModules() const { return static_cast<int64_t>(entries_.size()); }
  // The layer and adapter of module i (0 <= i < NumModules()), in the documented order.
  const LoraLayer& layer(int64_t i) const { return entries_.at(i).layer; }
  const LoraAdapter& adapter(int64_t i) const { return *entries_.at(i).adapter; }

  // Copies a file's weights into this network's tensors in place (the optimizer keeps its
  // tensors): resuming training. The file must name exactly this network's modules with the
  // same ranks and alphas; INVALID_ARGUMENT naming the first difference otherwise.
  absl::Status LoadWeights(const std::string& path);

  // LoRA weights only, atomically (lora_file.h).
  absl::Status Save(const std::string& path, const LoraSaveOptions& options = {}) const;
  // What Save writes for these options, without writing (tests, inspection).
  std::vector<LoraModuleWeights> Modules() const;
  LoraFileInfo FileInfo(const LoraSaveOptions& options = {}) const;

 private:
  struct Entry {
    LoraLayer layer;
    std::shared_ptr<LoraAdapter> adapter;
  };
  LoraNetwork() = default;
  void Attach(LoraLayer layer, std::shared_ptr<LoraAdapter> adapter);
  void AddDelta(double sign);

  std::vector<Entry> entries_;
  LoraTargets targets_;  // patterns (trained) or module paths per component (loaded)
  double dropout_ = 0.0;
  double scale_ = 1.0;
  bool merged_ = false;
  bool attached_ = true;
};

}  // namespace likeness::lora

#endif  // LIKENESS_WORKER_LORA_LORA_NETWORK_H_
