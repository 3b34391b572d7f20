#include "common/safetensors/torch_dtype.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/torch_compat.h"

namespace likeness::safetensors {

bool WidenedOnLoad(DType dtype) {
  return !compat::kHasFloat8 && (dtype == DType::kF8E4M3 || dtype == DType::kF8E5M2);
}

c10::ScalarType LoadedScalarType(DType dtype) {
  switch (dtype) {
    case DType::kBool:
      return c10::ScalarType::Bool;
    case DType::kU8:
      return c10::ScalarType::Byte;
    case DType::kI8:
      return c10::ScalarType::Char;
    case DType::kF8E5M2:
      return compat::kHasFloat8 ? compat::kFloat8E5M2 : c10::ScalarType::Float;
    case DType::kF8E4M3:
      return compat::kHasFloat8 ? compat::kFloat8E4M3 : c10::ScalarType::Float;
    case DType::kI16:
      return c10::ScalarType::Short;
    case DType::kF16:
      return c10::ScalarType::Half;
    case DType::kBF16:
      return c10::ScalarType::BFloat16;
    case DType::kI32:
      return c10::ScalarType::Int;
    case DType::kF32:
      return c10::ScalarType::Float;
    case DType::kF64:
      return c10::ScalarType::Double;
    case DType::kI64:
      return c10::ScalarType::Long;
  }
  std::abort();  // A value outside the enum is a broken invariant.
}

absl::StatusOr<DType> StoredDType(c10::ScalarType type) {
  // Float8 first: on libtorch 1.13 the compat constants are Undefined, which no tensor has.
  if (compat::kHasFloat8 && type == compat::kFloat8E4M3) return DType::kF8E4M3;
  if (compat::kHasFloat8 && type == compat::kFloat8E5M2) return DType::kF8E5M2;
  switch (type) {
    case c10::ScalarType::Bool:
      return DType::kBool;
    case c10::ScalarType::Byte:
      return DType::kU8;
    case c10::ScalarType::Char:
      return DType::kI8;
    case c10::ScalarType::Short:
      return DType::kI16;
    case c10::ScalarType::Half:
      return DType::kF16;
    case c10::ScalarType::BFloat16:
      return DType::kBF16;
    case c10::ScalarType::Int:
      return DType::kI32;
    case c10::ScalarType::Float:
      return DType::kF32;
    case c10::ScalarType::Double:
      return DType::kF64;
    case c10::ScalarType::Long:
      return DType::kI64;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("libtorch dtype ", c10::toString(type), " has no safetensors equivalent"));
  }
}

}  // namespace likeness::safetensors
