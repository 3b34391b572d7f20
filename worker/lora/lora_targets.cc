#include "worker/lora/lora_targets.h"

#include "absl/strings/match.h"

namespace likeness::lora {
namespace {

template <size_t N>
void Append(std::vector<std::string>& to, const char* const (&patterns)[N]) {
  for (const char* p : patterns) {
    bool present = false;
    for (const std::string& existing : to) present = present || existing == p;
    if (!present) to.emplace_back(p);
  }
}

}  // namespace

const char* ComponentName(LoraComponent component) {
  switch (component) {
    case LoraComponent::kUnet:
      return "unet";
    case LoraComponent::kTextEncoder:
      return "text_encoder";
    case LoraComponent::kTextEncoder2:
      return "text_encoder_2";
  }
  return "unknown";
}

const char* KohyaPrefix(LoraComponent component) {
  switch (component) {
    case LoraComponent::kUnet:
      return "lora_unet";
    case LoraComponent::kTextEncoder:
      return "lora_te1";
    case LoraComponent::kTextEncoder2:
      return "lora_te2";
  }
  return "unknown";
}

LoraTargets LoraTargets::Default() {
  LoraTargets targets;
  Append(targets.unet, kUnetAttentionTargets);
  return targets;
}

LoraTargets& LoraTargets::WithUnetFeedForward() {
  Append(unet, kUnetFeedForwardTargets);
  return *this;
}

LoraTargets& LoraTargets::WithUnetProjections() {
  Append(unet, kUnetProjectionTargets);
  return *this;
}

LoraTargets& LoraTargets::WithTextEncoders(bool mlp) {
  for (std::vector<std::string>* list : {&text_encoder, &text_encoder_2}) {
    Append(*list, kTextAttentionTargets);
    if (mlp) Append(*list, kTextMlpTargets);
  }
  return *this;
}

std::vector<std::string>& LoraTargets::Of(LoraComponent component) {
  switch (component) {
    case LoraComponent::kTextEncoder:
      return text_encoder;
    case LoraComponent::kTextEncoder2:
      return text_encoder_2;
    case LoraComponent::kUnet:
      break;
  }
  return unet;
}

const std::vector<std::string>& LoraTargets::Of(LoraComponent component) const {
  return const_cast<LoraTargets*>(this)->Of(component);
}

bool MatchesTarget(absl::string_view path, absl::string_view pattern) {
  if (pattern.empty()) return false;
  if (path == pattern) return true;
  return path.size() > pattern.size() && absl::EndsWith(path, pattern) &&
         path[path.size() - pattern.size() - 1] == '.';
}

bool MatchesAnyTarget(absl::string_view path, const std::vector<std::string>& patterns) {
  for (const std::string& p : patterns) {
    if (MatchesTarget(path, p)) return true;
  }
  return false;
}

}  // namespace likeness::lora
