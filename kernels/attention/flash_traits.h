// Tile shapes of the attention kernels, one traits type per (head dim, element type). Every
// choice has its reason beside it; kernels read only these constants.
#ifndef LIKENESS_KERNELS_ATTENTION_FLASH_TRAITS_H_
#define LIKENESS_KERNELS_ATTENTION_FLASH_TRAITS_H_

namespace likeness::kernels::flash {

template <int kHeadDimArg, typename ElementArg>
struct FlashTraits {
  using Element = ElementArg;
  static constexpr int kHeadDim = kHeadDimArg;
  static_assert(kHeadDim == 64 || kHeadDim == 128, "head dims are padded to 64 or 128");

  // --- forward ---
  // Each warp owns 16 * kFwdMTiles query rows. K and V fragments come from shared memory once
  // per warp per tile, so rows per warp set the shared-memory traffic per MMA: at 16 rows an
  // sm_90 SM is shared-memory bound (16 KB of K/V reads per 262 kFLOP at d = 64); 32 rows
  // halves it. At d = 128 the O accumulators of 32 rows (128 floats) would spill, so 16 rows
  // and twice the warps keep the block at 128 query rows.
  static constexpr int kFwdMTiles = kHeadDim == 64 ? 2 : 1;
  static constexpr int kFwdWarps = kHeadDim == 64 ? 4 : 8;
  static constexpr int kFwdThreads = kFwdWarps * 32;
  static constexpr int kFwdBlockM = kFwdWarps * 16 * kFwdMTiles;  // 128 query rows
  // 64 keys per step: S is 8 accumulator tiles per m-tile; larger steps raise registers
  // without cutting traffic (each K/V element is read once per block either way).
  static constexpr int kFwdBlockN = 64;

  // --- backward ---
  // A block owns kBwdBlockN keys (16 per warp: the dK/dV accumulators stay in registers for the
  // whole pass over the queries) and walks the queries kBwdBlockM at a time. dQ goes out with
  // float atomics into a zeroed buffer, as in FlashAttention-2.
  static constexpr int kBwdWarps = 4;
  static constexpr int kBwdThreads = kBwdWarps * 32;
  static constexpr int kBwdBlockN = kBwdWarps * 16;  // 64 keys
  static constexpr int kBwdBlockM = 64;              // queries per step
  // At d = 64 the pass needs ~171 registers a thread: capping at 168 (65536 / (3 * 128)) fits
  // three blocks per SM instead of two, more warps to hide the load and atomic latency.
  static constexpr int kBwdMinBlocksPerSm = kHeadDim == 64 ? 3 : 1;
  // dQ = dS K is computed kBwdDqChunk output columns at a time to bound its accumulators.
  static constexpr int kBwdDqChunk = 64;

  // Shared tiles are padded by one 16-byte vector per row: ldmatrix reads 8 rows of 16 bytes,
  // and a row pitch of (d + 8) * 2 bytes = 16 mod 128 puts them in 8 distinct bank groups.
  static constexpr int kPad = 8;
  static constexpr int kLd = kHeadDim + kPad;
  static constexpr int kLdS = kBwdBlockM + kPad;  // the dS^T tile [keys][queries]
  static constexpr int kChunksPerRow = kHeadDim / 8;  // 16-byte cp.async chunks

  // Forward: Q tile plus two stages of K and V (the next tile loads during this one's MMAs).
  static constexpr int kFwdSmemElements = kFwdBlockM * kLd + 2 * 2 * kFwdBlockN * kLd;
  static constexpr int kFwdSmemBytes = kFwdSmemElements * 2;
  // Backward: K, V, two stages of Q and dO, dS^T, and the step's LSE and delta.
  static constexpr int kBwdSmemElements =
      kBwdBlockN * kLd * 2 + 2 * kBwdBlockM * kLd * 2 + kBwdBlockN * kLdS;
  static constexpr int kBwdSmemBytes = kBwdSmemElements * 2 + 2 * kBwdBlockM * 4;
};

}  // namespace likeness::kernels::flash

#endif  // LIKENESS_KERNELS_ATTENTION_FLASH_TRAITS_H_
