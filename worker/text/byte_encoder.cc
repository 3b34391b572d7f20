#include "worker/text/byte_encoder.h"

#include <array>
#include <string>

namespace likeness::text {
namespace {

// First code point given to the bytes that are not printable Latin-1.
constexpr char32_t kShiftedBase = 0x100;

bool IsPrintableLatin1(int b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct Tables {
  std::array<char32_t, kByteCount> code_points{};
  std::array<std::string, kByteCount> utf8;
  std::array<uint8_t, kByteCount> order{};
  std::string shifted_bytes;  // shifted_bytes[i] is the byte that stands as kShiftedBase + i.
};

std::string EncodeUtf8(char32_t c) {
  // The alphabet stays below U+0180, so one or two bytes.
  if (c < 0x80) return std::string(1, static_cast<char>(c));
  return {static_cast<char>(0xC0 | (c >> 6)), static_cast<char>(0x80 | (c & 0x3F))};
}

const Tables& GetTables() {
  static const Tables* const tables = [] {
    auto* t = new Tables;
    int next_order = 0;
    for (int b = 0; b < kByteCount; ++b) {
      if (IsPrintableLatin1(b)) t->order[next_order++] = static_cast<uint8_t>(b);
    }
    char32_t shifted = kShiftedBase;
    for (int b = 0; b < kByteCount; ++b) {
      if (IsPrintableLatin1(b)) {
        t->code_points[b] = static_cast<char32_t>(b);
      } else {
        t->code_points[b] = shifted++;
        t->shifted_bytes.push_back(static_cast<char>(b));
        t->order[next_order++] = static_cast<uint8_t>(b);
      }
      t->utf8[b] = EncodeUtf8(t->code_points[b]);
    }
    return t;
  }();
  return *tables;
}

}  // namespace

char32_t ByteToCodePoint(uint8_t b) { return GetTables().code_points[b]; }

const std::string& ByteToUtf8(uint8_t b) { return GetTables().utf8[b]; }

int CodePointToByte(char32_t c) {
  if (c < kShiftedBase) return IsPrintableLatin1(static_cast<int>(c)) ? static_cast<int>(c) : -1;
  const std::string& shifted = GetTables().shifted_bytes;
  const char32_t index = c - kShiftedBase;
  return index < shifted.size() ? static_cast<uint8_t>(shifted[index]) : -1;
}

const std::array<uint8_t, kByteCount>& ByteVocabularyOrder() { return GetTables().order; }

}  // namespace likeness::text
