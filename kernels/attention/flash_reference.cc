#include "kernels/attention/flash_reference.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace likeness::kernels::flash {
namespace {

template <typename T>
T Dot(const T* a, const T* b, int64_t n) {
  T sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

template <typename T>
constexpr T kLog2e = static_cast<T>(1.4426950408889634073599246810018921L);
template <typename T>
constexpr T kLn2 = static_cast<T>(0.6931471805599453094172321214581766L);

}  // namespace

template <typename T>
void FlashForwardReference(const T* q, const T* k, const T* v, const ReferenceShape& shape, T scale,
                           const ReferenceBlocks& blocks, T* out, T* lse) {
  const int64_t nq = shape.seqlen_q, nk = shape.seqlen_k, d = shape.head_dim;
  const T scale_log2 = scale * kLog2e<T>;
  std::vector<T> row_max, row_sum, acc, scores;
  for (int64_t m0 = 0; m0 < nq; m0 += blocks.forward_rows) {
    const int64_t m1 = std::min(nq, m0 + blocks.forward_rows);
    const int64_t rows = m1 - m0;
    row_max.assign(rows, -std::numeric_limits<T>::infinity());
    row_sum.assign(rows, 0);
    acc.assign(rows * d, 0);
    for (int64_t n0 = 0; n0 < nk; n0 += blocks.forward_keys) {
      const int64_t n1 = std::min(nk, n0 + blocks.forward_keys);
      scores.assign(n1 - n0, 0);
      for (int64_t r = 0; r < rows; ++r) {
        const T* qi = q + (m0 + r) * d;
        T tile_max = -std::numeric_limits<T>::infinity();
        for (int64_t j = n0; j < n1; ++j) {
          scores[j - n0] = Dot(qi, k + j * d, d);
          tile_max = std::max(tile_max, scores[j - n0]);
        }
        // Base 2 with the scale folded in, as the kernel: exp(scale * s) = 2^(scale * log2e * s).
        const T new_max = std::max(row_max[r], tile_max * scale_log2);
        const T correction = std::exp2(row_max[r] - new_max);
        row_max[r] = new_max;
        T sum = 0;
        T* acc_row = acc.data() + r * d;
        for (int64_t c = 0; c < d; ++c) acc_row[c] *= correction;
        for (int64_t j = n0; j < n1; ++j) {
          const T p = std::exp2(scores[j - n0] * scale_log2 - new_max);
          sum += p;
          const T* vj = v + j * d;
          for (int64_t c = 0; c < d; ++c) acc_row[c] += p * vj[c];
        }
        row_sum[r] = row_sum[r] * correction + sum;
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < d; ++c) out[(m0 + r) * d + c] = acc[r * d + c] / row_sum[r];
      lse[m0 + r] = (row_max[r] + std::log2(row_sum[r])) * kLn2<T>;
    }
  }
}

template <typename T>
void FlashBackwardReference(const T* q, const T* k, const T* v, const T* out, const T* dout, const T* lse,
                            const ReferenceShape& shape, T scale, const ReferenceBlocks& blocks, T* dq, T* dk,
                            T* dv) {
  const int64_t nq = shape.seqlen_q, nk = shape.seqlen_k, d = shape.head_dim;
  const T scale_log2 = scale * kLog2e<T>;
  std::vector<T> delta(nq);
  for (int64_t i = 0; i < nq; ++i) delta[i] = Dot(dout + i * d, out + i * d, d);
  std::fill(dq, dq + nq * d, T(0));
  std::vector<T> dk_acc, dv_acc;
  for (int64_t n0 = 0; n0 < nk; n0 += blocks.backward_keys) {
    const int64_t n1 = std::min(nk, n0 + blocks.backward_keys);
    dk_acc.assign((n1 - n0) * d, 0);
    dv_acc.assign((n1 - n0) * d, 0);
    for (int64_t m0 = 0; m0 < nq; m0 += blocks.backward_rows) {
      const int64_t m1 = std::min(nq, m0 + blocks.backward_rows);
      for (int64_t j = n0; j < n1; ++j) {
        const T* kj = k + j * d;
        const T* vj = v + j * d;
        T* dk_row = dk_acc.data() + (j - n0) * d;
        T* dv_row = dv_acc.data() + (j - n0) * d;
        for (int64_t i = m0; i < m1; ++i) {
          // P recomputed from the saved logsumexp: nothing Nq x Nk was kept.
          const T p = std::exp2(Dot(q + i * d, kj, d) * scale_log2 - lse[i] * kLog2e<T>);
          const T* doi = dout + i * d;
          const T ds = p * (Dot(doi, vj, d) - delta[i]);
          const T* qi = q + i * d;
          T* dqi = dq + i * d;
          for (int64_t c = 0; c < d; ++c) {
            dv_row[c] += p * doi[c];
            dk_row[c] += ds * qi[c];
            dqi[c] += ds * kj[c] * scale;
          }
        }
      }
    }
    for (int64_t j = n0; j < n1; ++j) {
      for (int64_t c = 0; c < d; ++c) {
        dk[j * d + c] = dk_acc[(j - n0) * d + c] * scale;
        dv[j * d + c] = dv_acc[(j - n0) * d + c];
      }
    }
  }
}

template void FlashForwardReference<float>(const float*, const float*, const float*, const ReferenceShape&, float,
                                           const ReferenceBlocks&, float*, float*);
template void FlashForwardReference<double>(const double*, const double*, const double*, const ReferenceShape&,
                                            double, const ReferenceBlocks&, double*, double*);
template void FlashBackwardReference<float>(const float*, const float*, const float*, const float*, const float*,
                                            const float*, const ReferenceShape&, float, const ReferenceBlocks&,
                                            float*, float*, float*);
template void FlashBackwardReference<double>(const double*, const double*, const double*, const double*,
                                             const double*, const double*, const ReferenceShape&, double,
                                             const ReferenceBlocks&, double*, double*, double*);

}  // namespace likeness::kernels::flash
