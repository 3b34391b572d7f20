#include "worker/model/text/clip_text_layers.h"

namespace likeness::model {

torch::Tensor ApplyClipActivation(const torch::Tensor& x, ClipActivation activation) {
  switch (activation) {
    case ClipActivation::kQuickGelu:
      return x * torch::sigmoid(x * kQuickGeluScale);
    case ClipActivation::kGelu:
      return torch::gelu(x);
    case ClipActivation::kGeluTanh:
      return torch::gelu(x, "tanh");
  }
  TORCH_CHECK(false, "unknown ClipActivation ", static_cast<int>(activation));
}

ClipTextEmbeddingsImpl::ClipTextEmbeddingsImpl(const ClipTextConfig& config) {
  token_embedding =
      register_module("token_embedding", Embedding(config.vocab_size, config.hidden_size));
  position_embedding = register_module(
      "position_embedding", Embedding(config.max_position_embeddings, config.hidden_size));
}

torch::Tensor ClipTextEmbeddingsImpl::forward(const torch::Tensor& input_ids) {
  const int64_t length = input_ids.size(-1);
  const int64_t max_positions = position_embedding->weight.size(0);
  TORCH_CHECK(length <= max_positions, "CLIP text encoder: ", length,
              " tokens, but position embeddings exist for ", max_positions);
  // position_embedding(arange(N)) is the first N rows: [N, hidden], broadcast over the batch.
  return token_embedding(input_ids) + position_embedding->weight.narrow(0, 0, length);
}

ClipAttentionImpl::ClipAttentionImpl(const ClipTextConfig& config)
    : num_heads_(config.num_attention_heads), head_dim_(config.head_dim()) {
  const int64_t hidden = config.hidden_size;
  k_proj = register_module("k_proj", Linear(hidden, hidden));
  v_proj = register_module("v_proj", Linear(hidden, hidden));
  q_proj = register_module("q_proj", Linear(hidden, hidden));
  out_proj = register_module("out_proj", Linear(hidden, hidden));
}

torch::Tensor ClipAttentionImpl::forward(const torch::Tensor& x,
                                         const AttentionOptions& attention) {
  const int64_t batch = x.size(0), length = x.size(1), hidden = x.size(2);
  const auto split_heads = [&](const torch::Tensor& t) {
    // [B, N, hidden] -> [B, N, heads, head_dim] -> [B, heads, N, head_dim]
    return t.view({batch, length, num_heads_, head_dim_}).transpose(1, 2);
  };
  // Softmax scale: AttentionOptions' default 1/sqrt(head_dim), transformers' head_dim**-0.5.
  torch::Tensor out =
      Attention(split_heads(q_proj(x)), split_heads(k_proj(x)), split_heads(v_proj(x)), attention);
  // [B, heads, N, head_dim] -> [B, N, heads, head_dim] -> [B, N, hidden]
  out = out.transpose(1, 2).reshape({batch, length, hidden});
  return out_proj(out);
}

ClipMlpImpl::ClipMlpImpl(const ClipTextConfig& config) : activation_(config.hidden_act) {
  fc1 = register_module("fc1", Linear(config.hidden_size, config.intermediate_size));
  fc2 = register_module("fc2", Linear(config.intermediate_size, config.hidden_size));
}

torch::Tensor ClipMlpImpl::forward(const torch::Tensor& x) {
  return fc2(ApplyClipActivation(fc1(x), activation_));
}

ClipEncoderLayerImpl::ClipEncoderLayerImpl(const ClipTextConfig& config) {
  self_attn = register_module("self_attn", ClipAttention(config));
  layer_norm1 =
      register_module("layer_norm1", LayerNorm(config.hidden_size, config.layer_norm_eps));
  mlp = register_module("mlp", ClipMlp(config));
  layer_norm2 =
      register_module("layer_norm2", LayerNorm(config.hidden_size, config.layer_norm_eps));
}

torch::Tensor ClipEncoderLayerImpl::forward(const torch::Tensor& x,
                                            const AttentionOptions& attention) {
  const torch::Tensor h = x + self_attn(layer_norm1(x), attention);
  return h + mlp(layer_norm2(h));
}

}  // namespace likeness::model
