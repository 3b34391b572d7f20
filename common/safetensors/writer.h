// Writing a .safetensors file atomically (common/atomic_file.h): the bytes go to a temp file in
// the same folder, which is fsynced and renamed over `path`. A crash or an error at any point
// leaves the old file (if any) untouched and no temp file behind.
//
// Steps:
//   1. Check every tensor (defined, strided, a dtype the format names) and plan the layout
//      (layout.h: the reference writer's order and header, byte for byte).
//   2. Open the temp file and write the 8-byte length and the padded header.
//   3. For each tensor in data order: make it a contiguous CPU tensor (only that one tensor is
//      copied at a time, so writing a GPU model needs one tensor of host memory, not all) and
//      append its bytes.
//   4. Commit: fsync, rename, fsync the folder.
#ifndef LIKENESS_COMMON_SAFETENSORS_WRITER_H_
#define LIKENESS_COMMON_SAFETENSORS_WRITER_H_

#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace likeness::safetensors {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Writes `tensors` (any order; names unique) and `metadata` to `path`. A std::map of tensors
// converts with NamedTensors(map.begin(), map.end()).
// INVALID_ARGUMENT naming the file and the tensor for an undefined, sparse or unsupported-dtype
// tensor, a duplicate or reserved name; NOT_FOUND when the folder does not exist; other codes
// from the file system (common/atomic_file.h) or INTERNAL from libtorch.
absl::Status WriteSafetensors(const std::string& path, const NamedTensors& tensors,
                              const std::map<std::string, std::string>& metadata = {});

}  // namespace likeness::safetensors

#endif  // LIKENESS_COMMON_SAFETENSORS_WRITER_H_
