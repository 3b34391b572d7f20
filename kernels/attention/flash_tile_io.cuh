// Global <-> shared tile movement shared by the forward and backward kernels.
#ifndef LIKENESS_KERNELS_ATTENTION_FLASH_TILE_IO_CUH_
#define LIKENESS_KERNELS_ATTENTION_FLASH_TILE_IO_CUH_

#include "kernels/attention/flash_mma.cuh"

namespace likeness::kernels::flash {

// Starts the asynchronous copy of rows [row0, row0 + kRows) x [0, kHeadDim) of one head into a
// padded shared tile. Rows past `rows` and columns past `head_dim` are zero-filled, so ragged
// edges and padded head dims contribute nothing to the products.
template <typename Traits, int kRows, int kThreads>
__device__ __forceinline__ void LoadTileAsync(typename Traits::Element* tile,
                                              const typename Traits::Element* head_base,
                                              int64_t row_stride, int row0, int rows, int head_dim) {
  constexpr int kChunks = kRows * Traits::kChunksPerRow;
  for (int c = threadIdx.x; c < kChunks; c += kThreads) {
    const int r = c / Traits::kChunksPerRow;
    const int col = (c % Traits::kChunksPerRow) * 8;
    const bool valid = row0 + r < rows && col < head_dim;
    const typename Traits::Element* source = valid ? head_base + (row0 + r) * row_stride + col : head_base;
    CpAsync16(tile + r * Traits::kLd + col, source, valid);
  }
}

}  // namespace likeness::kernels::flash

#endif  // LIKENESS_KERNELS_ATTENTION_FLASH_TILE_IO_CUH_
