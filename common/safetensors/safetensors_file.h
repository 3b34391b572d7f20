// Reading a .safetensors file: the file is memory-mapped, its header validated once (header.h,
// rules 1-9), and each tensor handed out lazily by name as a torch::Tensor.
//
// How Get() makes a tensor:
//   1. Aligned data (the usual case: writers order tensors by element size and pad the header
//      to 8) becomes a view into the mapping: no copy, no read until a page is touched. The
//      tensor's deleter holds a shared_ptr to this object, so the mapping lives as long as any
//      tensor from it, even after the caller drops the SafetensorsFile.
//   2. Misaligned data (old writers that did not pad the header) is copied into a fresh tensor,
//      because libtorch kernels assume element alignment.
//   3. F8 data where libtorch has no float8 type (1.13) is widened into a float32 tensor.
//   4. BOOL data is checked to hold only 0 and 1; other bytes would be undefined behaviour in
//      libtorch's bool kernels.
//
// The mapping is MAP_PRIVATE with PROT_READ | PROT_WRITE: an in-place op on a returned view
// copies the touched page (copy-on-write) and never crashes or reaches the file. Views of the
// same tensor from one SafetensorsFile share those private pages, so clone() a view that will be
// modified while another user still reads it.
//
// Caveat no reader can remove: if another process truncates the file while it is mapped,
// touching a page past the new end raises SIGBUS. Files are written atomically (writer.h), which
// replaces rather than truncates them, so our own writes never cause this.
#ifndef LIKENESS_COMMON_SAFETENSORS_SAFETENSORS_FILE_H_
#define LIKENESS_COMMON_SAFETENSORS_SAFETENSORS_FILE_H_

#include <torch/torch.h>

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/safetensors/header.h"

namespace likeness::safetensors {

class SafetensorsFile : public std::enable_shared_from_this<SafetensorsFile> {
 public:
  // NOT_FOUND when the file is missing; DATA_LOSS / INVALID_ARGUMENT when it is not a valid
  // safetensors file (header.h); every message names `path`.
  static absl::StatusOr<std::shared_ptr<SafetensorsFile>> Open(const std::string& path);

  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  const Header& header() const { return header_; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata(); }
  // In data order.
  std::vector<std::string> Names() const;
  bool Contains(absl::string_view name) const { return header_.Find(name) != nullptr; }

  // The tensor called `name`, on the CPU, with requires_grad false. NOT_FOUND naming the file and
  // the tensor when there is none; DATA_LOSS for a BOOL byte other than 0 or 1.
  absl::StatusOr<torch::Tensor> Get(absl::string_view name) const;

  // The whole mapped file (tests use it to see that a tensor is a view into the mapping).
  absl::string_view bytes() const {
    return absl::string_view(static_cast<const char*>(mapping_), size_);
  }

 private:
  SafetensorsFile(std::string path, void* mapping, size_t size)
      : path_(std::move(path)), mapping_(mapping), size_(size) {}

  std::string path_;
  void* mapping_ = nullptr;  // nullptr for an empty file (mmap refuses length 0).
  size_t size_ = 0;
  Header header_;
};

// Drops the resident pages behind `tensor` when it is a view into a live SafetensorsFile mapping,
// once its values have been copied elsewhere (loading a model): the checkpoint's pages are then
// not held in memory beside the weights they were copied into. Only whole pages inside the
// tensor's bytes are dropped. Safe because mappings are private and read-only in practice: a
// later read faults the file's bytes back in. Do not call it for a view that was written to
// (its private copy would be lost). Returns whether any page was dropped; false, and nothing
// done, for a tensor that is not such a view (a heap copy, a widened F8 tensor).
bool ReleaseMappedPages(const torch::Tensor& tensor);

}  // namespace likeness::safetensors

#endif  // LIKENESS_COMMON_SAFETENSORS_SAFETENSORS_FILE_H_
