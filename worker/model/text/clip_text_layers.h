// The pieces of a CLIP text transformer, registered under transformers' module names
// (modeling_clip.py at v4.35) so a `text_model.encoder.layers.{i}...` state dict loads by lookup:
//
//   CLIPTextEmbeddings  embeddings.{token_embedding,position_embedding}.weight
//   CLIPAttention       self_attn.{q,k,v,out}_proj.{weight,bias}
//   CLIPMLP             mlp.{fc1,fc2}.{weight,bias}
//   CLIPEncoderLayer    layer_norm1 -> self_attn -> +residual -> layer_norm2 -> mlp -> +residual
//
// Parameters are uninitialised (layers.h); load a checkpoint or call InitializeRandomly.
#ifndef LIKENESS_WORKER_MODEL_TEXT_CLIP_TEXT_LAYERS_H_
#define LIKENESS_WORKER_MODEL_TEXT_CLIP_TEXT_LAYERS_H_

#include <torch/torch.h>

#include "worker/model/attention.h"
#include "worker/model/layers.h"
#include "worker/model/text/clip_text_config.h"

namespace likeness::model {

// transformers' QuickGELUActivation: x * sigmoid(1.702 x).
inline constexpr double kQuickGeluScale = 1.702;

// `activation` applied elementwise.
torch::Tensor ApplyClipActivation(const torch::Tensor& x, ClipActivation activation);

// Token plus absolute position embeddings. transformers also keeps a non-persistent
// `position_ids` buffer (arange(max_position_embeddings)); it is not in the state dict, and the
// position table is sliced directly instead, which is the same lookup without the index tensor.
class ClipTextEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit ClipTextEmbeddingsImpl(const ClipTextConfig& config);
  // int64 ids [B, N], N <= max_position_embeddings -> [B, N, hidden]
  torch::Tensor forward(const torch::Tensor& input_ids);

  Embedding token_embedding{nullptr};     // [vocab, hidden]
  Embedding position_embedding{nullptr};  // [max_positions, hidden]
};
TORCH_MODULE(ClipTextEmbeddings);

// Multi-head self-attention through model::Attention (the one attention entry point).
class ClipAttentionImpl : public torch::nn::Module {
 public:
  explicit ClipAttentionImpl(const ClipTextConfig& config);
  // [B, N, hidden] -> [B, N, hidden]; `attention` carries the causal mask and backend.
  torch::Tensor forward(const torch::Tensor& x, const AttentionOptions& attention);

  Linear k_proj{nullptr}, v_proj{nullptr}, q_proj{nullptr}, out_proj{nullptr};

 private:
  int64_t num_heads_;
  int64_t head_dim_;
};
TORCH_MODULE(ClipAttention);

class ClipMlpImpl : public torch::nn::Module {
 public:
  explicit ClipMlpImpl(const ClipTextConfig& config);
  // [B, N, hidden] -> [B, N, intermediate] -> [B, N, hidden]
  torch::Tensor forward(const torch::Tensor& x);

  Linear fc1{nullptr}, fc2{nullptr};

 private:
  ClipActivation activation_;
};
TORCH_MODULE(ClipMlp);

// Pre-norm transformer block.
class ClipEncoderLayerImpl : public torch::nn::Module {
 public:
  explicit ClipEncoderLayerImpl(const ClipTextConfig& config);
  // [B, N, hidden] -> [B, N, hidden]
  torch::Tensor forward(const torch::Tensor& x, const AttentionOptions& attention);

  ClipAttention self_attn{nullptr};
  LayerNorm layer_norm1{nullptr};
  ClipMlp mlp{nullptr};
  LayerNorm layer_norm2{nullptr};
};
TORCH_MODULE(ClipEncoderLayer);

}  // namespace likeness::model

#endif  // LIKENESS_WORKER_MODEL_TEXT_CLIP_TEXT_LAYERS_H_
