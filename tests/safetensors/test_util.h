// Helpers shared by the safetensors tests: hand-made files and checks on errors and headers.
#ifndef LIKENESS_TESTS_SAFETENSORS_TEST_UTIL_H_
#define LIKENESS_TESTS_SAFETENSORS_TEST_UTIL_H_

#include <cstdint>
#include <fstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/safetensors/header.h"
#include "gtest/gtest.h"

namespace likeness::safetensors::testing {

// The 8-byte little-endian length, `json` verbatim (no padding), then `data`.
inline std::string MakeFileBytes(absl::string_view json, absl::string_view data = "") {
  std::string bytes;
  const uint64_t length = json.size();
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((length >> (8 * i)) & 0xFF));
  bytes.append(json.data(), json.size());
  bytes.append(data.data(), data.size());
  return bytes;
}

inline void WriteBytes(const std::string& path, absl::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

inline std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The status has `code` and its message names the file and (when not empty) `subject`, the
// offending tensor or metadata key.
inline ::testing::AssertionResult IsErrorNaming(const absl::Status& status, absl::StatusCode code,
                                                absl::string_view file, absl::string_view subject) {
  if (status.code() != code) {
    return ::testing::AssertionFailure()
           << "expected " << absl::StatusCodeToString(code) << ", got " << status;
  }
  if (status.message().find(file) == absl::string_view::npos) {
    return ::testing::AssertionFailure()
           << "message does not name file '" << file << "': " << status;
  }
  if (!subject.empty() &&
      status.message().find(absl::StrCat("'", subject, "'")) == absl::string_view::npos) {
    return ::testing::AssertionFailure() << "message does not name '" << subject << "': " << status;
  }
  return ::testing::AssertionSuccess();
}

// The invariants a successfully parsed header must satisfy, whatever the input was (rules 6-9
// of header.h re-checked independently).
inline ::testing::AssertionResult IsConsistent(const Header& header, uint64_t file_size) {
  if (header.file_size() != file_size) {
    return ::testing::AssertionFailure()
           << "header covers " << header.file_size() << " of " << file_size << " bytes";
  }
  uint64_t cursor = 0;
  for (const TensorInfo& t : header.tensors()) {
    if (t.data_begin != cursor || t.data_end < t.data_begin || t.data_end > header.data_size()) {
      return ::testing::AssertionFailure() << "tensor '" << t.name << "' is not tiled";
    }
    uint64_t elements = 1;
    for (const int64_t dim : t.shape) {
      if (dim < 0) return ::testing::AssertionFailure() << "negative dim in '" << t.name << "'";
      elements *= static_cast<uint64_t>(dim);  // Cannot overflow: bytes <= file size.
    }
    if (elements * DTypeSize(t.dtype) != t.num_bytes()) {
      return ::testing::AssertionFailure() << "size mismatch in '" << t.name << "'";
    }
    if (header.Find(t.name) != &t)
      return ::testing::AssertionFailure() << "index misses '" << t.name << "'";
    cursor = t.data_end;
  }
  if (cursor != header.data_size()) return ::testing::AssertionFailure() << "data not covered";
  return ::testing::AssertionSuccess();
}

}  // namespace likeness::safetensors::testing

#endif  // LIKENESS_TESTS_SAFETENSORS_TEST_UTIL_H_
