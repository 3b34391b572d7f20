// Artifact paths reported by workers are confined to the coordinator's artifact root: a
// worker (or whoever holds a token) must not make the dashboard or `likeness results` read
// /etc/shadow or another sweep's files through "../" or a symlink.
#ifndef LIKENESS_COORDINATOR_ARTIFACT_PATHS_H_
#define LIKENESS_COORDINATOR_ARTIFACT_PATHS_H_

#include <string>

#include "absl/status/statusor.h"

namespace likeness::coordinator {

// `path` (absolute, or relative to `root`) resolved through the symlinks that exist, as a
// path relative to `root`; PERMISSION_DENIED when it leads outside `root`, INVALID_ARGUMENT
// when it is empty or not a path.
absl::StatusOr<std::string> ConfineArtifactPath(const std::string& root, const std::string& path);

}  // namespace likeness::coordinator

#endif  // LIKENESS_COORDINATOR_ARTIFACT_PATHS_H_
