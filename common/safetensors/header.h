// The safetensors header: parsing and validation from the bytes of a whole file, without
// libtorch, so the libFuzzer target (tests/fuzz) can drive it cheaply.
//
// File layout (the reference is huggingface/safetensors; all integers little-endian):
//   1. Bytes [0, 8): N, the length of the JSON header, as a uint64.
//   2. Bytes [8, 8 + N): a JSON object in UTF-8, padded with spaces. Writers pad N to a multiple
//      of 8 so the data section starts aligned; readers must not rely on it (old files exist).
//      Keys are tensor names, each mapping to
//        {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
//      plus an optional "__metadata__": {string: string}.
//   3. Bytes [8 + N, file end): the data section. A tensor's bytes are [begin, end) relative to
//      its start, in row-major (C) order, little-endian.
//
// Validation rules. Each failure is an absl::Status whose message starts with the file name and
// names the offending tensor (or metadata key). DATA_LOSS means bytes are missing (a truncated
// file: every cut of a valid file gives DATA_LOSS); INVALID_ARGUMENT means the bytes are all
// there but do not form a valid file. Neither is worth retrying.
//   1. The file holds at least the 8 length bytes.                               (DATA_LOSS)
//   2. N <= kMaxHeaderBytes, so a hostile length cannot make us allocate gigabytes.
//   3. 8 + N <= file size.                                                       (DATA_LOSS)
//   4. The header starts with '{', is valid UTF-8 JSON with only whitespace after the object (no
//      NUL byte anywhere: nlohmann::json would stop reading at one and ignore the rest), and
//      no object in it repeats a key (JSON parsers silently keep one of two duplicates; a
//      duplicate tensor name would make the file mean different things to different readers).
//   5. "__metadata__", if present and not null, is an object whose values are all strings.
//   6. Every other entry is an object with "dtype" (a known name, see dtype.h), "shape" (an
//      array of at most kMaxRank non-negative integers that fit int64) and "data_offsets" (two
//      non-negative integers, begin <= end). Other keys are ignored, as in the reference.
//   7. The product of the dims times the dtype size neither overflows uint64 (checked left to
//      right, as the reference does, so [0, 2^40, 2^40] is rejected) nor differs from end - begin.
//   8. end <= data section size.                                                 (DATA_LOSS)
//   9. Sorted by (begin, end), the tensors tile the data section exactly: the first begins at 0,
//      each begins where the previous ended (no gap, no overlap), the last ends at the file end.
//      Zero-byte tensors may share an offset.
#ifndef LIKENESS_COMMON_SAFETENSORS_HEADER_H_
#define LIKENESS_COMMON_SAFETENSORS_HEADER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/safetensors/dtype.h"

namespace likeness::safetensors {

// Rule 1: width of the little-endian header length.
inline constexpr size_t kHeaderLengthBytes = 8;
// Rule 2: the reference implementation's MAX_HEADER_SIZE (100 MB). SDXL's largest checkpoints
// have headers of a few hundred kB.
inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// Rule 6: no model tensor has more than a handful of dims; the cap bounds the work a hostile
// header can ask for per tensor. The reference has no cap; 64 leaves plenty of room.
inline constexpr size_t kMaxRank = 64;
// Writers pad the JSON with spaces to a multiple of this, so the data section is 8-aligned.
inline constexpr size_t kHeaderAlignment = 8;
// The reserved key for the string-to-string metadata map.
inline constexpr char kMetadataKey[] = "__metadata__";

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  // Relative to the start of the data section (Header::data_offset()).
  uint64_t data_begin = 0;
  uint64_t data_end = 0;

  uint64_t num_bytes() const { return data_end - data_begin; }
  uint64_t num_elements() const { return num_bytes() / DTypeSize(dtype); }
};

// A validated header. Immutable, so the name index can never disagree with the tensor list.
class Header {
 public:
  Header() = default;
  // `tensors` must be in data order with unique names; ParseHeader and PlanLayout guarantee it.
  Header(std::map<std::string, std::string> metadata, std::vector<TensorInfo> tensors,
         uint64_t data_offset, uint64_t data_size);

  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // In data order (ascending data_begin).
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // File offset of the data section: kHeaderLengthBytes + N.
  uint64_t data_offset() const { return data_offset_; }
  uint64_t data_size() const { return data_size_; }
  uint64_t file_size() const { return data_offset_ + data_size_; }

  // nullptr when no tensor has that name.
  const TensorInfo* Find(absl::string_view name) const;

 private:
  std::map<std::string, std::string> metadata_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  uint64_t data_offset_ = 0;
  uint64_t data_size_ = 0;
};

// Parses and validates (rules 1-9) the header of a whole file held in `file_bytes`.
// `file_name` only labels error messages.
absl::StatusOr<Header> ParseHeader(absl::string_view file_bytes, absl::string_view file_name);

// dtype size x product of `shape`, or INVALID_ARGUMENT on a negative dim or uint64 overflow.
absl::StatusOr<uint64_t> TensorByteSize(DType dtype, absl::Span<const int64_t> shape);

// "[2, 3]" for error messages.
std::string ShapeString(absl::Span<const int64_t> shape);

}  // namespace likeness::safetensors

#endif  // LIKENESS_COMMON_SAFETENSORS_HEADER_H_
