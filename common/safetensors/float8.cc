#include "common/safetensors/float8.h"

#include <array>
#include <cmath>
#include <limits>

namespace likeness::safetensors {
namespace {

constexpr int kE4M3MantissaBits = 3;
constexpr int kE4M3Bias = 7;
constexpr int kE5M2MantissaBits = 2;
constexpr int kE5M2Bias = 15;

// Value of a sign/exponent/mantissa triple of a small binary float with the given layout.
// Exponent 0 is subnormal: mantissa * 2^(1 - bias - mantissa_bits).
float Compose(bool negative, int exponent, int mantissa, int mantissa_bits, int bias) {
  const float magnitude = exponent == 0
                              ? std::ldexp(static_cast<float>(mantissa), 1 - bias - mantissa_bits)
                              : std::ldexp(static_cast<float>((1 << mantissa_bits) + mantissa),
                                           exponent - bias - mantissa_bits);
  return negative ? -magnitude : magnitude;
}

float ComputeE4M3(uint8_t bits) {
  const bool negative = (bits & 0x80) != 0;
  const int exponent = (bits >> kE4M3MantissaBits) & 0xF;
  const int mantissa = bits & 0x7;
  // The "fn" variant spends only the all-ones pattern on NaN and has no infinities.
  if (exponent == 0xF && mantissa == 0x7) return std::numeric_limits<float>::quiet_NaN();
  return Compose(negative, exponent, mantissa, kE4M3MantissaBits, kE4M3Bias);
}

float ComputeE5M2(uint8_t bits) {
  const bool negative = (bits & 0x80) != 0;
  const int exponent = (bits >> kE5M2MantissaBits) & 0x1F;
  const int mantissa = bits & 0x3;
  if (exponent == 0x1F) {
    if (mantissa != 0) return std::numeric_limits<float>::quiet_NaN();
    return negative ? -std::numeric_limits<float>::infinity()
                    : std::numeric_limits<float>::infinity();
  }
  return Compose(negative, exponent, mantissa, kE5M2MantissaBits, kE5M2Bias);
}

using Table = std::array<float, 256>;

Table MakeTable(float (*decode)(uint8_t)) {
  Table table{};
  for (int i = 0; i < 256; ++i) table[i] = decode(static_cast<uint8_t>(i));
  return table;
}

// Built once, thread-safe by the static-local rule; a lookup is cheaper than the bit math.
const Table& E4M3Table() {
  static const Table table = MakeTable(&ComputeE4M3);
  return table;
}

const Table& E5M2Table() {
  static const Table table = MakeTable(&ComputeE5M2);
  return table;
}

}  // namespace

float DecodeFloat8E4M3(uint8_t bits) { return E4M3Table()[bits]; }
float DecodeFloat8E5M2(uint8_t bits) { return E5M2Table()[bits]; }

void WidenFloat8(const uint8_t* src, size_t count, bool e4m3, float* dst) {
  const Table& table = e4m3 ? E4M3Table() : E5M2Table();
  for (size_t i = 0; i < count; ++i) dst[i] = table[src[i]];
}

}  // namespace likeness::safetensors
