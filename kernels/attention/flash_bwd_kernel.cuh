// The backward kernel: FlashAttention-2's key-parallel pass. A block owns kBwdBlockN keys of
// one (batch, head) and walks every query block; per step it recomputes S^T = K Q^T and
// P^T = exp(S^T * scale - lse) from the forward's logsumexp (nothing N x N is stored), then
//   dV  += P^T dO                      (registers, per warp's 16 keys)
//   dP^T = V dO^T,  dS^T = P^T (dP^T - delta)
//   dK  += dS^T Q                      (registers; * scale at the end)
//   dQ  += dS K * scale                (dS^T through shared memory, float atomics to global)
// with delta = rowsum(dO * O) computed beforehand.
#ifndef LIKENESS_KERNELS_ATTENTION_FLASH_BWD_KERNEL_CUH_
#define LIKENESS_KERNELS_ATTENTION_FLASH_BWD_KERNEL_CUH_

#include <cuda_runtime.h>

#include <string>

#include "kernels/attention/flash_fwd_kernel.cuh"
#include "kernels/attention/flash_mma.cuh"
#include "kernels/attention/flash_params.h"
#include "kernels/attention/flash_tile_io.cuh"
#include "kernels/attention/flash_traits.h"

namespace likeness::kernels::flash {

// Two adjacent floats (8-byte aligned: even column, rows a multiple of 8 floats apart). Hopper
// has a vector reduction, one L2 operation for both; older GPUs take two.
__device__ __forceinline__ void AtomicAddPair(float* address, float lo, float hi) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  atomicAdd(reinterpret_cast<float2*>(address), make_float2(lo, hi));
#else
  atomicAdd(address, lo);
  atomicAdd(address + 1, hi);
#endif
}

template <typename Traits>
__global__ void __launch_bounds__(Traits::kBwdThreads, Traits::kBwdMinBlocksPerSm)
    FlashBackwardKernel(const FlashBackwardParams p) {
  using T = typename Traits::Element;
  constexpr int kD = Traits::kHeadDim;
  constexpr int kBlockM = Traits::kBwdBlockM;  // queries per step
  constexpr int kBlockN = Traits::kBwdBlockN;  // keys per block
  constexpr int kQTiles = kBlockM / 8;         // n-tiles of S^T (query columns)
  constexpr int kDTiles = kD / 8;
  constexpr int kLd = Traits::kLd;
  constexpr int kLdS = Traits::kLdS;
  constexpr int kThreads = Traits::kBwdThreads;

  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* s_k = reinterpret_cast<T*>(smem_raw);
  T* s_v = s_k + kBlockN * kLd;
  // Q and dO are double-buffered: step i + 1's tiles load while step i multiplies.
  T* s_qdo = s_v + kBlockN * kLd;  // [stage][Q, dO][kBlockM][kLd]
  auto s_q_at = [&](int stage) { return s_qdo + (stage * 2 + 0) * kBlockM * kLd; };
  auto s_do_at = [&](int stage) { return s_qdo + (stage * 2 + 1) * kBlockM * kLd; };
  T* s_ds = s_qdo + 4 * kBlockM * kLd;  // dS^T [keys][queries]
  float* s_lse = reinterpret_cast<float*>(s_ds + kBlockN * kLdS);
  float* s_delta = s_lse + kBlockM;

  const int n_block = blockIdx.x;
  const int bh = blockIdx.y;
  const int b = bh / p.heads;
  const int h = bh % p.heads;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int g = lane >> 2;
  const int t = lane & 3;
  const int key0 = n_block * kBlockN;
  const int warp_key0 = warp * 16;

  const T* q = static_cast<const T*>(p.q) + b * p.q_strides.batch + h * p.q_strides.head;
  const T* k = static_cast<const T*>(p.k) + b * p.k_strides.batch + h * p.k_strides.head;
  const T* v = static_cast<const T*>(p.v) + b * p.v_strides.batch + h * p.v_strides.head;
  const T* dout = static_cast<const T*>(p.dout) + b * p.dout_strides.batch + h * p.dout_strides.head;
  float* dq = p.dq_accum + b * p.dq_accum_strides.batch + h * p.dq_accum_strides.head;
  const float* lse = p.lse + static_cast<int64_t>(bh) * p.seqlen_q;
  const float* delta = p.delta + static_cast<int64_t>(bh) * p.seqlen_q;

  LoadTileAsync<Traits, kBlockN, kThreads>(s_k, k, p.k_strides.row, key0, p.seqlen_k, p.head_dim);
  LoadTileAsync<Traits, kBlockN, kThreads>(s_v, v, p.v_strides.row, key0, p.seqlen_k, p.head_dim);

  const float scale_log2 = p.scale * kLog2e;
  float acc_dk[kDTiles][4];
  float acc_dv[kDTiles][4];
#pragma unroll
  for (int dt = 0; dt < kDTiles; ++dt) {
#pragma unroll
    for (int i = 0; i < 4; ++i) acc_dk[dt][i] = acc_dv[dt][i] = 0.f;
  }
  // Keys of this lane's accumulator rows; rows past the end get P = 0.
  const bool key_valid[2] = {key0 + warp_key0 + g < p.seqlen_k, key0 + warp_key0 + g + 8 < p.seqlen_k};

  const int m_blocks = (p.seqlen_q + kBlockM - 1) / kBlockM;
  // Every key block of a head adds into the same dQ rows. Starting each one at a different
  // query block spreads those atomics over the rows instead of all blocks hammering the same
  // 64 rows at once.
  const int first_block = n_block % m_blocks;
  const auto query_block = [&](int step) {
    const int block = first_block + step;
    return block < m_blocks ? block : block - m_blocks;
  };
  LoadTileAsync<Traits, kBlockM, kThreads>(s_q_at(0), q, p.q_strides.row, query_block(0) * kBlockM, p.seqlen_q,
                                           p.head_dim);
  LoadTileAsync<Traits, kBlockM, kThreads>(s_do_at(0), dout, p.dout_strides.row, query_block(0) * kBlockM,
                                           p.seqlen_q, p.head_dim);
  CpAsyncCommit();
  for (int i = 0; i < m_blocks; ++i) {
    const int query0 = query_block(i) * kBlockM;
    const T* s_q = s_q_at(i & 1);
    const T* s_do = s_do_at(i & 1);
    if (i + 1 < m_blocks) {
      const int next0 = query_block(i + 1) * kBlockM;
      LoadTileAsync<Traits, kBlockM, kThreads>(s_q_at((i + 1) & 1), q, p.q_strides.row, next0, p.seqlen_q,
                                               p.head_dim);
      LoadTileAsync<Traits, kBlockM, kThreads>(s_do_at((i + 1) & 1), dout, p.dout_strides.row, next0, p.seqlen_q,
                                               p.head_dim);
    }
    CpAsyncCommit();  // possibly empty: the wait below then always leaves exactly the prefetch
    for (int r = threadIdx.x; r < kBlockM; r += kThreads) {
      const bool valid = query0 + r < p.seqlen_q;
      // lse in base 2 for exp2f; INFINITY makes P = 0 for queries past the end.
      s_lse[r] = valid ? lse[query0 + r] * kLog2e : INFINITY;
      s_delta[r] = valid ? delta[query0 + r] : 0.f;
    }
    CpAsyncWait<1>();
    __syncthreads();

    // S^T = K Q^T: this warp's 16 keys x the step's 64 queries.
    float acc_s[kQTiles][4];
    float acc_dp[kQTiles][4];
#pragma unroll
    for (int nt = 0; nt < kQTiles; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) acc_s[nt][e] = acc_dp[nt][e] = 0.f;
    }
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      uint32_t ka[4], va[4];
      LdMatrixX4(ka, ARowMajor(s_k, kLd, warp_key0, kk * 16, lane));
      LdMatrixX4(va, ARowMajor(s_v, kLd, warp_key0, kk * 16, lane));
#pragma unroll
      for (int np = 0; np < kQTiles / 2; ++np) {
        uint32_t qb[4], dob[4];
        LdMatrixX4(qb, BNMajor(s_q, kLd, np * 16, kk * 16, lane));
        LdMatrixX4(dob, BNMajor(s_do, kLd, np * 16, kk * 16, lane));
        Mma16816<T>(acc_s[2 * np], ka, qb[0], qb[1]);
        Mma16816<T>(acc_s[2 * np + 1], ka, qb[2], qb[3]);
        // dP^T = V dO^T shares the loop: same shapes, same k dimension.
        Mma16816<T>(acc_dp[2 * np], va, dob[0], dob[1]);
        Mma16816<T>(acc_dp[2 * np + 1], va, dob[2], dob[3]);
      }
    }

    // P^T and dS^T in place: acc_s becomes P^T, acc_dp becomes dS^T.
#pragma unroll
    for (int nt = 0; nt < kQTiles; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int col = nt * 8 + 2 * t + (e & 1);
        const bool valid = key_valid[e >> 1];
        const float prob = valid ? exp2f(acc_s[nt][e] * scale_log2 - s_lse[col]) : 0.f;
        acc_s[nt][e] = prob;
        acc_dp[nt][e] = prob * (acc_dp[nt][e] - s_delta[col]);
      }
    }

    // dV += P^T dO and dK += dS^T Q (A from the accumulators, B from [query][d] tiles).
#pragma unroll
    for (int kk = 0; kk < kBlockM / 16; ++kk) {
      uint32_t pa[4], dsa[4];
      AccumulatorsToA<T>(pa, acc_s[2 * kk], acc_s[2 * kk + 1]);
      AccumulatorsToA<T>(dsa, acc_dp[2 * kk], acc_dp[2 * kk + 1]);
#pragma unroll
      for (int dp = 0; dp < kDTiles / 2; ++dp) {
        uint32_t dob[4], qb[4];
        LdMatrixX4Trans(dob, BKMajor(s_do, kLd, dp * 16, kk * 16, lane));
        LdMatrixX4Trans(qb, BKMajor(s_q, kLd, dp * 16, kk * 16, lane));
        Mma16816<T>(acc_dv[2 * dp], pa, dob[0], dob[1]);
        Mma16816<T>(acc_dv[2 * dp + 1], pa, dob[2], dob[3]);
        Mma16816<T>(acc_dk[2 * dp], dsa, qb[0], qb[1]);
        Mma16816<T>(acc_dk[2 * dp + 1], dsa, qb[2], qb[3]);
      }
    }

    // dS^T to shared memory, so each warp can take 16 query rows of dQ = dS K.
#pragma unroll
    for (int nt = 0; nt < kQTiles; ++nt) {
      const int col = nt * 8 + 2 * t;
      *reinterpret_cast<uint32_t*>(s_ds + (warp_key0 + g) * kLdS + col) = PackPair<T>(acc_dp[nt][0], acc_dp[nt][1]);
      *reinterpret_cast<uint32_t*>(s_ds + (warp_key0 + g + 8) * kLdS + col) =
          PackPair<T>(acc_dp[nt][2], acc_dp[nt][3]);
    }
    __syncthreads();

    const int warp_query0 = warp * 16;  // kBlockM / kBwdWarps == 16
#pragma unroll
    for (int chunk = 0; chunk < kD; chunk += Traits::kBwdDqChunk) {
      constexpr int kChunkTiles = Traits::kBwdDqChunk / 8;
      float acc_dq[kChunkTiles][4];
#pragma unroll
      for (int dt = 0; dt < kChunkTiles; ++dt) acc_dq[dt][0] = acc_dq[dt][1] = acc_dq[dt][2] = acc_dq[dt][3] = 0.f;
#pragma unroll
      for (int kk = 0; kk < kBlockN / 16; ++kk) {
        uint32_t dsa[4];
        LdMatrixX4Trans(dsa, AColMajor(s_ds, kLdS, warp_query0, kk * 16, lane));
#pragma unroll
        for (int dp = 0; dp < kChunkTiles / 2; ++dp) {
          uint32_t kb[4];
          LdMatrixX4Trans(kb, BKMajor(s_k, kLd, chunk + dp * 16, kk * 16, lane));
          Mma16816<T>(acc_dq[2 * dp], dsa, kb[0], kb[1]);
          Mma16816<T>(acc_dq[2 * dp + 1], dsa, kb[2], kb[3]);
        }
      }
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int row = query0 + warp_query0 + g + 8 * half;
        if (row >= p.seqlen_q) continue;
        float* dq_row = dq + row * p.dq_accum_strides.row;
#pragma unroll
        for (int dt = 0; dt < kChunkTiles; ++dt) {
          const int col = chunk + dt * 8 + 2 * t;
          if (col < p.head_dim) {
            AtomicAddPair(dq_row + col, acc_dq[dt][2 * half] * p.scale, acc_dq[dt][2 * half + 1] * p.scale);
          }
        }
      }
    }
    __syncthreads();  // the next step overwrites s_ds, s_lse, s_delta and prefetches into this stage
  }

  T* dk = static_cast<T*>(p.dk) + b * p.dk_strides.batch + h * p.dk_strides.head;
  T* dv = static_cast<T*>(p.dv) + b * p.dv_strides.batch + h * p.dv_strides.head;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int key = key0 + warp_key0 + g + 8 * half;
    if (key >= p.seqlen_k) continue;
#pragma unroll
    for (int dt = 0; dt < kDTiles; ++dt) {
      const int col = dt * 8 + 2 * t;
      if (col >= p.head_dim) continue;
      *reinterpret_cast<uint32_t*>(dk + key * p.dk_strides.row + col) =
          PackPair<T>(acc_dk[dt][2 * half] * p.scale, acc_dk[dt][2 * half + 1] * p.scale);
      *reinterpret_cast<uint32_t*>(dv + key * p.dv_strides.row + col) =
          PackPair<T>(acc_dv[dt][2 * half], acc_dv[dt][2 * half + 1]);
    }
  }
}

template <typename Traits>
std::string RunFlashBackward(const FlashBackwardParams& params, cudaStream_t stream) {
  const auto kernel = FlashBackwardKernel<Traits>;
  cudaError_t error = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           Traits::kBwdSmemBytes);
  if (error != cudaSuccess) return std::string("flash backward: cudaFuncSetAttribute: ") + cudaGetErrorString(error);
  const dim3 grid((params.seqlen_k + Traits::kBwdBlockN - 1) / Traits::kBwdBlockN, params.batch * params.heads);
  kernel<<<grid, Traits::kBwdThreads, Traits::kBwdSmemBytes, stream>>>(params);
  error = cudaGetLastError();
  if (error != cudaSuccess) return std::string("flash backward: launch: ") + cudaGetErrorString(error);
  return "";
}

}  // namespace likeness::kernels::flash

#endif  // LIKENESS_KERNELS_ATTENTION_FLASH_BWD_KERNEL_CUH_
