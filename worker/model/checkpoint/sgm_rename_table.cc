#include "worker/model/checkpoint/sgm_rename_table.h"

#include <functional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/status_macros.h"
#include "worker/model/checkpoint/name_template.h"

namespace likeness::model::checkpoint {
namespace {

// ---------------------------------------------------------------------------------------------
// Table types.

// Which tensors a leaf row names: stem + ".weight" (+ ".bias"), or the stem itself (OpenCLIP's
// bare parameters such as positional_embedding).
enum class Params { kWeightAndBias, kWeight, kBare };

struct LeafRule {
  const char* sgm;        // appended to the block's SGM name
  const char* diffusers;  // appended to the block's diffusers name; "{qkv}" for kSplitQkv
  Params params = Params::kWeightAndBias;
  TensorOp op = TensorOp::kCopy;  // applies to the weight (or bare tensor); biases are copied,
                                  // except for kSplitQkv rows, which are bare on both sides
  bool optional = false;
};

// Which instances of a block exist; the domain binds the template variables i, j, k, A.
enum class Domain {
  kOnce,
  kDownResnets,            // i < N, j < L
  kDownAttentions,         // i < N with attention, j < L
  kDownTransformerBlocks,  // ... and k < depth of level i
  kDownsamplers,           // i < N - 1
  kMidResnets,             // j < 2
  kMidAttention,           // once, when the mid block has attention
  kMidTransformerBlocks,   // k < mid depth
  kUpResnets,              // i < N, j < L + 1
  kUpAttentions,           // i < N with attention, j < L + 1
  kUpTransformerBlocks,    // ... and k < depth of up level i
  kUpsamplers,             // i < N - 1, A = 1 when up level i has attention
  kTextLayers,             // i < number of text encoder layers
};

struct BlockRule {
  const char* sgm;
  const char* diffusers;
  Domain domain;
  absl::Span<const LeafRule> leaves;
};

constexpr Params kWB = Params::kWeightAndBias;
constexpr Params kW = Params::kWeight;
constexpr Params kBare = Params::kBare;

// ---------------------------------------------------------------------------------------------
// Leaves.

// A block that is itself one layer: a conv, a linear or a norm.
constexpr LeafRule kLayer[] = {{"", ""}};

constexpr LeafRule kUnetResnet[] = {
    {".in_layers.0", ".norm1"},
    {".in_layers.2", ".conv1"},
    {".emb_layers.1", ".time_emb_proj"},
    {".out_layers.0", ".norm2"},
    {".out_layers.3", ".conv2"},
    {".skip_connection", ".conv_shortcut", kWB, TensorOp::kCopy, /*optional=*/true},
};

// Transformer2DModel around the blocks: the names are the same on both sides.
constexpr LeafRule kUnetAttention[] = {
    {".norm", ".norm"}, {".proj_in", ".proj_in"}, {".proj_out", ".proj_out"}};

// BasicTransformerBlock. q/k/v projections have no bias in SDXL (attention_bias = false).
constexpr LeafRule kUnetTransformerBlock[] = {
    {".norm1", ".norm1"},
    {".attn1.to_q", ".attn1.to_q", kW},
    {".attn1.to_k", ".attn1.to_k", kW},
    {".attn1.to_v", ".attn1.to_v", kW},
    {".attn1.to_out.0", ".attn1.to_out.0"},
    {".norm2", ".norm2"},
    {".attn2.to_q", ".attn2.to_q", kW},
    {".attn2.to_k", ".attn2.to_k", kW},
    {".attn2.to_v", ".attn2.to_v", kW},
    {".attn2.to_out.0", ".attn2.to_out.0"},
    {".norm3", ".norm3"},
    {".ff.net.0.proj", ".ff.net.0.proj"},
    {".ff.net.2", ".ff.net.2"},
};

constexpr LeafRule kVaeResnet[] = {
    {".norm1", ".norm1"},
    {".conv1", ".conv1"},
    {".norm2", ".norm2"},
    {".conv2", ".conv2"},
    {".nin_shortcut", ".conv_shortcut", kWB, TensorOp::kCopy, /*optional=*/true},
};

// The VAE's mid attention: 1x1 convolutions in SGM, linear layers in diffusers.
constexpr LeafRule kVaeAttention[] = {
    {".norm", ".group_norm"},
    {".q", ".to_q", kWB, TensorOp::kConv1x1ToLinear},
    {".k", ".to_k", kWB, TensorOp::kConv1x1ToLinear},
    {".v", ".to_v", kWB, TensorOp::kConv1x1ToLinear},
    {".proj_out", ".to_out.0", kWB, TensorOp::kConv1x1ToLinear},
};

// transformers' CLIPTextModel, kept under its own names.
constexpr LeafRule kClipTextTop[] = {
    {"text_model.embeddings.token_embedding", "text_model.embeddings.token_embedding", kW},
    {"text_model.embeddings.position_embedding", "text_model.embeddings.position_embedding", kW},
    {"text_model.final_layer_norm", "text_model.final_layer_norm"},
};
constexpr LeafRule kClipTextLayer[] = {
    {".self_attn.q_proj", ".self_attn.q_proj"},
    {".self_attn.k_proj", ".self_attn.k_proj"},
    {".self_attn.v_proj", ".self_attn.v_proj"},
    {".self_attn.out_proj", ".self_attn.out_proj"},
    {".layer_norm1", ".layer_norm1"},
    {".mlp.fc1", ".mlp.fc1"},
    {".mlp.fc2", ".mlp.fc2"},
    {".layer_norm2", ".layer_norm2"},
};

// OpenCLIP's text tower (bigG) <-> transformers' CLIPTextModelWithProjection.
constexpr LeafRule kOpenClipTop[] = {
    {"token_embedding", "text_model.embeddings.token_embedding", kW},
    {"positional_embedding", "text_model.embeddings.position_embedding.weight", kBare},
    {"ln_final", "text_model.final_layer_norm"},
    {"text_projection", "text_projection.weight", kBare, TensorOp::kTranspose},
};
constexpr LeafRule kOpenClipLayer[] = {
    {".ln_1", ".layer_norm1"},
    {".ln_2", ".layer_norm2"},
    {".mlp.c_fc", ".mlp.fc1"},
    {".mlp.c_proj", ".mlp.fc2"},
    {".attn.out_proj", ".self_attn.out_proj"},
    {".attn.in_proj_weight", ".self_attn.{qkv}_proj.weight", kBare, TensorOp::kSplitQkv},
    {".attn.in_proj_bias", ".self_attn.{qkv}_proj.bias", kBare, TensorOp::kSplitQkv},
};

// ---------------------------------------------------------------------------------------------
// Blocks. SGM's UNet lists its blocks flat: input_blocks.0 is conv_in, then per down level L
// entries of (resnet, attention) and one downsampler; output_blocks has L + 1 entries per up
// level, and the upsampler sits after the attention (index 2) or after the resnet (index 1).

constexpr BlockRule kUnetBlocks[] = {
    {"time_embed.0", "time_embedding.linear_1", Domain::kOnce, kLayer},
    {"time_embed.2", "time_embedding.linear_2", Domain::kOnce, kLayer},
    {"label_emb.0.0", "add_embedding.linear_1", Domain::kOnce, kLayer},
    {"label_emb.0.2", "add_embedding.linear_2", Domain::kOnce, kLayer},
    {"input_blocks.0.0", "conv_in", Domain::kOnce, kLayer},
    {"input_blocks.{i*(L+1)+j+1}.0", "down_blocks.{i}.resnets.{j}", Domain::kDownResnets,
     kUnetResnet},
    {"input_blocks.{i*(L+1)+j+1}.1", "down_blocks.{i}.attentions.{j}", Domain::kDownAttentions,
     kUnetAttention},
    {"input_blocks.{i*(L+1)+j+1}.1.transformer_blocks.{k}",
     "down_blocks.{i}.attentions.{j}.transformer_blocks.{k}", Domain::kDownTransformerBlocks,
     kUnetTransformerBlock},
    {"input_blocks.{(i+1)*(L+1)}.0.op", "down_blocks.{i}.downsamplers.0.conv",
     Domain::kDownsamplers, kLayer},
    {"middle_block.{2*j}", "mid_block.resnets.{j}", Domain::kMidResnets, kUnetResnet},
    {"middle_block.1", "mid_block.attentions.0", Domain::kMidAttention, kUnetAttention},
    {"middle_block.1.transformer_blocks.{k}", "mid_block.attentions.0.transformer_blocks.{k}",
     Domain::kMidTransformerBlocks, kUnetTransformerBlock},
    {"output_blocks.{i*(L+1)+j}.0", "up_blocks.{i}.resnets.{j}", Domain::kUpResnets, kUnetResnet},
    {"output_blocks.{i*(L+1)+j}.1", "up_blocks.{i}.attentions.{j}", Domain::kUpAttentions,
     kUnetAttention},
    {"output_blocks.{i*(L+1)+j}.1.transformer_blocks.{k}",
     "up_blocks.{i}.attentions.{j}.transformer_blocks.{k}", Domain::kUpTransformerBlocks,
     kUnetTransformerBlock},
    {"output_blocks.{i*(L+1)+L}.{1+A}.conv", "up_blocks.{i}.upsamplers.0.conv", Domain::kUpsamplers,
     kLayer},
    {"out.0", "conv_norm_out", Domain::kOnce, kLayer},
    {"out.2", "conv_out", Domain::kOnce, kLayer},
};

// SGM numbers the decoder's levels by resolution (up.0 is the full-resolution one, run last);
// diffusers numbers them in the order they run, hence up.(N-1-i).
constexpr BlockRule kVaeBlocks[] = {
    {"encoder.conv_in", "encoder.conv_in", Domain::kOnce, kLayer},
    {"encoder.down.{i}.block.{j}", "encoder.down_blocks.{i}.resnets.{j}", Domain::kDownResnets,
     kVaeResnet},
    {"encoder.down.{i}.downsample.conv", "encoder.down_blocks.{i}.downsamplers.0.conv",
     Domain::kDownsamplers, kLayer},
    {"encoder.mid.block_{j+1}", "encoder.mid_block.resnets.{j}", Domain::kMidResnets, kVaeResnet},
    {"encoder.mid.attn_1", "encoder.mid_block.attentions.0", Domain::kOnce, kVaeAttention},
    {"encoder.norm_out", "encoder.conv_norm_out", Domain::kOnce, kLayer},
    {"encoder.conv_out", "encoder.conv_out", Domain::kOnce, kLayer},
    {"decoder.conv_in", "decoder.conv_in", Domain::kOnce, kLayer},
    {"decoder.mid.block_{j+1}", "decoder.mid_block.resnets.{j}", Domain::kMidResnets, kVaeResnet},
    {"decoder.mid.attn_1", "decoder.mid_block.attentions.0", Domain::kOnce, kVaeAttention},
    {"decoder.up.{N-1-i}.block.{j}", "decoder.up_blocks.{i}.resnets.{j}", Domain::kUpResnets,
     kVaeResnet},
    {"decoder.up.{N-1-i}.upsample.conv", "decoder.up_blocks.{i}.upsamplers.0.conv",
     Domain::kUpsamplers, kLayer},
    {"decoder.norm_out", "decoder.conv_norm_out", Domain::kOnce, kLayer},
    {"decoder.conv_out", "decoder.conv_out", Domain::kOnce, kLayer},
    {"quant_conv", "quant_conv", Domain::kOnce, kLayer},
    {"post_quant_conv", "post_quant_conv", Domain::kOnce, kLayer},
};

constexpr BlockRule kClipTextBlocks[] = {
    {"", "", Domain::kOnce, kClipTextTop},
    {"text_model.encoder.layers.{i}", "text_model.encoder.layers.{i}", Domain::kTextLayers,
     kClipTextLayer},
};

constexpr BlockRule kOpenClipBlocks[] = {
    {"", "", Domain::kOnce, kOpenClipTop},
    {"transformer.resblocks.{i}", "text_model.encoder.layers.{i}", Domain::kTextLayers,
     kOpenClipLayer},
};

// ---------------------------------------------------------------------------------------------
// Prefixes and ignored extras.

constexpr ComponentPrefix kComponentPrefixes[] = {
    {"model.diffusion_model.", Component::kUnet, Naming::kUnet, ""},
    {"first_stage_model.", Component::kVae, Naming::kVae, ""},
    {"conditioner.embedders.0.transformer.", Component::kTextEncoder, Naming::kClipText,
     "quick_gelu"},
    {"conditioner.embedders.1.model.", Component::kTextEncoder2, Naming::kOpenClip, "gelu"},
    // The SDXL refiner conditions on bigG alone, as embedder 0.
    {"conditioner.embedders.0.model.", Component::kTextEncoder2, Naming::kOpenClip, "gelu"},
};

enum class Match { kExact, kPrefix, kSuffix };
struct IgnoreRule {
  const char* pattern;
  Match match;
};
constexpr IgnoreRule kIgnoredTensors[] = {
    {"conditioner.embedders.1.model.logit_scale", Match::kExact},  // CLIP's contrastive temperature
    {"conditioner.embedders.0.model.logit_scale", Match::kExact},
    {".position_ids", Match::kSuffix},  // transformers' buffer, always arange(77)
    {"denoiser.", Match::kPrefix},      // SGM's sigma schedule; the sampler computes its own
    {"model_ema.", Match::kPrefix},     // EMA copies kept by training checkpoints
    {"first_stage_model.loss.", Match::kPrefix},  // the VAE's LPIPS/discriminator training loss
    // LDM-style schedule buffers that merged checkpoints carry along.
    {"betas", Match::kExact},
    {"alphas_cumprod", Match::kExact},
    {"alphas_cumprod_prev", Match::kExact},
    {"sqrt_alphas_cumprod", Match::kExact},
    {"sqrt_one_minus_alphas_cumprod", Match::kExact},
    {"log_one_minus_alphas_cumprod", Match::kExact},
    {"sqrt_recip_alphas_cumprod", Match::kExact},
    {"sqrt_recipm1_alphas_cumprod", Match::kExact},
    {"posterior_variance", Match::kExact},
    {"posterior_log_variance_clipped", Match::kExact},
    {"posterior_mean_coef1", Match::kExact},
    {"posterior_mean_coef2", Match::kExact},
};

// ---------------------------------------------------------------------------------------------
// Instantiation.

absl::Span<const BlockRule> BlocksOf(Naming naming) {
  switch (naming) {
    case Naming::kUnet:
      return kUnetBlocks;
    case Naming::kVae:
      return kVaeBlocks;
    case Naming::kClipText:
      return kClipTextBlocks;
    case Naming::kOpenClip:
      return kOpenClipBlocks;
  }
  return {};
}

int DepthAt(const std::vector<int>& depths, int level) {
  return level < static_cast<int>(depths.size()) ? depths[level] : 0;
}

// Calls `emit` once per instance of `domain`, with the variables bound.
absl::Status ForEachInstance(Domain domain, const Structure& s,
                             const std::function<absl::Status(const TemplateVars&)>& emit) {
  TemplateVars v;
  v.L = s.layers_per_block;
  v.N = s.levels;
  const int n = s.levels;
  const int l = s.layers_per_block;
  auto levels_layers = [&](int level_count, int layer_count, const std::vector<int>* depths,
                           bool per_block) -> absl::Status {
    for (v.i = 0; v.i < level_count; ++v.i) {
      const int depth = depths == nullptr ? 1 : DepthAt(*depths, v.i);
      if (depths != nullptr && depth == 0) continue;
      for (v.j = 0; v.j < layer_count; ++v.j) {
        for (v.k = 0; v.k < (per_block ? depth : 1); ++v.k) LIKENESS_RETURN_IF_ERROR(emit(v));
      }
    }
    return absl::OkStatus();
  };
  switch (domain) {
    case Domain::kOnce:
      return emit(v);
    case Domain::kDownResnets:
      return levels_layers(n, l, nullptr, false);
    case Domain::kDownAttentions:
      return levels_layers(n, l, &s.down_depth, false);
    case Domain::kDownTransformerBlocks:
      return levels_layers(n, l, &s.down_depth, true);
    case Domain::kDownsamplers:
      return levels_layers(n - 1, 1, nullptr, false);
    case Domain::kMidResnets:
      return levels_layers(1, 2, nullptr, false);
    case Domain::kMidAttention:
      return s.mid_depth > 0 ? emit(v) : absl::OkStatus();
    case Domain::kMidTransformerBlocks:
      for (v.k = 0; v.k < s.mid_depth; ++v.k) LIKENESS_RETURN_IF_ERROR(emit(v));
      return absl::OkStatus();
    case Domain::kUpResnets:
      return levels_layers(n, l + 1, nullptr, false);
    case Domain::kUpAttentions:
      return levels_layers(n, l + 1, &s.up_depth, false);
    case Domain::kUpTransformerBlocks:
      return levels_layers(n, l + 1, &s.up_depth, true);
    case Domain::kUpsamplers:
      for (v.i = 0; v.i < n - 1; ++v.i) {
        v.A = DepthAt(s.up_depth, v.i) > 0 ? 1 : 0;
        LIKENESS_RETURN_IF_ERROR(emit(v));
      }
      return absl::OkStatus();
    case Domain::kTextLayers:
      return levels_layers(s.text_layers, 1, nullptr, false);
  }
  return absl::InternalError("unknown rename-table domain");
}

absl::Status AppendLeaf(const BlockRule& block, const LeafRule& leaf, const TemplateVars& vars,
                        std::vector<NameRule>& out) {
  LIKENESS_ASSIGN_OR_RETURN(std::string sgm,
                            ExpandNameTemplate(absl::StrCat(block.sgm, leaf.sgm), vars));
  const std::string diffusers_template = absl::StrCat(block.diffusers, leaf.diffusers);
  auto add = [&](absl::string_view suffix, TensorOp op) -> absl::Status {
    NameRule rule;
    rule.sgm = absl::StrCat(sgm, suffix);
    rule.op = op;
    rule.optional = leaf.optional;
    // "{qkv}" names the three parts of a fused tensor; it is not an index expression.
    const std::vector<std::string> parts = op == TensorOp::kSplitQkv
                                               ? std::vector<std::string>{"q", "k", "v"}
                                               : std::vector<std::string>{""};
    for (const std::string& part : parts) {
      LIKENESS_ASSIGN_OR_RETURN(
          std::string name,
          ExpandNameTemplate(absl::StrReplaceAll(diffusers_template, {{"{qkv}", part}}), vars));
      rule.diffusers.push_back(absl::StrCat(name, suffix));
    }
    out.push_back(std::move(rule));
    return absl::OkStatus();
  };
  switch (leaf.params) {
    case Params::kBare:
      return add("", leaf.op);
    case Params::kWeight:
      return add(".weight", leaf.op);
    case Params::kWeightAndBias:
      LIKENESS_RETURN_IF_ERROR(add(".weight", leaf.op));
      return add(".bias", TensorOp::kCopy);
  }
  return absl::InternalError("unknown rename-table params");
}

}  // namespace

absl::string_view ComponentName(Component component) {
  switch (component) {
    case Component::kUnet:
      return "unet";
    case Component::kVae:
      return "vae";
    case Component::kTextEncoder:
      return "text_encoder";
    case Component::kTextEncoder2:
      return "text_encoder_2";
  }
  return "unknown";
}

absl::Span<const ComponentPrefix> ComponentPrefixes() { return kComponentPrefixes; }

absl::StatusOr<std::vector<NameRule>> InstantiateRules(Naming naming, const Structure& structure) {
  std::vector<NameRule> rules;
  for (const BlockRule& block : BlocksOf(naming)) {
    LIKENESS_RETURN_IF_ERROR(
        ForEachInstance(block.domain, structure, [&](const TemplateVars& vars) {
          for (const LeafRule& leaf : block.leaves)
            LIKENESS_RETURN_IF_ERROR(AppendLeaf(block, leaf, vars, rules));
          return absl::OkStatus();
        }));
  }
  return rules;
}

bool IsIgnoredTensor(absl::string_view name) {
  for (const IgnoreRule& rule : kIgnoredTensors) {
    switch (rule.match) {
      case Match::kExact:
        if (name == rule.pattern) return true;
        break;
      case Match::kPrefix:
        if (absl::StartsWith(name, rule.pattern)) return true;
        break;
      case Match::kSuffix:
        if (absl::EndsWith(name, rule.pattern)) return true;
        break;
    }
  }
  return false;
}

}  // namespace likeness::model::checkpoint
