// Decoding of the two 8-bit float formats safetensors stores (F8_E4M3 and F8_E5M2, as defined in
// "FP8 Formats for Deep Learning", arXiv:2209.05433). libtorch 1.13 has no float8 dtype, so the
// reader widens such tensors to float32 with these tables; torch-free so they can be tested alone.
//   E4M3 ("fn"): bias 7, no infinities, 0x7F/0xFF are NaN, largest finite 448.
//   E5M2: bias 15, IEEE-like: exponent 31 with mantissa 0 is +-inf, otherwise NaN; max 57344.
#ifndef LIKENESS_COMMON_SAFETENSORS_FLOAT8_H_
#define LIKENESS_COMMON_SAFETENSORS_FLOAT8_H_

#include <cstddef>
#include <cstdint>

namespace likeness::safetensors {

float DecodeFloat8E4M3(uint8_t bits);
float DecodeFloat8E5M2(uint8_t bits);

// Widens `count` bytes of `src` into `dst` (float32). `e4m3` picks the format.
void WidenFloat8(const uint8_t* src, size_t count, bool e4m3, float* dst);

}  // namespace likeness::safetensors

#endif  // LIKENESS_COMMON_SAFETENSORS_FLOAT8_H_
