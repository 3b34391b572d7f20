#include "common/atomic_file.h"

#include <filesystem>

#include "common/status_macros.h"
#include "gtest/gtest.h"
#include "tests/test_data.h"

namespace likeness {
namespace {

namespace fs = std::filesystem;

TEST(AtomicFileTest, CommitPublishesContentAndLeavesNoTemp) {
  const std::string dir = testing::MakeTestTempDir("atomic_commit");
  const std::string path = dir + "/out.bin";
  ASSERT_TRUE(WriteFileAtomically(path, "hello").ok());
  auto read = ReadFileToString(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "hello");
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++entries;
  EXPECT_EQ(entries, 1);
}

TEST(AtomicFileTest, AbandonedWriteKeepsOldContent) {
  const std::string dir = testing::MakeTestTempDir("atomic_abandon");
  const std::string path = dir + "/out.bin";
  ASSERT_TRUE(WriteFileAtomically(path, "old").ok());
  {
    auto writer = AtomicFileWriter::Create(path);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE(writer->Append("new content never committed").ok());
    EXPECT_TRUE(fs::exists(writer->temp_path()));
  }  // Destroyed without Commit: a crash mid-write looks like this.
  EXPECT_EQ(*ReadFileToString(path), "old");
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++entries;
  EXPECT_EQ(entries, 1);
}

TEST(AtomicFileTest, MissingFolderIsNotFoundNamingThePath) {
  absl::Status status = WriteFileAtomically("/nonexistent-likeness-dir/x.bin", "x");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(status.message().find("/nonexistent-likeness-dir/x.bin"), std::string::npos);
  EXPECT_EQ(ReadFileToString("/nonexistent-likeness-dir/x.bin").status().code(),
            absl::StatusCode::kNotFound);
}

absl::StatusOr<int> Half(int x) {
  if (x % 2 != 0) return absl::InvalidArgumentError("odd");
  return x / 2;
}

absl::StatusOr<int> Quarter(int x) {
  LIKENESS_ASSIGN_OR_RETURN(int half, Half(x));
  LIKENESS_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

absl::Status CheckEven(int x) {
  LIKENESS_RETURN_IF_ERROR(Half(x).status());
  return absl::OkStatus();
}

TEST(StatusMacrosTest, PropagateFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_FALSE(CheckEven(3).ok());
}

}  // namespace
}  // namespace likeness
