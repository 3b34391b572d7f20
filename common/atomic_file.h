// Writing a file so that a crash never leaves a half-written file under the final name:
//   1. write everything to `<dir>/.<name>.tmp.<pid>.<counter>` in the same folder (same filesystem),
//   2. fsync the temp file,
//   3. rename it over the final name (atomic on POSIX),
//   4. fsync the folder so the rename itself survives a power cut.
// On any error the temp file is removed and the final name is untouched.
#ifndef LIKENESS_COMMON_ATOMIC_FILE_H_
#define LIKENESS_COMMON_ATOMIC_FILE_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace likeness {

class AtomicFileWriter {
 public:
  // Creates the temp file beside `final_path`.
  static absl::StatusOr<AtomicFileWriter> Create(const std::string& final_path);

  AtomicFileWriter(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter& operator=(AtomicFileWriter&& other) = delete;
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  // Abandons the write (removes the temp file) unless Commit() succeeded.
  ~AtomicFileWriter();

  absl::Status Append(const void* data, size_t size);
  absl::Status Append(absl::string_view data) { return Append(data.data(), data.size()); }
  // Steps 2-4 above. After it, the writer is spent.
  absl::Status Commit();

  const std::string& final_path() const { return final_path_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  AtomicFileWriter(std::string final_path, std::string temp_path, int fd)
      : final_path_(std::move(final_path)), temp_path_(std::move(temp_path)), fd_(fd) {}
  void Abandon();

  std::string final_path_;
  std::string temp_path_;
  int fd_ = -1;
};

// Convenience: the whole content at once.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view content);

// Reads a whole file; errors name the path.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

}  // namespace likeness

#endif  // LIKENESS_COMMON_ATOMIC_FILE_H_
