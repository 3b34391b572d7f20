// The fused attention kernels (kernels/attention) as a libtorch op with autograd: forward saves
// the logsumexp, backward recomputes P from it. Attention() (attention.h) calls this for CUDA
// tensors FlashAttentionUnsupported() accepts.
#ifndef LIKENESS_WORKER_MODEL_FLASH_ATTENTION_H_
#define LIKENESS_WORKER_MODEL_FLASH_ATTENTION_H_

#include <torch/torch.h>

#include <string>

namespace likeness::model {

// Empty when the fused kernels take these tensors: CUDA, bf16 or fp16 alike, [B, H, N, d] with
// d contiguous, d a multiple of 8 up to 128, strides multiples of 8, 16-byte aligned, an
// sm_80+ device and a build with the kernels. Otherwise why not, for logs and errors.
std::string FlashAttentionUnsupported(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

// softmax(scale * q k^T) v with gradients for q, k and v. The result is [B, H, Nq, d] viewed
// over [B, Nq, H, d] memory, so the usual transpose(1, 2).reshape back to [B, Nq, H*d] is free.
torch::Tensor FlashAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale);

// The raw forward: {out, lse [B, H, Nq] float32}. For tests and benchmarks.
std::tuple<torch::Tensor, torch::Tensor> FlashAttentionForward(const torch::Tensor& q, const torch::Tensor& k,
                                                               const torch::Tensor& v, double scale);

}  // namespace likeness::model

#endif  // LIKENESS_WORKER_MODEL_FLASH_ATTENTION_H_
