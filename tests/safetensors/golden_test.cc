// Every .safetensors file in the golden folder (LIKENESS_GOLDEN_DIR, default
// ../shared/data/golden; whatever set is there, no names hard-coded) must open, load every tensor
// with the shape and dtype its sidecar <name>.json lists under "tensors", and be rewritten by our
// writer with the same layout and data bytes (the golden files come from the reference writer).
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/safetensors/safetensors_file.h"
#include "common/safetensors/torch_dtype.h"
#include "common/safetensors/writer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/safetensors/test_util.h"
#include "tests/test_data.h"

namespace likeness::safetensors {
namespace {

namespace fs = std::filesystem;

// Sidecar keys (see the golden folder's README).
constexpr char kSidecarTensors[] = "tensors";
constexpr char kSidecarFileBytes[] = "file_bytes";
constexpr const char* kCheckedPrefixes[] = {"__input__.", "__output__."};

bool IsChecked(const std::string& name) {
  return std::any_of(std::begin(kCheckedPrefixes), std::end(kCheckedPrefixes),
                     [&](const char* prefix) { return absl::StartsWith(name, prefix); });
}

std::vector<fs::path> GoldenFiles() {
  std::vector<fs::path> files;
  const fs::path dir = likeness::testing::GoldenDir();
  if (!fs::is_directory(dir)) return files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".safetensors") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(GoldenFilesTest, FolderHoldsSafetensorsFiles) {
  EXPECT_FALSE(GoldenFiles().empty())
      << "no .safetensors files in " << likeness::testing::GoldenDir() << " (set "
      << likeness::testing::kGoldenDirEnv << ")";
}

void CheckAgainstSidecar(const SafetensorsFile& file, const fs::path& sidecar_path) {
  std::ifstream in(sidecar_path);
  ASSERT_TRUE(in.good()) << "missing sidecar " << sidecar_path;
  const nlohmann::json sidecar = nlohmann::json::parse(in);
  if (sidecar.contains(kSidecarFileBytes)) {
    EXPECT_EQ(sidecar[kSidecarFileBytes].get<uint64_t>(), file.bytes().size());
  }
  const std::vector<std::string> names = file.Names();
  const bool has_checked = std::any_of(names.begin(), names.end(), IsChecked);
  if (!sidecar.contains(kSidecarTensors)) {
    // A weights-only file (no __input__/__output__ tensors) may have no "tensors" section.
    EXPECT_FALSE(has_checked) << sidecar_path << " has no \"" << kSidecarTensors << "\" section";
    return;
  }
  const nlohmann::json& listed = sidecar[kSidecarTensors];
  int checked = 0;
  for (const auto& [name, expected] : listed.items()) {
    if (!IsChecked(name)) continue;
    ++checked;
    SCOPED_TRACE(name);
    const TensorInfo* info = file.header().Find(name);
    ASSERT_NE(info, nullptr) << "listed in the sidecar but absent from the file";
    EXPECT_EQ(DTypeName(info->dtype), expected["dtype"].get<std::string>());
    EXPECT_EQ(info->shape, expected["shape"].get<std::vector<int64_t>>());
    absl::StatusOr<torch::Tensor> tensor = file.Get(name);
    ASSERT_TRUE(tensor.ok()) << tensor.status();
    EXPECT_EQ(tensor->sizes().vec(), expected["shape"].get<std::vector<int64_t>>());
  }
  for (const std::string& name : names) {
    if (IsChecked(name)) {
      EXPECT_TRUE(listed.contains(name)) << name << " is missing from the sidecar";
    }
  }
  EXPECT_EQ(checked > 0, has_checked) << sidecar_path;
}

TEST(GoldenFilesTest, EveryFileParsesAndMatchesItsSidecar) {
  for (const fs::path& path : GoldenFiles()) {
    SCOPED_TRACE(path.string());
    absl::StatusOr<std::shared_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path.string());
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_TRUE(testing::IsConsistent((*file)->header(), (*file)->bytes().size()));
    for (const TensorInfo& info : (*file)->header().tensors()) {
      absl::StatusOr<torch::Tensor> tensor = (*file)->Get(info.name);
      ASSERT_TRUE(tensor.ok()) << tensor.status();
      EXPECT_EQ(tensor->scalar_type(), LoadedScalarType(info.dtype)) << info.name;
      EXPECT_EQ(tensor->sizes().vec(), info.shape) << info.name;
      const uint64_t offset = (*file)->header().data_offset() + info.data_begin;
      if (info.num_bytes() > 0 && offset % DTypeSize(info.dtype) == 0) {
        EXPECT_EQ(static_cast<const char*>(tensor->data_ptr()), (*file)->bytes().data() + offset)
            << info.name << " should be a view into the mapping";
      }
    }
    fs::path sidecar = path;
    sidecar.replace_extension(".json");
    CheckAgainstSidecar(**file, sidecar);
  }
}

TEST(GoldenFilesTest, RewritingReproducesTheLayoutAndData) {
  const std::string dir = likeness::testing::MakeTestTempDir("st_golden_rewrite");
  for (const fs::path& path : GoldenFiles()) {
    SCOPED_TRACE(path.string());
    absl::StatusOr<std::shared_ptr<SafetensorsFile>> original =
        SafetensorsFile::Open(path.string());
    ASSERT_TRUE(original.ok()) << original.status();
    NamedTensors tensors;
    for (const std::string& name : (*original)->Names())
      tensors.emplace_back(name, *(*original)->Get(name));
    const std::string copy_path = dir + "/" + path.filename().string();
    ASSERT_TRUE(WriteSafetensors(copy_path, tensors, (*original)->metadata()).ok());
    tensors.clear();

    absl::StatusOr<std::shared_ptr<SafetensorsFile>> copy = SafetensorsFile::Open(copy_path);
    ASSERT_TRUE(copy.ok()) << copy.status();
    const Header& a = (*original)->header();
    const Header& b = (*copy)->header();
    EXPECT_EQ(a.metadata(), b.metadata());
    ASSERT_EQ(a.tensors().size(), b.tensors().size());
    for (size_t i = 0; i < a.tensors().size(); ++i) {
      EXPECT_EQ(a.tensors()[i].name, b.tensors()[i].name);
      EXPECT_EQ(a.tensors()[i].data_begin, b.tensors()[i].data_begin) << a.tensors()[i].name;
      EXPECT_EQ(a.tensors()[i].shape, b.tensors()[i].shape) << a.tensors()[i].name;
    }
    EXPECT_TRUE((*original)->bytes().substr(a.data_offset()) ==
                (*copy)->bytes().substr(b.data_offset()))
        << "data sections differ";
    copy->reset();
    fs::remove(copy_path);
  }
}

}  // namespace
}  // namespace likeness::safetensors
