// A CPU model of the fused attention kernels' algorithm (issue 8's proof without a GPU): the
// same blocking, the same online softmax in base 2 with the scale folded in, the same saved
// logsumexp, and the backward's recomputation of P from it with delta = rowsum(dO * O) and dQ
// accumulated across key blocks. Tests check it against plain attention in float64 on ragged
// shapes; the GPU tests then check the kernels against plain attention too, so the algorithm
// and its CUDA form are each proven once.
//
// One head at a time, row-major contiguous [rows, head_dim] arrays.
#ifndef LIKENESS_KERNELS_ATTENTION_FLASH_REFERENCE_H_
#define LIKENESS_KERNELS_ATTENTION_FLASH_REFERENCE_H_

#include <cstdint>

namespace likeness::kernels::flash {

// The kernels' tile sizes (flash_traits.h at head dim 64); tests also run other sizes to show
// the result does not depend on them.
struct ReferenceBlocks {
  int64_t forward_rows = 128;
  int64_t forward_keys = 64;
  int64_t backward_keys = 64;
  int64_t backward_rows = 64;
};

struct ReferenceShape {
  int64_t seqlen_q = 0;
  int64_t seqlen_k = 0;
  int64_t head_dim = 0;
};

// out [Nq, d], lse [Nq] (natural log of sum_j exp(scale * q_i . k_j)).
template <typename T>
void FlashForwardReference(const T* q, const T* k, const T* v, const ReferenceShape& shape, T scale,
                           const ReferenceBlocks& blocks, T* out, T* lse);

// dq [Nq, d], dk and dv [Nk, d], from the forward's out and lse and the incoming dout.
template <typename T>
void FlashBackwardReference(const T* q, const T* k, const T* v, const T* out, const T* dout, const T* lse,
                            const ReferenceShape& shape, T scale, const ReferenceBlocks& blocks, T* dq, T* dk,
                            T* dv);

}  // namespace likeness::kernels::flash

#endif  // LIKENESS_KERNELS_ATTENTION_FLASH_REFERENCE_H_
