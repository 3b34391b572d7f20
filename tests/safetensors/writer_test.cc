// WriteSafetensors: the layout it writes, dense copies of odd tensors, and atomicity (a failed
// write leaves the old file intact and no temp file behind).
#include "common/safetensors/writer.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/safetensors/safetensors_file.h"
#include "gtest/gtest.h"
#include "tests/safetensors/test_util.h"
#include "tests/test_data.h"

namespace likeness::safetensors {
namespace {

namespace fs = std::filesystem;
using testing::IsErrorNaming;
using testing::ReadBytes;

std::vector<std::string> FolderEntries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(WriteSafetensorsTest, WritesTheReferenceLayout) {
  const std::string path = likeness::testing::MakeTestTempDir("st_layout") + "/l.safetensors";
  ASSERT_TRUE(WriteSafetensors(path,
                               {{"b", torch::ones({2}, torch::kInt16)},
                                {"a", torch::ones({3}, torch::kUInt8)},
                                {"c", torch::ones({1}, torch::kFloat64)},
                                {"d", torch::ones({1}, torch::kFloat32)}},
                               {{"format", "pt"}})
                  .ok());
  const std::string json = R"({"__metadata__":{"format":"pt"},)"
                           R"("c":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},)"
                           R"("d":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},)"
                           R"("b":{"dtype":"I16","shape":[2],"data_offsets":[12,16]},)"
                           R"("a":{"dtype":"U8","shape":[3],"data_offsets":[16,19]}})";
  const std::string padded = json + std::string((8 - json.size() % 8) % 8, ' ');
  const std::string bytes = ReadBytes(path);
  ASSERT_EQ(bytes.size(), 8 + padded.size() + 19);
  EXPECT_EQ(bytes.substr(0, 8 + padded.size()), testing::MakeFileBytes(padded));
  // 1.0 as F64, F32, two I16 ones, three U8 ones, little-endian.
  EXPECT_EQ(bytes.substr(8 + padded.size()), std::string("\0\0\0\0\0\0\xf0\x3f"
                                                         "\0\0\x80\x3f"
                                                         "\1\0\1\0"
                                                         "\1\1\1",
                                                         19));
}

TEST(WriteSafetensorsTest, NonContiguousTensorsAreWrittenDense) {
  const torch::Tensor base = torch::arange(24, torch::kFloat32).reshape({4, 6});
  const NamedTensors tensors = {
      {"transposed", base.t()},
      {"strided", base.index({torch::indexing::Slice(), torch::indexing::Slice(0, 6, 2)})},
      {"offset", base.narrow(0, 1, 2)},
      {"expanded", torch::tensor({1.0f, 2.0f}).expand({3, 2})},
      {"int_view", torch::arange(10, torch::kInt64).slice(0, 1, 10, 3)},
  };
  const std::string path = likeness::testing::MakeTestTempDir("st_dense") + "/d.safetensors";
  // A std::map converts to NamedTensors too.
  std::map<std::string, torch::Tensor> as_map(tensors.begin(), tensors.end());
  ASSERT_TRUE(WriteSafetensors(path, NamedTensors(as_map.begin(), as_map.end())).ok());
  absl::StatusOr<std::shared_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  for (const auto& [name, expected] : tensors) {
    absl::StatusOr<torch::Tensor> loaded = (*file)->Get(name);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_TRUE(torch::equal(*loaded, expected)) << name;  // also compares shapes
  }
}

// Each call must fail, leave `old` byte-identical, and leave no temp file in the folder.
TEST(WriteSafetensorsTest, FailedWritesLeaveTheOldFileAndNoTemp) {
  const std::string dir = likeness::testing::MakeTestTempDir("st_atomic");
  const std::string path = dir + "/model.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, {{"old", torch::ones({8})}}).ok());
  const std::string old = ReadBytes(path);
  const torch::Tensor good = torch::zeros({4});

  struct Case {
    const char* what;
    NamedTensors tensors;
    absl::StatusCode code;
    const char* culprit;
  };
  const std::vector<Case> cases = {
      {"complex dtype",
       {{"good", good}, {"cplx", torch::zeros({2}, torch::kComplexFloat)}},
       absl::StatusCode::kInvalidArgument,
       "cplx"},
      {"undefined tensor",
       {{"good", good}, {"undef", torch::Tensor()}},
       absl::StatusCode::kInvalidArgument,
       "undef"},
      {"sparse tensor",
       {{"sparse", torch::eye(3).to_sparse()}},
       absl::StatusCode::kInvalidArgument,
       "sparse"},
      {"duplicate name", {{"dup", good}, {"dup", good}}, absl::StatusCode::kInvalidArgument, "dup"},
      {"reserved name",
       {{"__metadata__", good}},
       absl::StatusCode::kInvalidArgument,
       "__metadata__"},
      // Passes every check, then fails while copying to the CPU: the temp file already holds the
      // header when the error comes.
      {"meta tensor",
       {{"good", good}, {"meta", torch::empty({16}, torch::device(torch::kMeta))}},
       absl::StatusCode::kInternal,
       "meta"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_TRUE(IsErrorNaming(WriteSafetensors(path, c.tensors), c.code, path, c.culprit));
    EXPECT_EQ(ReadBytes(path), old);
    EXPECT_EQ(FolderEntries(dir), std::vector<std::string>{"model.safetensors"});
  }

  // And a successful overwrite replaces the content, still leaving one file.
  ASSERT_TRUE(WriteSafetensors(path, {{"new", torch::zeros({2}, torch::kInt64)}}).ok());
  EXPECT_NE(ReadBytes(path), old);
  EXPECT_EQ(FolderEntries(dir), std::vector<std::string>{"model.safetensors"});
  EXPECT_TRUE((*SafetensorsFile::Open(path))->Contains("new"));
}

TEST(WriteSafetensorsTest, MissingFolderIsNotFoundAndCreatesNothing) {
  const std::string dir = likeness::testing::MakeTestTempDir("st_nofolder");
  const std::string path = dir + "/missing/model.safetensors";
  EXPECT_TRUE(IsErrorNaming(WriteSafetensors(path, {{"w", torch::ones({2})}}),
                            absl::StatusCode::kNotFound, path, ""));
  EXPECT_TRUE(FolderEntries(dir).empty());
}

}  // namespace
}  // namespace likeness::safetensors
