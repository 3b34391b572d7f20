// Which layers get a LoRA, and what the LoRA-able components of SDXL are called.
//
// A target pattern matches a module path (diffusers/transformers names inside one component)
// the way PEFT's `target_modules` list does: the path equals the pattern or ends with
// "." + pattern. So "to_q" matches "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"
// and "attn2.to_q" only the cross-attention query. Only Linear and Conv2d layers are LoRA-able; a
// pattern that matches none of them in its component is an error (a typo trains nothing).
#ifndef LIKENESS_WORKER_LORA_LORA_TARGETS_H_
#define LIKENESS_WORKER_LORA_LORA_TARGETS_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace likeness::lora {

// The components a LoRA can touch, in the fixed order every list in this library uses
// (the VAE never carries LoRA).
enum class LoraComponent { kUnet, kTextEncoder, kTextEncoder2 };
inline constexpr LoraComponent kLoraComponents[] = {
    LoraComponent::kUnet, LoraComponent::kTextEncoder, LoraComponent::kTextEncoder2};
// "unet", "text_encoder", "text_encoder_2": SdxlModels::Component names and the PEFT prefixes.
const char* ComponentName(LoraComponent component);
// "lora_unet", "lora_te1", "lora_te2": sd-scripts' LORA_PREFIX_* for SDXL (networks/lora.py).
const char* KohyaPrefix(LoraComponent component);

// UNet attention projections (self and cross): the default, and the diffusers SDXL
// DreamBooth-LoRA script's target_modules.
inline constexpr const char* kUnetAttentionTargets[] = {"to_q", "to_k", "to_v", "to_out.0"};
// The GEGLU feed-forward of each transformer block.
inline constexpr const char* kUnetFeedForwardTargets[] = {"ff.net.0.proj", "ff.net.2"};
// Transformer2DModel's projections in and out (Linear in SDXL). Attention + feed-forward +
// these are exactly the Linear layers sd-scripts targets by default (every Linear inside a
// Transformer2DModel): 722 modules on SDXL base.
inline constexpr const char* kUnetProjectionTargets[] = {"proj_in", "proj_out"};
// CLIP self-attention projections of both text encoders.
inline constexpr const char* kTextAttentionTargets[] = {"self_attn.q_proj", "self_attn.k_proj",
                                                        "self_attn.v_proj", "self_attn.out_proj"};
// CLIP MLP; with the attention these are sd-scripts' text-encoder targets (CLIPAttention and
// CLIPMLP): 72 modules for CLIP-L, 192 for bigG.
inline constexpr const char* kTextMlpTargets[] = {"mlp.fc1", "mlp.fc2"};

// Patterns per component. An empty list leaves that component without LoRA.
struct LoraTargets {
  std::vector<std::string> unet;
  std::vector<std::string> text_encoder;
  std::vector<std::string> text_encoder_2;

  // UNet attention only (kUnetAttentionTargets).
  static LoraTargets Default();
  // The options the issue names, added to these targets (no duplicates): feed-forward and
  // proj_in/proj_out of the UNet; attention (and, with `mlp`, the MLP) of both text encoders.
  // Default().WithUnetFeedForward().WithUnetProjections() is sd-scripts' UNet target set.
  LoraTargets& WithUnetFeedForward();
  LoraTargets& WithUnetProjections();
  LoraTargets& WithTextEncoders(bool mlp = false);

  std::vector<std::string>& Of(LoraComponent component);
  const std::vector<std::string>& Of(LoraComponent component) const;
};

// True when `path` equals `pattern` or ends with "." + pattern.
bool MatchesTarget(absl::string_view path, absl::string_view pattern);
bool MatchesAnyTarget(absl::string_view path, const std::vector<std::string>& patterns);

}  // namespace likeness::lora

#endif  // LIKENESS_WORKER_LORA_LORA_TARGETS_H_
