// libFuzzer target for the safetensors header parser (common/safetensors/header.h). Torch-free,
// built with clang and ASan/UBSan by tests/fuzz/standalone. Beyond "no crash", each input checks:
//   1. An error is INVALID_ARGUMENT or DATA_LOSS and starts with the file name.
//   2. A parsed header satisfies rules 6-9 again, checked here independently of the parser.
//   3. Re-planning the parsed tensors (layout.h) succeeds, and parsing that plan gives back the
//   same
//      names, dtypes, shapes and metadata: whatever we accept, our writer can write.
// A violated check aborts, which libFuzzer reports as a crash with the input saved.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "common/safetensors/header.h"
#include "common/safetensors/layout.h"

namespace likeness::safetensors {
namespace {

constexpr char kFileName[] = "fuzz.safetensors";

[[noreturn]] void Fail(const char* check, const std::string& detail) {
  std::fprintf(stderr, "safetensors fuzz check failed: %s: %s\n", check, detail.c_str());
  std::abort();
}

// Check 2.
void CheckConsistent(const Header& header, size_t file_size) {
  if (header.file_size() != file_size) Fail("file size", std::to_string(header.file_size()));
  uint64_t cursor = 0;
  for (const TensorInfo& t : header.tensors()) {
    if (t.data_begin != cursor || t.data_end < t.data_begin || t.data_end > header.data_size()) {
      Fail("tiling", t.name);
    }
    if (t.shape.size() > kMaxRank) Fail("rank", t.name);
    uint64_t elements = 1;
    for (const int64_t dim : t.shape) {
      if (dim < 0) Fail("negative dim", t.name);
      if (__builtin_mul_overflow(elements, static_cast<uint64_t>(dim), &elements)) {
        Fail("element overflow", t.name);
      }
    }
    uint64_t bytes = 0;
    if (__builtin_mul_overflow(elements, DTypeSize(t.dtype), &bytes) || bytes != t.num_bytes()) {
      Fail("byte size", t.name);
    }
    if (header.Find(t.name) != &t) Fail("index", t.name);
    cursor = t.data_end;
  }
  if (cursor != header.data_size()) Fail("coverage", std::to_string(cursor));
}

// Check 3.
void CheckReplans(const Header& header) {
  std::vector<TensorSpec> specs;
  for (const TensorInfo& t : header.tensors()) specs.push_back({t.name, t.dtype, t.shape});
  absl::StatusOr<Layout> layout = PlanLayout(std::move(specs), header.metadata(), kFileName);
  if (!layout.ok()) Fail("replan", std::string(layout.status().message()));
  const std::string file = layout->prefix + std::string(layout->header.data_size(), '\0');
  absl::StatusOr<Header> again = ParseHeader(file, kFileName);
  if (!again.ok()) Fail("reparse", std::string(again.status().message()));
  if (again->metadata() != header.metadata()) Fail("metadata", "differs after replanning");
  if (again->tensors().size() != header.tensors().size()) Fail("count", "differs after replanning");
  for (const TensorInfo& t : header.tensors()) {
    const TensorInfo* u = again->Find(t.name);
    if (u == nullptr || u->dtype != t.dtype || u->shape != t.shape) Fail("tensor", t.name);
  }
}

}  // namespace
}  // namespace likeness::safetensors

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace likeness::safetensors;
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<Header> header = ParseHeader(bytes, kFileName);
  if (!header.ok()) {
    const absl::StatusCode code = header.status().code();
    if (code != absl::StatusCode::kInvalidArgument && code != absl::StatusCode::kDataLoss) {
      Fail("status code", header.status().ToString());
    }
    if (!absl::StartsWith(header.status().message(), kFileName)) {
      Fail("message names the file", header.status().ToString());
    }
    return 0;
  }
  CheckConsistent(*header, size);
  CheckReplans(*header);
  return 0;
}
