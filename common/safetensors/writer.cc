#include "common/safetensors/writer.h"

#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/safetensors/layout.h"
#include "common/safetensors/torch_dtype.h"
#include "common/status_macros.h"

namespace likeness::safetensors {
namespace {

// The bytes of a tensor are written as they lie in memory; the format is little-endian.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors writing needs a little-endian host");

absl::Status TensorError(const std::string& path, const std::string& name, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": tensor '", name, "': ", what));
}

// Step 1 for one tensor.
absl::StatusOr<TensorSpec> SpecOf(const std::string& path, const std::string& name,
                                  const torch::Tensor& tensor) {
  if (!tensor.defined()) return TensorError(path, name, "the tensor is undefined");
  if (tensor.layout() != torch::kStrided) {
    std::ostringstream layout;
    layout << tensor.layout();
    return TensorError(
        path, name,
        absl::StrCat("layout ", layout.str(), " is not strided; only dense tensors can be stored"));
  }
  absl::StatusOr<DType> dtype = StoredDType(tensor.scalar_type());
  if (!dtype.ok()) return TensorError(path, name, dtype.status().message());
  try {
    // Throws for tensors without plain sizes (nested tensors, for one).
    return TensorSpec{name, *dtype, tensor.sizes().vec()};
  } catch (const c10::Error& e) {
    return TensorError(path, name,
                       absl::StrCat("has no plain shape: ", e.what_without_backtrace()));
  }
}

// Step 3 for one tensor.
absl::Status AppendTensor(const std::string& path, const TensorInfo& info,
                          const torch::Tensor& tensor, AtomicFileWriter& writer) {
  torch::Tensor dense;
  try {
    dense = tensor.detach().to(torch::kCPU).contiguous();
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat(path, ": tensor '", info.name,
                     "': cannot make a contiguous CPU copy: ", e.what_without_backtrace()));
  }
  if (dense.nbytes() != info.num_bytes()) {
    return absl::InternalError(absl::StrCat(path, ": tensor '", info.name, "': holds ",
                                            dense.nbytes(), " bytes but the layout planned ",
                                            info.num_bytes()));
  }
  return writer.Append(dense.data_ptr(), info.num_bytes());
}

}  // namespace

absl::Status WriteSafetensors(const std::string& path, const NamedTensors& tensors,
                              const std::map<std::string, std::string>& metadata) {
  std::vector<TensorSpec> specs;
  specs.reserve(tensors.size());
  std::map<std::string, const torch::Tensor*> by_name;
  for (const auto& [name, tensor] : tensors) {
    LIKENESS_ASSIGN_OR_RETURN(TensorSpec spec, SpecOf(path, name, tensor));
    specs.push_back(std::move(spec));
    by_name.emplace(name, &tensor);
  }
  // Rejects duplicate names before by_name's silent de-duplication could matter.
  LIKENESS_ASSIGN_OR_RETURN(Layout layout, PlanLayout(std::move(specs), metadata, path));

  LIKENESS_ASSIGN_OR_RETURN(AtomicFileWriter writer, AtomicFileWriter::Create(path));
  LIKENESS_RETURN_IF_ERROR(writer.Append(layout.prefix));
  for (const TensorInfo& info : layout.header.tensors()) {
    if (info.num_bytes() == 0) continue;
    LIKENESS_RETURN_IF_ERROR(AppendTensor(path, info, *by_name.at(info.name), writer));
  }
  return writer.Commit();
}

}  // namespace likeness::safetensors
