#include "worker/model/unet/transformer.h"

#include "worker/model/attention.h"
#include "worker/model/unet/activation_checkpoint.h"

namespace likeness::model::unet {
namespace {

constexpr int64_t kFeedForwardMult = 4;
constexpr double kTransformerLayerNormEps = 1e-5;    // BasicTransformerBlock's norm_eps
constexpr double kTransformer2DGroupNormEps = 1e-6;  // Transformer2DModel's GroupNorm

}  // namespace

CrossAttentionImpl::CrossAttentionImpl(int64_t query_dim, int64_t context_dim, int64_t heads,
                                       int64_t head_dim, bool upcast)
    : heads_(heads), head_dim_(head_dim), upcast_(upcast) {
  const int64_t inner = heads * head_dim;
  const int64_t kv_dim = context_dim > 0 ? context_dim : query_dim;
  to_q = register_module("to_q", Linear(query_dim, inner, /*bias=*/false));
  to_k = register_module("to_k", Linear(kv_dim, inner, /*bias=*/false));
  to_v = register_module("to_v", Linear(kv_dim, inner, /*bias=*/false));
  out_proj = Linear(inner, query_dim);
  to_out = register_module("to_out", torch::nn::ModuleList(out_proj, torch::nn::Identity()));
}

torch::Tensor CrossAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  const torch::Tensor& kv = context.defined() ? context : x;
  const int64_t batch = x.size(0);
  // [B, N, heads*d] -> [B, N, heads, d] -> [B, heads, N, d]
  const auto split_heads = [&](const torch::Tensor& t) {
    return t.view({batch, t.size(1), heads_, head_dim_}).transpose(1, 2);
  };
  AttentionOptions options;
  options.upcast = upcast_;
  torch::Tensor out =
      Attention(split_heads(to_q(x)), split_heads(to_k(kv)), split_heads(to_v(kv)), options);
  // [B, heads, N, d] -> [B, N, heads, d] -> [B, N, heads*d]
  out = out.transpose(1, 2).reshape({batch, x.size(1), heads_ * head_dim_});
  return out_proj(out);
}

GegluImpl::GegluImpl(int64_t dim_in, int64_t dim_out) {
  proj = register_module("proj", Linear(dim_in, 2 * dim_out));
}

torch::Tensor GegluImpl::forward(const torch::Tensor& x) {
  // [..., 2*out] -> 2 x [..., out]
  std::vector<torch::Tensor> parts = proj(x).chunk(2, -1);
  return parts[0] * torch::gelu(parts[1]);
}

FeedForwardImpl::FeedForwardImpl(int64_t dim) {
  const int64_t inner = dim * kFeedForwardMult;
  geglu = Geglu(dim, inner);
  out = Linear(inner, dim);
  net = register_module("net", torch::nn::ModuleList(geglu, torch::nn::Identity(), out));
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) { return out(geglu(x)); }

BasicTransformerBlockImpl::BasicTransformerBlockImpl(int64_t dim, int64_t heads, int64_t head_dim,
                                                     int64_t cross_attention_dim, bool upcast) {
  norm1 = register_module("norm1", LayerNorm(dim, kTransformerLayerNormEps));
  attn1 = register_module("attn1", CrossAttention(dim, /*context_dim=*/0, heads, head_dim, upcast));
  norm2 = register_module("norm2", LayerNorm(dim, kTransformerLayerNormEps));
  attn2 =
      register_module("attn2", CrossAttention(dim, cross_attention_dim, heads, head_dim, upcast));
  norm3 = register_module("norm3", LayerNorm(dim, kTransformerLayerNormEps));
  ff = register_module("ff", FeedForward(dim));
}

torch::Tensor BasicTransformerBlockImpl::forward(const torch::Tensor& x,
                                                 const torch::Tensor& context) {
  if (!gradient_checkpointing) return Compute(x, context);
  return CheckpointedCall(*this, {x, context}, [this](const std::vector<torch::Tensor>& in) {
    return Compute(in[0], in[1]);
  });
}

torch::Tensor BasicTransformerBlockImpl::Compute(const torch::Tensor& x,
                                                 const torch::Tensor& context) {
  torch::Tensor h = attn1(norm1(x)) + x;
  h = attn2(norm2(h), context) + h;
  return ff(norm3(h)) + h;
}

Transformer2DModelImpl::Transformer2DModelImpl(int64_t channels,
                                               const Transformer2DOptions& options)
    : use_linear_projection_(options.use_linear_projection) {
  const int64_t head_dim = channels / options.heads;
  const int64_t inner = options.heads * head_dim;
  norm =
      register_module("norm", GroupNorm(options.norm_groups, channels, kTransformer2DGroupNormEps));
  if (use_linear_projection_) {
    proj_in_linear = register_module("proj_in", Linear(channels, inner));
  } else {
    proj_in_conv = register_module("proj_in", Conv2d(channels, inner, 1));
  }
  transformer_blocks = register_module("transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.num_layers; ++i) {
    transformer_blocks->push_back(BasicTransformerBlock(
        inner, options.heads, head_dim, options.cross_attention_dim, options.upcast_attention));
  }
  if (use_linear_projection_) {
    proj_out_linear = register_module("proj_out", Linear(inner, channels));
  } else {
    proj_out_conv = register_module("proj_out", Conv2d(inner, channels, 1));
  }
}

torch::Tensor Transformer2DModelImpl::forward(const torch::Tensor& x,
                                              const torch::Tensor& context) {
  const int64_t batch = x.size(0), height = x.size(2), width = x.size(3);
  torch::Tensor h = norm(x);
  if (!use_linear_projection_) h = proj_in_conv(h);
  const int64_t inner = h.size(1);
  // [B, C, H, W] -> [B, H, W, C] -> [B, H*W, C]
  h = h.permute({0, 2, 3, 1}).reshape({batch, height * width, inner});
  if (use_linear_projection_) h = proj_in_linear(h);
  for (const auto& block : *transformer_blocks)
    h = block->as<BasicTransformerBlockImpl>()->forward(h, context);
  if (use_linear_projection_) h = proj_out_linear(h);
  const int64_t out_channels = h.size(2);
  // [B, H*W, C] -> [B, H, W, C] -> [B, C, H, W]
  h = h.reshape({batch, height, width, out_channels}).permute({0, 3, 1, 2}).contiguous();
  if (!use_linear_projection_) h = proj_out_conv(h);
  return h + x;
}

}  // namespace likeness::model::unet
