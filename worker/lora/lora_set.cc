#include "worker/lora/lora_set.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace likeness::lora {

absl::StatusOr<LoraSpec> ParseLoraSpec(absl::string_view spec) {
  LoraSpec parsed;
  parsed.path = std::string(spec);
  const size_t colon = spec.rfind(':');
  double scale = 0.0;
  if (colon != absl::string_view::npos && absl::SimpleAtod(spec.substr(colon + 1), &scale)) {
    if (!std::isfinite(scale)) {
      return absl::InvalidArgumentError(absl::StrCat("LoRA '", spec, "': scale is not finite"));
    }
    parsed.path = std::string(spec.substr(0, colon));
    parsed.scale = scale;
  }
  if (parsed.path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("LoRA '", spec, "': no file named"));
  }
  return parsed;
}

LoraSet::~LoraSet() { Clear(); }

absl::Status LoraSet::Add(const std::string& name, const std::string& path,
                          const LoraLoadOptions& options, LoraLoadReport* report) {
  if (Find(name) != nullptr) {
    return absl::AlreadyExistsError(absl::StrCat("a LoRA named '", name, "' is already attached"));
  }
  LIKENESS_ASSIGN_OR_RETURN(std::unique_ptr<LoraNetwork> network,
                            LoraNetwork::Load(*models_, path, options, report));
  networks_.emplace_back(name, std::move(network));
  return absl::OkStatus();
}

absl::Status LoraSet::Add(const LoraSpec& spec, LoraLoadReport* report) {
  LoraLoadOptions options;
  options.scale = spec.scale;
  return Add(spec.path, spec.path, options, report);
}

absl::Status LoraSet::Add(const std::string& name, std::unique_ptr<LoraNetwork> network) {
  if (network == nullptr || !network->attached()) {
    return absl::InvalidArgumentError(absl::StrCat("LoRA '", name, "' is not attached"));
  }
  if (Find(name) != nullptr) {
    return absl::AlreadyExistsError(absl::StrCat("a LoRA named '", name, "' is already attached"));
  }
  networks_.emplace_back(name, std::move(network));
  return absl::OkStatus();
}

absl::Status LoraSet::SetScale(const std::string& name, double scale) {
  LoraNetwork* network = Find(name);
  if (network == nullptr) return absl::NotFoundError(absl::StrCat("no LoRA named '", name, "'"));
  network->SetScale(scale);
  return absl::OkStatus();
}

absl::Status LoraSet::Remove(const std::string& name) {
  for (auto it = networks_.begin(); it != networks_.end(); ++it) {
    if (it->first != name) continue;
    LIKENESS_RETURN_IF_ERROR(it->second->Detach());
    networks_.erase(it);
    return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrCat("no LoRA named '", name, "'"));
}

absl::Status LoraSet::MergeAll() {
  for (auto& [name, network] : networks_) {
    if (!network->merged()) LIKENESS_RETURN_IF_ERROR(network->Merge());
  }
  return absl::OkStatus();
}

absl::Status LoraSet::UnmergeAll() {
  for (auto it = networks_.rbegin(); it != networks_.rend(); ++it) {
    if (it->second->merged()) LIKENESS_RETURN_IF_ERROR(it->second->Unmerge());
  }
  return absl::OkStatus();
}

void LoraSet::Clear() {
  while (!networks_.empty()) networks_.pop_back();  // ~LoraNetwork detaches.
}

LoraNetwork* LoraSet::Find(const std::string& name) const {
  for (const auto& [n, network] : networks_) {
    if (n == name) return network.get();
  }
  return nullptr;
}

std::vector<std::string> LoraSet::Names() const {
  std::vector<std::string> names;
  for (const auto& [n, network] : networks_) names.push_back(n);
  return names;
}

}  // namespace likeness::lora
