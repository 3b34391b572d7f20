// A1111's model and LoRA hashes: sha256 of the file, or of a safetensors payload after its
// header, cached by path, size and mtime.
#include "worker/generate/file_hash.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "tests/test_data.h"

namespace likeness::generate {
namespace {

// sha256("abc"), FIPS 180-2 appendix B.1.
constexpr char kAbcSha256[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

class FileHashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTestTempDir("file_hash");
    setenv(kHashCacheEnv, dir_.c_str(), 1);
  }
  std::string dir_;
};

TEST_F(FileHashTest, WholeFileIsSha256) {
  WriteBytes(dir_ + "/abc.bin", "abc");
  absl::StatusOr<std::string> hash = FileSha256(dir_ + "/abc.bin", HashKind::kWholeFile);
  ASSERT_TRUE(hash.ok()) << hash.status();
  EXPECT_EQ(*hash, kAbcSha256);
  EXPECT_EQ(*ModelShortHash(dir_ + "/abc.bin"), std::string(kAbcSha256).substr(0, 10));
}

TEST_F(FileHashTest, SafetensorsPayloadSkipsTheHeader) {
  const std::string header = "{\"__metadata__\":{}}    ";  // 24 bytes
  std::string file(8, '\0');
  file[0] = static_cast<char>(header.size());
  WriteBytes(dir_ + "/lora.safetensors", file + header + "abc");
  EXPECT_EQ(*LoraShortHash(dir_ + "/lora.safetensors"), std::string(kAbcSha256).substr(0, 12));
  // Editing the metadata keeps the hash, as in A1111.
  const std::string header2 = "{\"__metadata__\":{\"a\":\"b\"}}      ";
  file[0] = static_cast<char>(header2.size());
  WriteBytes(dir_ + "/lora2.safetensors", file + header2 + "abc");
  EXPECT_EQ(*LoraShortHash(dir_ + "/lora2.safetensors"), std::string(kAbcSha256).substr(0, 12));
}

TEST_F(FileHashTest, CacheFollowsChangesToTheFile) {
  const std::string path = dir_ + "/changing.bin";
  WriteBytes(path, "abc");
  ASSERT_EQ(*FileSha256(path, HashKind::kWholeFile), kAbcSha256);
  WriteBytes(path, "abcd");  // a new size makes a new cache key
  EXPECT_NE(*FileSha256(path, HashKind::kWholeFile), kAbcSha256);
  std::ifstream cache(dir_ + "/hashes.json");
  EXPECT_TRUE(cache.good());
}

TEST_F(FileHashTest, ErrorsNameTheFile) {
  const absl::StatusOr<std::string> missing = FileSha256(dir_ + "/nope", HashKind::kWholeFile);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(missing.status().message()).find("nope"), std::string::npos);
  WriteBytes(dir_ + "/short.safetensors", "abc");
  EXPECT_EQ(LoraShortHash(dir_ + "/short.safetensors").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace likeness::generate
