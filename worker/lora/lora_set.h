// Several LoRAs on one SDXL bundle at once, by name: what the generation pipeline holds for
// `likeness generate --lora FILE[:SCALE] ...`. Each is a LoraNetwork (lora_network.h); their
// terms add up on shared layers, in the order added. Removing one detaches only it.
#ifndef LIKENESS_WORKER_LORA_LORA_SET_H_
#define LIKENESS_WORKER_LORA_LORA_SET_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "worker/lora/lora_network.h"
#include "worker/model/sdxl/sdxl_models.h"

namespace likeness::lora {

// "FILE" or "FILE:SCALE" (the last ':' followed by a number; a path may contain ':').
struct LoraSpec {
  std::string path;
  double scale = 1.0;
};
// INVALID_ARGUMENT for an empty path or a non-finite scale.
absl::StatusOr<LoraSpec> ParseLoraSpec(absl::string_view spec);

class LoraSet {
 public:
  // `models` must outlive the set.
  explicit LoraSet(model::SdxlModels* models) : models_(models) {}
  ~LoraSet();
  LoraSet(const LoraSet&) = delete;
  LoraSet& operator=(const LoraSet&) = delete;

  // Loads `path` and attaches it under `name`. ALREADY_EXISTS for a name in use; the file's
  // errors as LoraNetwork::Load.
  absl::Status Add(const std::string& name, const std::string& path,
                   const LoraLoadOptions& options = {}, LoraLoadReport* report = nullptr);
  // `spec.path` at `spec.scale`, named by its path (what `--lora FILE[:SCALE]` gives).
  absl::Status Add(const LoraSpec& spec, LoraLoadReport* report = nullptr);
  // Takes an attached network (e.g. one being trained, for validation images).
  absl::Status Add(const std::string& name, std::unique_ptr<LoraNetwork> network);
  // NOT_FOUND for an unknown name.
  absl::Status SetScale(const std::string& name, double scale);
  absl::Status Remove(const std::string& name);
  absl::Status MergeAll();    // merges those not merged yet
  absl::Status UnmergeAll();  // unmerges those merged, newest first
  void Clear();               // detaches all, newest first

  LoraNetwork* Find(const std::string& name) const;
  std::vector<std::string> Names() const;  // in the order added
  bool empty() const { return networks_.empty(); }

 private:
  model::SdxlModels* models_;
  std::vector<std::pair<std::string, std::unique_ptr<LoraNetwork>>> networks_;
};

}  // namespace likeness::lora

#endif  // LIKENESS_WORKER_LORA_LORA_SET_H_
