// The one rename table between single-file checkpoints (Stability AI's original "SGM" names,
// which AUTOMATIC1111 and ComfyUI load) and diffusers/transformers names (DESIGN.md "Model
// stack"; STYLE.md §1). The table is data, in sgm_rename_table.cc:
//
//   1. kComponentPrefixes: which prefix of a single file holds which component, and in which
//      naming (UNet, VAE, transformers CLIP, OpenCLIP).
//   2. Per naming, block rows: an SGM block name and its diffusers name as name templates
//      (name_template.h), with a domain that says which instances exist for the detected
//      structure, e.g. "input_blocks.{i*(L+1)+j+1}.0" <-> "down_blocks.{i}.resnets.{j}" for every
//      down level i and layer j.
//   3. Per block kind, leaf rows: the tensors inside the block, their names on both sides and
//      the op that turns the SGM tensor into the diffusers one (a copy unless noted).
//   4. kIgnoredTensors: extras that single files carry and no model uses.
//
// InstantiateRules() expands the rows for one structure into the complete list of tensor names,
// which converts in both directions (sgm_convert.h), finds missing tensors by name and tells an
// unknown tensor from a known one.
#ifndef LIKENESS_WORKER_MODEL_CHECKPOINT_SGM_RENAME_TABLE_H_
#define LIKENESS_WORKER_MODEL_CHECKPOINT_SGM_RENAME_TABLE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace likeness::model::checkpoint {

// The four SDXL components, named as the folders of a diffusers pipeline.
enum class Component { kUnet, kVae, kTextEncoder, kTextEncoder2 };
inline constexpr Component kAllComponents[] = {Component::kUnet, Component::kVae,
                                               Component::kTextEncoder, Component::kTextEncoder2};
absl::string_view ComponentName(Component component);  // "unet", "vae", "text_encoder", ...

// The naming a component's tensors have inside a single file.
enum class Naming {
  kUnet,      // SGM openaimodel.UNetModel: input_blocks / middle_block / output_blocks
  kVae,       // SGM AutoencoderKL: encoder.down.i.block.j, decoder.up.(N-1-i), mid.attn_1
  kClipText,  // transformers' CLIPTextModel names, kept as they are
  kOpenClip,  // OpenCLIP: transformer.resblocks.k, fused attn.in_proj_weight
};

struct ComponentPrefix {
  const char* prefix;  // "model.diffusion_model."
  Component component;
  Naming naming;
  const char* hidden_act;  // for text encoders: the activation the config gets
};
// Most specific first; the first row per component is the one ToSingleFile writes.
absl::Span<const ComponentPrefix> ComponentPrefixes();

// What turns the SGM tensor into the diffusers tensor(s). Each op has an exact inverse.
enum class TensorOp {
  kCopy,             // the same tensor
  kConv1x1ToLinear,  // SGM [C, C, 1, 1] -> diffusers [C, C] (VAE mid attention, weights only)
  kSplitQkv,         // SGM [3H, ...] -> diffusers q, k, v [H, ...]: dim-0 thirds (OpenCLIP in_proj)
  kTranspose,        // SGM [H, P] -> diffusers [P, H] (OpenCLIP text_projection, applied as x @ W)
};

// One tensor name pair for a concrete structure. `diffusers` holds q, k, v for kSplitQkv and
// one name otherwise. Names carry no component prefix.
struct NameRule {
  std::string sgm;
  std::vector<std::string> diffusers;
  TensorOp op = TensorOp::kCopy;
  // Present only in some instances of the block: a resnet's shortcut conv exists only where
  // its channel count changes, which the shapes, not the names, decide. The model's strict
  // load still reports it missing where the model needs it.
  bool optional = false;
};

// The shape of one component that decides which names exist, detected from the names in a file
// (sgm_structure.h).
struct Structure {
  int levels = 0;               // N: UNet or VAE levels
  int layers_per_block = 0;     // L: resnets per down level (the up path has L + 1)
  std::vector<int> down_depth;  // transformer blocks per down level; 0 = no attention there
  std::vector<int> up_depth;    // the same per up level, in diffusers' up order
  int mid_depth = 0;            // transformer blocks in the UNet mid block
  int text_layers = 0;          // text encoder layers
};

// Every tensor name pair of `naming` for `structure`, in table order.
absl::StatusOr<std::vector<NameRule>> InstantiateRules(Naming naming, const Structure& structure);

// True when `name` (a full single-file name) is a known harmless extra: no diffusers model has
// it and dropping it loses nothing (OpenCLIP's logit_scale, position_ids buffers, schedules).
bool IsIgnoredTensor(absl::string_view name);

}  // namespace likeness::model::checkpoint

#endif  // LIKENESS_WORKER_MODEL_CHECKPOINT_SGM_RENAME_TABLE_H_
