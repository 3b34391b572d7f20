#include "coordinator/artifact_paths.h"

#include <filesystem>

#include "absl/strings/str_cat.h"

namespace likeness::coordinator {

absl::StatusOr<std::string> ConfineArtifactPath(const std::string& root, const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty() || path.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("artifact path '", path, "' is not a path"));
  }
  std::error_code error;
  const fs::path base = fs::weakly_canonical(fs::absolute(root, error), error);
  if (error) return absl::InvalidArgumentError(absl::StrCat("artifact root '", root, "': ", error.message()));
  const fs::path candidate = fs::path(path).is_absolute() ? fs::path(path) : base / path;
  // weakly_canonical follows every symlink that exists, so a link out of the root is caught.
  const fs::path resolved = fs::weakly_canonical(candidate, error);
  if (error) return absl::InvalidArgumentError(absl::StrCat("artifact path '", path, "': ", error.message()));
  const fs::path relative = resolved.lexically_relative(base);
  if (relative.empty() || *relative.begin() == ".." || relative.is_absolute()) {
    return absl::PermissionDeniedError(absl::StrCat("artifact path '", path,
                                                    "' is outside the artifact root ",
                                                    base.string()));
  }
  return relative.string();
}

}  // namespace likeness::coordinator
