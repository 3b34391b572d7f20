// Mapping between safetensors dtypes and libtorch scalar types. Where libtorch lacks float8
// (1.13), F8 tensors load as float32 (common/torch_compat.h decides).
#ifndef LIKENESS_COMMON_SAFETENSORS_TORCH_DTYPE_H_
#define LIKENESS_COMMON_SAFETENSORS_TORCH_DTYPE_H_

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "common/safetensors/dtype.h"

namespace likeness::safetensors {

// True for F8_E4M3 / F8_E5M2 when this libtorch has no float8 type: SafetensorsFile::Get then
// returns a float32 copy instead of a view.
bool WidenedOnLoad(DType dtype);

// The scalar type of the tensor SafetensorsFile::Get returns for `dtype`.
c10::ScalarType LoadedScalarType(DType dtype);

// The dtype WriteSafetensors stores a tensor of `type` as; INVALID_ARGUMENT for types the format
// has no name for (complex, quantized, unsigned 16/32/64 bit, ...).
absl::StatusOr<DType> StoredDType(c10::ScalarType type);

}  // namespace likeness::safetensors

#endif  // LIKENESS_COMMON_SAFETENSORS_TORCH_DTYPE_H_
