#include "tests/test_data.h"

#include <unistd.h>

#include <filesystem>

namespace likeness::testing {

std::string MakeTestTempDir(const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(LIKENESS_BINARY_DIR) / "tests" / "tmp" /
                       (name + "." + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

}  // namespace likeness::testing
