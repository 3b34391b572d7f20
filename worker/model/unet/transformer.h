// The UNet's attention pieces, as diffusers' attention_processor.py / attention.py /
// transformer_2d.py define them for SDXL: Attention (here CrossAttention, to keep the name
// model::Attention for the one attention function), GEGLU, FeedForward, BasicTransformerBlock and
// Transformer2DModel (continuous input, linear or 1x1-conv projection).
#ifndef LIKENESS_WORKER_MODEL_UNET_TRANSFORMER_H_
#define LIKENESS_WORKER_MODEL_UNET_TRANSFORMER_H_

#include <torch/torch.h>

#include <cstdint>

#include "worker/model/layers.h"

namespace likeness::model::unet {

// diffusers' Attention with AttnProcessor: q from `x`, k and v from `context` (or `x` for self
// attention), no q/k/v bias, output projection with bias. Calls model::Attention.
class CrossAttentionImpl : public torch::nn::Module {
 public:
  // context_dim 0: self attention (keys and values from the query's own width).
  CrossAttentionImpl(int64_t query_dim, int64_t context_dim, int64_t heads, int64_t head_dim,
                     bool upcast);
  // x [B, N, query_dim], context [B, M, context_dim] or undefined -> [B, N, query_dim]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context = {});

  Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  torch::nn::ModuleList to_out{nullptr};  // 0: Linear, 1: dropout (p = 0, no parameters)
  Linear out_proj{nullptr};               // = to_out[0]

 private:
  int64_t heads_, head_dim_;
  bool upcast_;
};
TORCH_MODULE(CrossAttention);

// x -> a * gelu(b) where [a, b] = proj(x) split in halves along the last dim.
class GegluImpl : public torch::nn::Module {
 public:
  GegluImpl(int64_t dim_in, int64_t dim_out);
  // [..., dim_in] -> [..., dim_out]
  torch::Tensor forward(const torch::Tensor& x);

  Linear proj{nullptr};
};
TORCH_MODULE(Geglu);

// net.0: GEGLU to 4 * dim, net.1: dropout (p = 0), net.2: Linear back to dim.
class FeedForwardImpl : public torch::nn::Module {
 public:
  explicit FeedForwardImpl(int64_t dim);
  // [..., dim] -> [..., dim]
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::ModuleList net{nullptr};
  Geglu geglu{nullptr};  // = net[0]
  Linear out{nullptr};   // = net[2]
};
TORCH_MODULE(FeedForward);

// Pre-LayerNorm transformer block: self attention, cross attention on the text, GEGLU MLP, each
// with a residual connection.
class BasicTransformerBlockImpl : public torch::nn::Module {
 public:
  BasicTransformerBlockImpl(int64_t dim, int64_t heads, int64_t head_dim,
                            int64_t cross_attention_dim, bool upcast);
  // x [B, N, dim], context [B, M, cross_attention_dim] -> [B, N, dim]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context);

  LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
  CrossAttention attn1{nullptr}, attn2{nullptr};
  FeedForward ff{nullptr};
  // Recompute this block's activations in backward instead of keeping them
  // (activation_checkpoint.h).
  bool gradient_checkpointing = false;

 private:
  torch::Tensor Compute(const torch::Tensor& x, const torch::Tensor& context);
};
TORCH_MODULE(BasicTransformerBlock);

struct Transformer2DOptions {
  int64_t heads = 8;
  int64_t num_layers = 1;
  int64_t cross_attention_dim = 768;
  int64_t norm_groups = 32;
  bool use_linear_projection = false;
  bool upcast_attention = false;
};

// GroupNorm, proj_in, the transformer blocks over the H*W tokens, proj_out, plus the input.
class Transformer2DModelImpl : public torch::nn::Module {
 public:
  Transformer2DModelImpl(int64_t channels, const Transformer2DOptions& options);
  // x [B, C, H, W], context [B, M, cross_attention_dim] -> [B, C, H, W]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context);

  GroupNorm norm{nullptr};
  // Registered as proj_in / proj_out: Linear with use_linear_projection, else 1x1 Conv2d.
  Linear proj_in_linear{nullptr}, proj_out_linear{nullptr};
  Conv2d proj_in_conv{nullptr}, proj_out_conv{nullptr};
  torch::nn::ModuleList transformer_blocks{nullptr};

 private:
  bool use_linear_projection_;
};
TORCH_MODULE(Transformer2DModel);

}  // namespace likeness::model::unet

#endif  // LIKENESS_WORKER_MODEL_UNET_TRANSFORMER_H_
