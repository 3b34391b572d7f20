#include "worker/lora/lora_network.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/model/state_dict.h"

namespace likeness::lora {
namespace {

template <typename Fn>
auto CatchTorch(const std::string& what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what_without_backtrace()));
  }
}

absl::Status CheckTrainOptions(const LoraTrainOptions& options, const LoraLayerIndex& index) {
  if (options.rank < 1) {
    return absl::InvalidArgumentError(absl::StrCat("LoRA rank must be >= 1, got ", options.rank));
  }
  if (!(options.dropout >= 0.0 && options.dropout < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("LoRA dropout must be in [0, 1), got ", options.dropout));
  }
  for (LoraComponent component : kLoraComponents) {
    const std::vector<std::string>& patterns = options.targets.Of(component);
    if (patterns.empty()) continue;
    if (!index.HasComponent(component)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "LoRA targets name ", ComponentName(component), ", which the model bundle lacks"));
    }
    for (const std::string& pattern : patterns) {
      bool matched = false;
      for (const LoraLayer& layer : index.layers()) {
        matched = matched || (layer.component == component && MatchesTarget(layer.path, pattern));
      }
      if (!matched) {
        return absl::InvalidArgumentError(absl::StrCat("LoRA target '", pattern,
                                                       "' matches no Linear or Conv2d layer of ",
                                                       ComponentName(component)));
      }
    }
  }
  return absl::OkStatus();
}

// The value most modules have (ties: the first seen).
template <typename T>
T MostCommon(const std::vector<T>& values) {
  std::map<T, int> counts;
  T best{};
  int best_count = 0;
  for (const T& v : values) {
    if (++counts[v] > best_count) {
      best = v;
      best_count = counts[v];
    }
  }
  return best;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LoraNetwork>> LoraNetwork::CreateTrainable(
    model::SdxlModels& models, const LoraTrainOptions& options) {
  LIKENESS_ASSIGN_OR_RETURN(LoraLayerIndex index, LoraLayerIndex::Build(models));
  LIKENESS_RETURN_IF_ERROR(CheckTrainOptions(options, index));
  return CatchTorch(
      "creating trainable LoRA", [&]() -> absl::StatusOr<std::unique_ptr<LoraNetwork>> {
        if (options.freeze_base) {
          for (const char* name : model::kSdxlComponents) {
            torch::nn::Module* component = models.Component(name);
            if (component == nullptr) continue;
            for (torch::Tensor& p : component->parameters(/*recurse=*/true))
              p.requires_grad_(false);
          }
        }
        std::unique_ptr<LoraNetwork> network(new LoraNetwork());
        network->targets_ = options.targets;
        network->dropout_ = options.dropout;
        // One generator drawn in the fixed module order: the same seed and targets give the same
        // adapters in every process.
        torch::Generator generator = at::detail::createCPUGenerator(options.seed);
        const double alpha =
            options.alpha != 0.0 ? options.alpha : static_cast<double>(options.rank);
        for (const LoraLayer& layer : index.layers()) {
          if (!MatchesAnyTarget(layer.path, options.targets.Of(layer.component))) continue;
          const torch::TensorOptions tensor_options =
              torch::TensorOptions()
                  .dtype(options.dtype.value_or(torch::kFloat32))
                  .device(layer.weight().device());
          LoraPair pair = InitLoraPair(layer.Shape(), options.rank, generator, tensor_options);
          auto adapter =
              std::make_shared<LoraAdapter>(layer.module.get(), layer.Shape(), std::move(pair.down),
                                            std::move(pair.up), alpha, options.dropout);
          network->Attach(layer, std::move(adapter));
        }
        return network;
      });
}

absl::StatusOr<std::unique_ptr<LoraNetwork>> LoraNetwork::Load(model::SdxlModels& models,
                                                               const std::string& path,
                                                               const LoraLoadOptions& options,
                                                               LoraLoadReport* report) {
  LIKENESS_ASSIGN_OR_RETURN(LoraLayerIndex index, LoraLayerIndex::Build(models));
  LIKENESS_ASSIGN_OR_RETURN(LoraFileContents contents, ReadLoraFile(path, index));
  if (contents.modules.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": none of its ", contents.unmatched.size(),
        " LoRA modules matches a layer of this SDXL model (a LoRA for another architecture?): ",
        model::JoinNamesForError(contents.unmatched)));
  }
  if (!contents.unmatched.empty() && !options.allow_unmatched) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", contents.unmatched.size(), " of its ",
                     contents.unmatched.size() + contents.modules.size(),
                     " LoRA modules match no layer of this SDXL model: ",
                     model::JoinNamesForError(contents.unmatched)));
  }
  if (report != nullptr) {
    report->format = contents.format;
    report->modules = static_cast<int64_t>(contents.modules.size());
    report->unmatched = contents.unmatched;
    report->metadata = contents.metadata;
  }
  return CatchTorch(
      absl::StrCat(path, ": attaching LoRA"),
      [&]() -> absl::StatusOr<std::unique_ptr<LoraNetwork>> {
        std::unique_ptr<LoraNetwork> network(new LoraNetwork());
        network->scale_ = options.scale;
        for (const LoraModuleWeights& m : contents.modules) {
          const torch::Tensor& weight = m.layer->weight();
          // A copy on the layer's device, in its dtype unless told: never a view of the mapped
          // file, and no second conversion per forward.
          const torch::TensorOptions to = torch::TensorOptions()
                                              .dtype(options.dtype.value_or(weight.scalar_type()))
                                              .device(weight.device());
          torch::Tensor down = m.down.to(to, /*non_blocking=*/false, /*copy=*/true);
          torch::Tensor up = m.up.to(to, /*non_blocking=*/false, /*copy=*/true);
          down.requires_grad_(options.trainable);
          up.requires_grad_(options.trainable);
          auto adapter = std::make_shared<LoraAdapter>(m.layer->module.get(), m.layer->Shape(),
                                                       std::move(down), std::move(up), m.alpha);
          adapter->set_multiplier(options.scale);
          network->targets_.Of(m.layer->component).push_back(m.layer->path);
          network->Attach(*m.layer, std::move(adapter));
        }
        return network;
      });
}

LoraNetwork::~LoraNetwork() {
  // A destructor cannot report; Detach fails only when libtorch cannot unmerge (see Detach).
  Detach().IgnoreError();
}

void LoraNetwork::Attach(LoraLayer layer, std::shared_ptr<LoraAdapter> adapter) {
  layer.adapters().push_back(adapter);
  entries_.push_back(Entry{std::move(layer), std::move(adapter)});
}

void LoraNetwork::SetScale(double scale) {
  const bool was_merged = merged_;
  if (was_merged) AddDelta(-1.0);
  scale_ = scale;
  for (Entry& e : entries_) e.adapter->set_multiplier(scale);
  if (was_merged) AddDelta(+1.0);
}

void LoraNetwork::AddDelta(double sign) {
  torch::NoGradGuard no_grad;
  for (Entry& e : entries_) {
    torch::Tensor& weight = e.layer.weight();
    const torch::Tensor delta = e.adapter->DeltaWeight().to(weight.device());
    weight.copy_(weight.to(torch::kFloat32).add_(delta, sign));
  }
}

absl::Status LoraNetwork::Merge() {
  if (!attached_) return absl::FailedPreconditionError("cannot merge a detached LoRA network");
  if (merged_) return absl::FailedPreconditionError("the LoRA network is already merged");
  return CatchTorch("merging LoRA", [&]() -> absl::Status {
    AddDelta(+1.0);
    for (Entry& e : entries_) e.adapter->set_merged(true);
    merged_ = true;
    return absl::OkStatus();
  });
}

absl::Status LoraNetwork::Unmerge() {
  if (!merged_) return absl::FailedPreconditionError("the LoRA network is not merged");
  return CatchTorch("unmerging LoRA", [&]() -> absl::Status {
    AddDelta(-1.0);
    for (Entry& e : entries_) e.adapter->set_merged(false);
    merged_ = false;
    return absl::OkStatus();
  });
}

absl::Status LoraNetwork::Detach() {
  if (!attached_) return absl::OkStatus();
  // Unmerge first; should it fail (only libtorch can make it: out of memory), the adapters stay
  // attached and merged, so the model is still consistent, just not the base.
  if (merged_) LIKENESS_RETURN_IF_ERROR(Unmerge());
  for (Entry& e : entries_) {
    auto& adapters = e.layer.adapters();
    const model::LayerAdapter* mine = e.adapter.get();
    adapters.erase(std::remove_if(adapters.begin(), adapters.end(),
                                  [mine](const auto& a) { return a.get() == mine; }),
                   adapters.end());
  }
  attached_ = false;
  return absl::OkStatus();
}

std::vector<torch::Tensor> LoraNetwork::TrainableTensors() const {
  std::vector<torch::Tensor> tensors;
  tensors.reserve(2 * entries_.size());
  for (const Entry& e : entries_) {
    tensors.push_back(e.adapter->down());
    tensors.push_back(e.adapter->up());
  }
  return tensors;
}

std::vector<std::pair<std::string, torch::Tensor>> LoraNetwork::NamedTrainableTensors() const {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  tensors.reserve(2 * entries_.size());
  for (const Entry& e : entries_) {
    const std::string name = e.layer.QualifiedName();
    tensors.emplace_back(absl::StrCat(name, ".lora_A.weight"), e.adapter->down());
    tensors.emplace_back(absl::StrCat(name, ".lora_B.weight"), e.adapter->up());
  }
  return tensors;
}

int64_t LoraNetwork::NumTrainableParameters() const {
  int64_t count = 0;
  for (const Entry& e : entries_) count += e.adapter->down().numel() + e.adapter->up().numel();
  return count;
}

void LoraNetwork::SetRequiresGrad(bool requires_grad) {
  for (Entry& e : entries_) {
    // The adapter's tensors are leaves; requires_grad_ on the same TensorImpl.
    torch::Tensor down = e.adapter->down(), up = e.adapter->up();
    down.requires_grad_(requires_grad);
    up.requires_grad_(requires_grad);
  }
}

absl::Status LoraNetwork::LoadWeights(const std::string& path) {
  std::vector<LoraLayer> layers;
  for (const Entry& e : entries_) layers.push_back(e.layer);
  LIKENESS_ASSIGN_OR_RETURN(LoraLayerIndex index, LoraLayerIndex::FromLayers(std::move(layers)));
  LIKENESS_ASSIGN_OR_RETURN(LoraFileContents contents, ReadLoraFile(path, index));
  if (!contents.unmatched.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path,
        ": names modules this LoRA network lacks: ", model::JoinNamesForError(contents.unmatched)));
  }
  std::vector<const LoraModuleWeights*> by_entry(entries_.size(), nullptr);
  for (const LoraModuleWeights& m : contents.modules) {
    by_entry[static_cast<size_t>(m.layer - index.layers().data())] = &m;
  }
  for (size_t i = 0; i < entries_.size(); ++i) {
    const LoraAdapter& adapter = *entries_[i].adapter;
    const std::string name = entries_[i].layer.QualifiedName();
    if (by_entry[i] == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": has no weights for ", name));
    }
    if (by_entry[i]->down.size(0) != adapter.rank() || by_entry[i]->alpha != adapter.alpha()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": ", by_entry[i]->name, " has rank ", by_entry[i]->down.size(0),
                       " and alpha ", by_entry[i]->alpha, "; the network's ", name, " has rank ",
                       adapter.rank(), " and alpha ", adapter.alpha()));
    }
  }
  return CatchTorch(absl::StrCat(path, ": copying LoRA weights"), [&]() -> absl::Status {
    const bool was_merged = merged_;
    if (was_merged) AddDelta(-1.0);
    {
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < entries_.size(); ++i) {
        torch::Tensor down = entries_[i].adapter->down(), up = entries_[i].adapter->up();
        down.copy_(by_entry[i]->down);
        up.copy_(by_entry[i]->up);
      }
    }
    if (was_merged) AddDelta(+1.0);
    return absl::OkStatus();
  });
}

std::vector<LoraModuleWeights> LoraNetwork::Modules() const {
  std::vector<LoraModuleWeights> modules;
  modules.reserve(entries_.size());
  for (const Entry& e : entries_) {
    LoraModuleWeights m;
    m.layer = &e.layer;
    m.name = e.layer.kohya_name;
    m.down = e.adapter->down();
    m.up = e.adapter->up();
    m.alpha = e.adapter->alpha();
    modules.push_back(std::move(m));
  }
  return modules;
}

LoraFileInfo LoraNetwork::FileInfo(const LoraSaveOptions& options) const {
  LoraFileInfo info;
  std::vector<int64_t> ranks;
  std::vector<double> alphas;
  for (const Entry& e : entries_) {
    ranks.push_back(e.adapter->rank());
    alphas.push_back(e.adapter->alpha());
  }
  info.rank = MostCommon(ranks);
  info.alpha = MostCommon(alphas);
  info.dropout = dropout_;
  info.targets = targets_;
  info.base_model_hash = options.base_model_hash;
  info.base_model_name = options.base_model_name;
  info.title = options.title;
  info.extra = options.extra_metadata;
  return info;
}

absl::Status LoraNetwork::Save(const std::string& path, const LoraSaveOptions& options) const {
  return WriteLoraFile(path, options.format, Modules(), FileInfo(options), options.dtype);
}

}  // namespace likeness::lora
