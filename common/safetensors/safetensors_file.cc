#include "common/safetensors/safetensors_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/safetensors/float8.h"
#include "common/safetensors/torch_dtype.h"
#include "common/status_macros.h"

namespace likeness::safetensors {
namespace {

// safetensors data is little-endian; a view is only correct on a little-endian host.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors views need a little-endian host");

absl::Status ErrnoError(absl::string_view what, const std::string& path, int err) {
  std::string message =
      absl::StrCat("cannot ", what, " safetensors file ", path, ": ", std::strerror(err));
  if (err == ENOENT || err == ENOTDIR) return absl::NotFoundError(message);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(message);
  if (err == ENOMEM) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

// Closes the descriptor on every path out of Open; the mapping outlives it.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() { ::close(fd_); }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

 private:
  int fd_;
};

// Live mappings (start -> size), so ReleaseMappedPages can tell a mapped view from heap memory,
// where madvise(MADV_DONTNEED) would zero another allocation's bytes.
std::mutex& MappingsMutex() {
  static auto* mutex = new std::mutex();
  return *mutex;
}
std::map<uintptr_t, size_t>& Mappings() {
  static auto* mappings = new std::map<uintptr_t, size_t>();
  return *mappings;
}

}  // namespace

bool ReleaseMappedPages(const torch::Tensor& tensor) {
  if (!tensor.defined() || !tensor.is_cpu() || tensor.data_ptr() == nullptr) return false;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(tensor.data_ptr());
  const uintptr_t end = begin + tensor.numel() * tensor.element_size();
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t first = (begin + page - 1) / page * page;  // whole pages inside [begin, end)
  const uintptr_t last = end / page * page;
  if (first >= last) return false;
  std::lock_guard<std::mutex> lock(MappingsMutex());
  auto it = Mappings().upper_bound(begin);
  if (it == Mappings().begin()) return false;
  --it;
  if (end > it->first + it->second) return false;
  return ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED) == 0;
}

absl::StatusOr<std::shared_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  // O_NONBLOCK so that a FIFO given by mistake fails at fstat below instead of blocking here.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return ErrnoError("open", path, errno);
  FdCloser closer(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoError("stat", path, errno);
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* mapping = nullptr;
  if (size > 0) {
    // PROT_WRITE on a private mapping: writes through a returned view stay in this process.
    mapping = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (mapping == MAP_FAILED) return ErrnoError("map", path, errno);
  }
  // Owned from here on, so any error below unmaps.
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile(path, mapping, size));
  if (mapping != nullptr) {
    std::lock_guard<std::mutex> lock(MappingsMutex());
    Mappings()[reinterpret_cast<uintptr_t>(mapping)] = size;
  }
  LIKENESS_ASSIGN_OR_RETURN(file->header_, ParseHeader(file->bytes(), path));
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(MappingsMutex());
    Mappings().erase(reinterpret_cast<uintptr_t>(mapping_));
  }
  ::munmap(mapping_, size_);
}

std::vector<std::string> SafetensorsFile::Names() const {
  std::vector<std::string> names;
  names.reserve(header_.tensors().size());
  for (const TensorInfo& info : header_.tensors()) names.push_back(info.name);
  return names;
}

absl::StatusOr<torch::Tensor> SafetensorsFile::Get(absl::string_view name) const {
  const TensorInfo* info = header_.Find(name);
  if (info == nullptr) {
    return absl::NotFoundError(absl::StrCat(path_, ": no tensor '", name, "' among its ",
                                            header_.tensors().size(), " tensors"));
  }
  // ParseHeader proved data_offset + data_end <= size_, so these bytes are all mapped.
  uint8_t* data = static_cast<uint8_t*>(mapping_) + header_.data_offset() + info->data_begin;
  const size_t num_bytes = info->num_bytes();
  const std::vector<int64_t>& sizes = info->shape;
  if (info->dtype == DType::kBool) {
    const uint8_t* bad = std::find_if(data, data + num_bytes, [](uint8_t b) { return b > 1; });
    if (bad != data + num_bytes) {
      return absl::DataLossError(absl::StrCat(path_, ": tensor '", info->name, "': BOOL byte ",
                                              static_cast<int>(*bad), " at element ", bad - data,
                                              " is neither 0 nor 1"));
    }
  }
  try {
    const auto options = torch::TensorOptions().dtype(LoadedScalarType(info->dtype));
    if (WidenedOnLoad(info->dtype)) {
      torch::Tensor widened = torch::empty(sizes, options);
      WidenFloat8(data, num_bytes, info->dtype == DType::kF8E4M3, widened.data_ptr<float>());
      return widened;
    }
    const bool aligned = reinterpret_cast<uintptr_t>(data) % DTypeSize(info->dtype) == 0;
    if (num_bytes == 0 || !aligned) {
      torch::Tensor copy = torch::empty(sizes, options);
      if (num_bytes > 0) std::memcpy(copy.data_ptr(), data, num_bytes);
      return copy;
    }
    // The deleter does nothing but own a reference: the mapping dies with the last tensor.
    std::shared_ptr<const SafetensorsFile> keep_alive = shared_from_this();
    return torch::from_blob(
        data, sizes, [keep_alive](void*) {}, options);
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat(path_, ": tensor '", info->name, "': libtorch: ", e.what_without_backtrace()));
  }
}

}  // namespace likeness::safetensors
