#include "tests/test_data.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <vector>

namespace likeness::testing {

std::string MakeTestTempDir(const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(LIKENESS_BINARY_DIR) / "tests" / "tmp" /
                       (name + "." + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

std::string FirstSubjectDir() {
  namespace fs = std::filesystem;
  std::vector<std::string> dirs;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(DreamBenchDir(), error)) {
    if (entry.is_directory()) dirs.push_back(entry.path().string());
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs.empty() ? "" : dirs.front();
}

}  // namespace likeness::testing
