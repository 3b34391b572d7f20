// Planning a safetensors file before writing it: the order of the tensors, their offsets and the
// serialized header. Torch-free, so the writer's layout is tested (and fuzzed: parse, re-plan,
// re-parse) without libtorch.
//
// The plan follows the reference writer exactly, so a file it writes is byte-identical to what
// huggingface/safetensors writes for the same tensors and metadata (given sorted metadata keys):
//   1. Tensors are sorted by dtype in descending DType order (dtype.h; descending element size),
//      then by name. Each therefore starts at a multiple of its element size.
//   2. They are packed with no gaps from data offset 0.
//   3. The header is compact JSON: "__metadata__" first (omitted when empty), then each tensor in
//      data order as {"dtype", "shape", "data_offsets"}.
//   4. It is padded with spaces to a multiple of kHeaderAlignment, so data starts 8-aligned.
#ifndef LIKENESS_COMMON_SAFETENSORS_LAYOUT_H_
#define LIKENESS_COMMON_SAFETENSORS_LAYOUT_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/safetensors/dtype.h"
#include "common/safetensors/header.h"

namespace likeness::safetensors {

// What the writer knows about a tensor before placing it.
struct TensorSpec {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
};

struct Layout {
  // Tensors in data order with their offsets; data_offset() == prefix.size().
  Header header;
  // The file's first bytes: the 8-byte little-endian length, then the padded JSON header.
  std::string prefix;
};

// INVALID_ARGUMENT (naming `file_name` and the tensor) for a duplicate or reserved name, a name
// or metadata string that is not valid UTF-8, a negative dim, a rank over kMaxRank, a size
// overflow, or a header over kMaxHeaderBytes.
absl::StatusOr<Layout> PlanLayout(std::vector<TensorSpec> tensors,
                                  const std::map<std::string, std::string>& metadata,
                                  absl::string_view file_name);

}  // namespace likeness::safetensors

#endif  // LIKENESS_COMMON_SAFETENSORS_LAYOUT_H_
