// The forward kernel: FlashAttention-2's algorithm on mma.sync tensor cores. A block owns
// kFwdBlockM query rows of one (batch, head); it walks the keys kFwdBlockN at a time with the
// next K/V tile loading (cp.async) while the current one is multiplied, keeps the running row
// max and sum (online softmax, base-2 exponentials with the scale folded in), and writes O and
// the row logsumexp the backward pass recomputes P from.
#ifndef LIKENESS_KERNELS_ATTENTION_FLASH_FWD_KERNEL_CUH_
#define LIKENESS_KERNELS_ATTENTION_FLASH_FWD_KERNEL_CUH_

#include <cuda_runtime.h>

#include <cmath>
#include <string>

#include "kernels/attention/flash_mma.cuh"
#include "kernels/attention/flash_params.h"
#include "kernels/attention/flash_tile_io.cuh"
#include "kernels/attention/flash_traits.h"

namespace likeness::kernels::flash {

inline constexpr float kLog2e = 1.4426950408889634f;
inline constexpr float kLn2 = 0.6931471805599453f;

template <typename Traits>
__global__ void __launch_bounds__(Traits::kFwdThreads)
    FlashForwardKernel(const FlashForwardParams p) {
  using T = typename Traits::Element;
  constexpr int kD = Traits::kHeadDim;
  constexpr int kM = Traits::kFwdMTiles;
  constexpr int kBlockM = Traits::kFwdBlockM;
  constexpr int kBlockN = Traits::kFwdBlockN;
  constexpr int kNTiles = kBlockN / 8;
  constexpr int kDTiles = kD / 8;
  constexpr int kLd = Traits::kLd;

  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* s_q = reinterpret_cast<T*>(smem_raw);
  T* s_kv = s_q + kBlockM * kLd;  // [stage][K, V][kBlockN][kLd]
  auto s_k = [&](int stage) { return s_kv + (stage * 2 + 0) * kBlockN * kLd; };
  auto s_v = [&](int stage) { return s_kv + (stage * 2 + 1) * kBlockN * kLd; };

  const int m_block = blockIdx.x;
  const int bh = blockIdx.y;
  const int b = bh / p.heads;
  const int h = bh % p.heads;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int g = lane >> 2;
  const int t = lane & 3;

  const T* q = static_cast<const T*>(p.q) + b * p.q_strides.batch + h * p.q_strides.head;
  const T* k = static_cast<const T*>(p.k) + b * p.k_strides.batch + h * p.k_strides.head;
  const T* v = static_cast<const T*>(p.v) + b * p.v_strides.batch + h * p.v_strides.head;
  const int row0 = m_block * kBlockM;
  const int n_tiles = (p.seqlen_k + kBlockN - 1) / kBlockN;

  LoadTileAsync<Traits, kBlockM, Traits::kFwdThreads>(s_q, q, p.q_strides.row, row0, p.seqlen_q, p.head_dim);
  LoadTileAsync<Traits, kBlockN, Traits::kFwdThreads>(s_k(0), k, p.k_strides.row, 0, p.seqlen_k, p.head_dim);
  LoadTileAsync<Traits, kBlockN, Traits::kFwdThreads>(s_v(0), v, p.v_strides.row, 0, p.seqlen_k, p.head_dim);
  CpAsyncCommit();
  CpAsyncWait<0>();
  __syncthreads();

  // Q stays in registers as A fragments for the whole key loop.
  const int warp_row0 = warp * 16 * kM;
  uint32_t q_frag[kM][kD / 16][4];
#pragma unroll
  for (int mt = 0; mt < kM; ++mt) {
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      LdMatrixX4(q_frag[mt][kk], ARowMajor(s_q, kLd, warp_row0 + mt * 16, kk * 16, lane));
    }
  }

  const float scale_log2 = p.scale * kLog2e;
  float row_max[kM][2];
  float row_sum[kM][2];
  float acc_o[kM][kDTiles][4];
#pragma unroll
  for (int mt = 0; mt < kM; ++mt) {
    row_max[mt][0] = row_max[mt][1] = -INFINITY;
    row_sum[mt][0] = row_sum[mt][1] = 0.f;
#pragma unroll
    for (int dt = 0; dt < kDTiles; ++dt) acc_o[mt][dt][0] = acc_o[mt][dt][1] = acc_o[mt][dt][2] = acc_o[mt][dt][3] = 0.f;
  }

  for (int j = 0; j < n_tiles; ++j) {
    const int stage = j & 1;
    if (j + 1 < n_tiles) {
      LoadTileAsync<Traits, kBlockN, Traits::kFwdThreads>(s_k(stage ^ 1), k, p.k_strides.row, (j + 1) * kBlockN,
                                                          p.seqlen_k, p.head_dim);
      LoadTileAsync<Traits, kBlockN, Traits::kFwdThreads>(s_v(stage ^ 1), v, p.v_strides.row, (j + 1) * kBlockN,
                                                          p.seqlen_k, p.head_dim);
    }
    CpAsyncCommit();

    // S = Q K^T for this warp's rows and the tile's 64 keys.
    float acc_s[kM][kNTiles][4];
#pragma unroll
    for (int mt = 0; mt < kM; ++mt)
#pragma unroll
      for (int nt = 0; nt < kNTiles; ++nt) acc_s[mt][nt][0] = acc_s[mt][nt][1] = acc_s[mt][nt][2] = acc_s[mt][nt][3] = 0.f;
    const T* tile_k = s_k(stage);
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
#pragma unroll
      for (int np = 0; np < kNTiles / 2; ++np) {
        uint32_t kb[4];
        LdMatrixX4(kb, BNMajor(tile_k, kLd, np * 16, kk * 16, lane));
#pragma unroll
        for (int mt = 0; mt < kM; ++mt) {
          Mma16816<T>(acc_s[mt][2 * np], q_frag[mt][kk], kb[0], kb[1]);
          Mma16816<T>(acc_s[mt][2 * np + 1], q_frag[mt][kk], kb[2], kb[3]);
        }
      }
    }

    // Keys past the end (the last tile's zero-filled rows) must not take softmax mass.
    if ((j + 1) * kBlockN > p.seqlen_k) {
#pragma unroll
      for (int nt = 0; nt < kNTiles; ++nt) {
        const int col = j * kBlockN + nt * 8 + 2 * t;
#pragma unroll
        for (int mt = 0; mt < kM; ++mt) {
          if (col >= p.seqlen_k) acc_s[mt][nt][0] = acc_s[mt][nt][2] = -INFINITY;
          if (col + 1 >= p.seqlen_k) acc_s[mt][nt][1] = acc_s[mt][nt][3] = -INFINITY;
        }
      }
    }

    // Online softmax: rows g (half 0) and g + 8 (half 1) of each m-tile.
#pragma unroll
    for (int mt = 0; mt < kM; ++mt) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        float tile_max = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < kNTiles; ++nt) {
          tile_max = fmaxf(tile_max, fmaxf(acc_s[mt][nt][2 * half], acc_s[mt][nt][2 * half + 1]));
        }
        tile_max = QuadMax(tile_max);
        const float new_max = fmaxf(row_max[mt][half], tile_max * scale_log2);
        const float correction = exp2f(row_max[mt][half] - new_max);
        row_max[mt][half] = new_max;
        float sum = 0.f;
#pragma unroll
        for (int nt = 0; nt < kNTiles; ++nt) {
          const float p0 = exp2f(acc_s[mt][nt][2 * half] * scale_log2 - new_max);
          const float p1 = exp2f(acc_s[mt][nt][2 * half + 1] * scale_log2 - new_max);
          acc_s[mt][nt][2 * half] = p0;
          acc_s[mt][nt][2 * half + 1] = p1;
          sum += p0 + p1;
        }
        row_sum[mt][half] = row_sum[mt][half] * correction + sum;
#pragma unroll
        for (int dt = 0; dt < kDTiles; ++dt) {
          acc_o[mt][dt][2 * half] *= correction;
          acc_o[mt][dt][2 * half + 1] *= correction;
        }
      }
    }

    // O += P V, P straight from the accumulators.
    const T* tile_v = s_v(stage);
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      uint32_t p_frag[kM][4];
#pragma unroll
      for (int mt = 0; mt < kM; ++mt) AccumulatorsToA<T>(p_frag[mt], acc_s[mt][2 * kk], acc_s[mt][2 * kk + 1]);
#pragma unroll
      for (int dp = 0; dp < kDTiles / 2; ++dp) {
        uint32_t vb[4];
        LdMatrixX4Trans(vb, BKMajor(tile_v, kLd, dp * 16, kk * 16, lane));
#pragma unroll
        for (int mt = 0; mt < kM; ++mt) {
          Mma16816<T>(acc_o[mt][2 * dp], p_frag[mt], vb[0], vb[1]);
          Mma16816<T>(acc_o[mt][2 * dp + 1], p_frag[mt], vb[2], vb[3]);
        }
      }
    }
    CpAsyncWait<0>();
    __syncthreads();
  }

  T* out = static_cast<T*>(p.out) + b * p.out_strides.batch + h * p.out_strides.head;
  float* lse = p.lse + static_cast<int64_t>(bh) * p.seqlen_q;
#pragma unroll
  for (int mt = 0; mt < kM; ++mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int row = row0 + warp_row0 + mt * 16 + g + 8 * half;
      const float total = QuadSum(row_sum[mt][half]);
      const float inverse = 1.f / total;
      if (row >= p.seqlen_q) continue;
      T* out_row = out + row * p.out_strides.row;
#pragma unroll
      for (int dt = 0; dt < kDTiles; ++dt) {
        const int col = dt * 8 + 2 * t;
        if (col < p.head_dim) {
          *reinterpret_cast<uint32_t*>(out_row + col) =
              PackPair<T>(acc_o[mt][dt][2 * half] * inverse, acc_o[mt][dt][2 * half + 1] * inverse);
        }
      }
      if (t == 0) lse[row] = (row_max[mt][half] + log2f(total)) * kLn2;
    }
  }
}

template <typename Traits>
std::string RunFlashForward(const FlashForwardParams& params, cudaStream_t stream) {
  const auto kernel = FlashForwardKernel<Traits>;
  cudaError_t error = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           Traits::kFwdSmemBytes);
  if (error != cudaSuccess) return std::string("flash forward: cudaFuncSetAttribute: ") + cudaGetErrorString(error);
  const dim3 grid((params.seqlen_q + Traits::kFwdBlockM - 1) / Traits::kFwdBlockM, params.batch * params.heads);
  kernel<<<grid, Traits::kFwdThreads, Traits::kFwdSmemBytes, stream>>>(params);
  error = cudaGetLastError();
  if (error != cudaSuccess) return std::string("flash forward: launch: ") + cudaGetErrorString(error);
  return "";
}

}  // namespace likeness::kernels::flash

#endif  // LIKENESS_KERNELS_ATTENTION_FLASH_FWD_KERNEL_CUH_
