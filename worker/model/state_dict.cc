#include "worker/model/state_dict.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace likeness::model {
namespace {

std::string ShapeOf(const torch::Tensor& t) { return absl::StrCat("[", absl::StrJoin(t.sizes().vec(), ", "), "]"); }

}  // namespace

std::string JoinNamesForError(const std::vector<std::string>& names) {
  if (names.size() <= static_cast<size_t>(kMaxNamesInError)) return absl::StrJoin(names, ", ");
  std::vector<std::string> head(names.begin(), names.begin() + kMaxNamesInError);
  return absl::StrCat(absl::StrJoin(head, ", "), " and ", names.size() - kMaxNamesInError, " more");
}

StateDict ModuleStateDict(const torch::nn::Module& module) {
  StateDict out;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) out[item.key()] = item.value();
  for (const auto& item : module.named_buffers(/*recurse=*/true)) out[item.key()] = item.value();
  return out;
}

absl::StatusOr<LoadReport> LoadStateDict(torch::nn::Module& module, const StateDict& source,
                                         absl::string_view source_name, const AfterCopy& after_copy) {
  const StateDict targets = ModuleStateDict(module);
  std::vector<std::string> missing;
  for (const auto& [name, target] : targets) {
    auto it = source.find(name);
    if (it == source.end()) {
      missing.push_back(name);
    } else if (it->second.sizes() != target.sizes()) {
      return absl::InvalidArgumentError(absl::StrCat(source_name, ": tensor '", name, "' has shape ",
                                                     ShapeOf(it->second), " but the model wants ",
                                                     ShapeOf(target)));
    }
  }
  if (!missing.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": ", missing.size(),
                                                   " tensor(s) the model needs are missing: ",
                                                   JoinNamesForError(missing)));
  }
  LoadReport report;
  try {
    torch::NoGradGuard no_grad;
    for (const auto& [name, target] : targets) {
      torch::Tensor t = target;  // Shares storage with the module's tensor.
      const torch::Tensor& from = source.at(name);
      t.copy_(from);
      if (after_copy) after_copy(from);
      ++report.loaded;
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(source_name, ": copying weights failed: ", e.what_without_backtrace()));
  }
  for (const auto& [name, tensor] : source) {
    if (targets.count(name) == 0) report.unexpected.push_back(name);
  }
  return report;
}

absl::StatusOr<StateDict> ReadStateDict(const safetensors::SafetensorsFile& file, absl::string_view prefix) {
  StateDict out;
  for (const std::string& name : file.Names()) {
    if (absl::StartsWith(name, "__") || !absl::StartsWith(name, prefix)) continue;
    LIKENESS_ASSIGN_OR_RETURN(torch::Tensor t, file.Get(name));
    out[name.substr(prefix.size())] = std::move(t);
  }
  return out;
}

}  // namespace likeness::model
