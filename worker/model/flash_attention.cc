#include "worker/model/flash_attention.h"

#include <string>
#include <tuple>

#include "kernels/attention/flash_params.h"

#if LIKENESS_TORCH_HAS_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#endif

namespace likeness::model {
namespace {

namespace flash = kernels::flash;

// Hopper and Ampere: mma.sync m16n8k16 in bf16 needs compute capability 8.0.
constexpr int kMinComputeMajor = 8;

flash::Strides StridesOf(const torch::Tensor& t) { return {t.stride(0), t.stride(1), t.stride(2)}; }

// [B, H, N, d] over [B, N, H, d] memory: what the modules' transpose-and-reshape wants.
torch::Tensor EmptyHeadsLast(const torch::Tensor& like, int64_t rows) {
  return torch::empty({like.size(0), rows, like.size(1), like.size(3)}, like.options()).transpose(1, 2);
}

#if LIKENESS_TORCH_HAS_CUDA
void* CurrentStream() { return at::cuda::getCurrentCUDAStream().stream(); }
int ComputeMajor(const torch::Tensor& t) { return at::cuda::getDeviceProperties(t.get_device())->major; }
#define LIKENESS_CUDA_GUARD(t) const c10::cuda::CUDAGuard device_guard((t).device())
#else
void* CurrentStream() { return nullptr; }
int ComputeMajor(const torch::Tensor&) { return 0; }
#define LIKENESS_CUDA_GUARD(t)
#endif

flash::FlashDtype DtypeOf(const torch::Tensor& t) {
  return t.scalar_type() == torch::kBFloat16 ? flash::FlashDtype::kBFloat16 : flash::FlashDtype::kFloat16;
}

flash::FlashForwardParams ForwardParams(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                        const torch::Tensor& out, float* lse, double scale) {
  flash::FlashForwardParams p;
  p.q = q.data_ptr();
  p.k = k.data_ptr();
  p.v = v.data_ptr();
  p.out = out.data_ptr();
  p.lse = lse;
  p.q_strides = StridesOf(q);
  p.k_strides = StridesOf(k);
  p.v_strides = StridesOf(v);
  p.out_strides = StridesOf(out);
  p.batch = static_cast<int>(q.size(0));
  p.heads = static_cast<int>(q.size(1));
  p.seqlen_q = static_cast<int>(q.size(2));
  p.seqlen_k = static_cast<int>(k.size(2));
  p.head_dim = static_cast<int>(q.size(3));
  p.scale = static_cast<float>(scale);
  p.dtype = DtypeOf(q);
  return p;
}

class FlashAttentionFunction : public torch::autograd::Function<FlashAttentionFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q,
                               const torch::Tensor& k, const torch::Tensor& v, double scale) {
    auto [out, lse] = FlashAttentionForward(q, k, v, scale);
    ctx->save_for_backward({q, k, v, out, lse});
    ctx->saved_data["scale"] = scale;
    return out;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& q = saved[0];
    const torch::Tensor& k = saved[1];
    const torch::Tensor& v = saved[2];
    const torch::Tensor& out = saved[3];
    const torch::Tensor& lse = saved[4];
    const double scale = ctx->saved_data["scale"].toDouble();
    torch::Tensor dout = grads[0];
    // Gradients of a sum or a mean arrive expanded (stride 0) or transposed: the kernel wants d
    // contiguous and aligned rows.
    if (dout.stride(3) != 1 || dout.stride(2) % flash::kFlashElementsPerLoad != 0 ||
        dout.stride(1) % flash::kFlashElementsPerLoad != 0 || dout.stride(0) % flash::kFlashElementsPerLoad != 0) {
      dout = dout.contiguous();
    }
    dout = dout.to(q.scalar_type());
    LIKENESS_CUDA_GUARD(q);
    const torch::Tensor delta = (dout.to(torch::kFloat32) * out.to(torch::kFloat32)).sum(-1).contiguous();
    torch::Tensor dq_accum = torch::zeros(q.sizes(), q.options().dtype(torch::kFloat32));
    torch::Tensor dk = EmptyHeadsLast(k, k.size(2));
    torch::Tensor dv = EmptyHeadsLast(v, v.size(2));

    flash::FlashBackwardParams p;
    p.q = q.data_ptr();
    p.k = k.data_ptr();
    p.v = v.data_ptr();
    p.dout = dout.data_ptr();
    p.lse = lse.data_ptr<float>();
    p.delta = delta.data_ptr<float>();
    p.dq_accum = dq_accum.data_ptr<float>();
    p.dk = dk.data_ptr();
    p.dv = dv.data_ptr();
    p.q_strides = StridesOf(q);
    p.k_strides = StridesOf(k);
    p.v_strides = StridesOf(v);
    p.dout_strides = StridesOf(dout);
    p.dq_accum_strides = StridesOf(dq_accum);
    p.dk_strides = StridesOf(dk);
    p.dv_strides = StridesOf(dv);
    p.batch = static_cast<int>(q.size(0));
    p.heads = static_cast<int>(q.size(1));
    p.seqlen_q = static_cast<int>(q.size(2));
    p.seqlen_k = static_cast<int>(k.size(2));
    p.head_dim = static_cast<int>(q.size(3));
    p.scale = static_cast<float>(scale);
    p.dtype = DtypeOf(q);
    const std::string error = flash::FlashBackward(p, CurrentStream());
    TORCH_CHECK(error.empty(), error);
    return {dq_accum.to(q.scalar_type()), dk, dv, torch::Tensor()};
  }
};

}  // namespace

std::string FlashAttentionUnsupported(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  if (!flash::FlashCompiled()) return "built without the CUDA kernels";
  if (!q.is_cuda() || !k.is_cuda() || !v.is_cuda()) return "not CUDA tensors";
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4) return "not [B, H, N, d] tensors";
  const auto dtype = q.scalar_type();
  if ((dtype != torch::kBFloat16 && dtype != torch::kHalf) || k.scalar_type() != dtype || v.scalar_type() != dtype) {
    return "dtype is not bf16 or fp16 throughout";
  }
  if (q.device() != k.device() || q.device() != v.device()) return "tensors on different devices";
  if (k.size(0) != q.size(0) || v.size(0) != q.size(0) || k.size(1) != q.size(1) || v.size(1) != q.size(1) ||
      k.size(3) != q.size(3) || v.size(3) != q.size(3) || v.size(2) != k.size(2)) {
    return "q, k and v shapes disagree";
  }
  if (q.stride(3) != 1 || k.stride(3) != 1 || v.stride(3) != 1) return "head_dim is not contiguous";
  if (ComputeMajor(q) < kMinComputeMajor) return "device older than sm_80";
  // The output is checked as q: allocated aligned and heads-last like it.
  return flash::FlashUnsupportedReason(ForwardParams(q, k, v, q, nullptr, 1.0));
}

std::tuple<torch::Tensor, torch::Tensor> FlashAttentionForward(const torch::Tensor& q, const torch::Tensor& k,
                                                               const torch::Tensor& v, double scale) {
  const std::string unsupported = FlashAttentionUnsupported(q, k, v);
  TORCH_CHECK(unsupported.empty(), "FlashAttention: ", unsupported);
  LIKENESS_CUDA_GUARD(q);
  torch::Tensor out = EmptyHeadsLast(q, q.size(2));
  torch::Tensor lse = torch::empty({q.size(0), q.size(1), q.size(2)}, q.options().dtype(torch::kFloat32));
  const flash::FlashForwardParams p = ForwardParams(q, k, v, out, lse.data_ptr<float>(), scale);
  const std::string error = flash::FlashForward(p, CurrentStream());
  TORCH_CHECK(error.empty(), error);
  return {out, lse};
}

torch::Tensor FlashAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale) {
  return FlashAttentionFunction::apply(q, k, v, scale);
}

}  // namespace likeness::model
