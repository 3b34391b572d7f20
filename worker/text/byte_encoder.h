// CLIP's byte-level alphabet (simple_tokenizer.bytes_to_unicode): every byte maps to one
// printable code point, so BPE runs on text with no whitespace or control characters and any
// UTF-8 input has an encoding. Bytes that are printable Latin-1 map to themselves; the other 68
// map to U+0100 onwards in byte order (space -> U+0120 'Ġ').
#ifndef LIKENESS_WORKER_TEXT_BYTE_ENCODER_H_
#define LIKENESS_WORKER_TEXT_BYTE_ENCODER_H_

#include <array>
#include <cstdint>
#include <string>

namespace likeness::text {

inline constexpr int kByteCount = 256;

// The code point byte `b` stands for.
char32_t ByteToCodePoint(uint8_t b);

// The UTF-8 text of ByteToCodePoint(b), as BPE tokens spell it.
const std::string& ByteToUtf8(uint8_t b);

// The byte code point `c` stands for, or -1 when `c` is not in the alphabet.
int CodePointToByte(char32_t c);

// The bytes in the order bytes_to_unicode() lists them: printable first, then the rest. The
// CLIP vocabulary's first 256 ids follow this order ('!' is id 0).
const std::array<uint8_t, kByteCount>& ByteVocabularyOrder();

}  // namespace likeness::text

#endif  // LIKENESS_WORKER_TEXT_BYTE_ENCODER_H_
