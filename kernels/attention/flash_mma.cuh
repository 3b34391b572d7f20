// Warp-level building blocks of the attention kernels: the m16n8k16 tensor-core MMA (sm_80+,
// also the portable path on sm_90a), ldmatrix fragment loads, cp.async and packing.
//
// Fragment layouts of mma.m16n8k16 (lane = 4 * g + t):
//   A (16x16, row-major): a0 = A[g][2t..2t+1], a1 = A[g+8][2t..], a2 = A[g][2t+8..], a3 = A[g+8][2t+8..]
//   B (16x8, k x n):      b0 = B[2t..2t+1][g], b1 = B[2t+8..][g]
//   C (16x8, float):      c0,c1 = C[g][2t..2t+1], c2,c3 = C[g+8][2t..2t+1]
// A C tile pair (16 x 16) repacked to half precision is exactly an A fragment, which is how
// P = softmax(S) feeds the next product without a trip through shared memory.
#ifndef LIKENESS_KERNELS_ATTENTION_FLASH_MMA_CUH_
#define LIKENESS_KERNELS_ATTENTION_FLASH_MMA_CUH_

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace likeness::kernels::flash {

template <typename T>
__device__ __forceinline__ void Mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);

template <>
__device__ __forceinline__ void Mma16816<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                                       uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <>
__device__ __forceinline__ void Mma16816<__half>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t SharedAddress(const void* pointer) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(pointer));
}

// Four 8x8 b16 matrices; lane l supplies the row address of matrix l / 8, row l % 8.
__device__ __forceinline__ void LdMatrixX4(uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(SharedAddress(row)));
}

__device__ __forceinline__ void LdMatrixX4Trans(uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(SharedAddress(row)));
}

// 16 bytes global -> shared without staging in registers; zero-filled when !valid (ragged
// tile edges and head-dim padding), and then `global` is never read.
__device__ __forceinline__ void CpAsync16(void* shared, const void* global, bool valid) {
  const int source_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(SharedAddress(shared)),
               "l"(global), "r"(source_bytes));
}

__device__ __forceinline__ void CpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::); }

template <int kPending>
__device__ __forceinline__ void CpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

template <typename T>
__device__ __forceinline__ uint32_t PackPair(float lo, float hi);

template <>
__device__ __forceinline__ uint32_t PackPair<__nv_bfloat16>(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

template <>
__device__ __forceinline__ uint32_t PackPair<__half>(float lo, float hi) {
  __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

// A fragment of a 16x16 block out of the float accumulators of two adjacent 16x8 C tiles.
template <typename T>
__device__ __forceinline__ void AccumulatorsToA(uint32_t (&a)[4], const float (&left)[4], const float (&right)[4]) {
  a[0] = PackPair<T>(left[0], left[1]);
  a[1] = PackPair<T>(left[2], left[3]);
  a[2] = PackPair<T>(right[0], right[1]);
  a[3] = PackPair<T>(right[2], right[3]);
}

// The lane's row address for an A fragment (16 rows x 16 k) of a row-major shared tile.
template <typename T>
__device__ __forceinline__ const T* ARowMajor(const T* tile, int ld, int m0, int k0, int lane) {
  return tile + (m0 + (lane & 15)) * ld + k0 + (lane >> 4) * 8;
}
// ... of a tile stored transposed (stored[k][m] = A[m][k]); load with LdMatrixX4Trans.
template <typename T>
__device__ __forceinline__ const T* AColMajor(const T* tile, int ld, int m0, int k0, int lane) {
  const int matrix = lane >> 3;
  return tile + (k0 + (lane & 7) + (matrix >> 1) * 8) * ld + m0 + (matrix & 1) * 8;
}
// B fragments of two adjacent n-tiles (n0..n0+15, k0..k0+15), r = {b0, b1} of the first tile
// then {b0, b1} of the second. Stored [n][k] (k contiguous): LdMatrixX4.
template <typename T>
__device__ __forceinline__ const T* BNMajor(const T* tile, int ld, int n0, int k0, int lane) {
  const int matrix = lane >> 3;
  return tile + (n0 + (lane & 7) + (matrix >> 1) * 8) * ld + k0 + (matrix & 1) * 8;
}
// Stored [k][n] (n contiguous): LdMatrixX4Trans.
template <typename T>
__device__ __forceinline__ const T* BKMajor(const T* tile, int ld, int n0, int k0, int lane) {
  const int matrix = lane >> 3;
  return tile + (k0 + (lane & 7) + (matrix & 1) * 8) * ld + n0 + (matrix >> 1) * 8;
}

// Quad (4 lanes sharing a row) reductions.
__device__ __forceinline__ float QuadMax(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float QuadSum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

}  // namespace likeness::kernels::flash

#endif  // LIKENESS_KERNELS_ATTENTION_FLASH_MMA_CUH_
