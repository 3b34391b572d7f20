// Element types of the safetensors format, as the header spells them ("F32", "BF16", ...).
// Torch-free: the header parser and the libFuzzer target use it without libtorch.
#ifndef LIKENESS_COMMON_SAFETENSORS_DTYPE_H_
#define LIKENESS_COMMON_SAFETENSORS_DTYPE_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace likeness::safetensors {

// Declared in the reference implementation's order (huggingface/safetensors `Dtype`), which
// ascends by element size. The writer sorts tensors by this order, descending, then by name, so
// our files match the reference byte for byte and every tensor is aligned to its element size.
// Do not reorder.
enum class DType : uint8_t {
  kBool,
  kU8,
  kI8,
  kF8E5M2,
  kF8E4M3,
  kI16,
  kF16,
  kBF16,
  kI32,
  kF32,
  kF64,
  kI64,
};

inline constexpr std::array<DType, 12> kAllDTypes = {
    DType::kBool, DType::kU8,   DType::kI8,  DType::kF8E5M2, DType::kF8E4M3, DType::kI16,
    DType::kF16,  DType::kBF16, DType::kI32, DType::kF32,    DType::kF64,    DType::kI64,
};

// "F32" -> DType::kF32. Case-sensitive, as in the reference. INVALID_ARGUMENT for names this
// library does not know (including U16/U32/U64, which libtorch 1.13 cannot represent).
absl::StatusOr<DType> ParseDType(absl::string_view name);

// The header spelling: DType::kF8E4M3 -> "F8_E4M3".
const char* DTypeName(DType dtype);

// Bytes per element.
size_t DTypeSize(DType dtype);

}  // namespace likeness::safetensors

#endif  // LIKENESS_COMMON_SAFETENSORS_DTYPE_H_
