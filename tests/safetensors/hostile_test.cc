// Hostile input: valid files cut short at many lengths and with header bytes changed at every
// position. Each must give an error with the right code naming the file, or (for changes that
// still make a valid file) a consistent header whose tensors all load. Nothing may crash; run
// under ASan/UBSan the same way (tests/fuzz covers random input).
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/safetensors/header.h"
#include "common/safetensors/safetensors_file.h"
#include "common/safetensors/writer.h"
#include "gtest/gtest.h"
#include "tests/safetensors/test_util.h"
#include "tests/test_data.h"

namespace likeness::safetensors {
namespace {

namespace fs = std::filesystem;
using testing::IsConsistent;
using testing::IsErrorNaming;
using testing::ReadBytes;
using testing::WriteBytes;

// Through the data section, every kDataStride-th cut length; every length in the header region.
constexpr size_t kDataStride = 61;
// Of those cuts, every kOpenEvery-th also goes through SafetensorsFile::Open (mmap path).
constexpr size_t kOpenEvery = 23;
// Most golden files are megabytes; the cut test uses the smallest one.
constexpr uintmax_t kMaxGoldenBytesToCut = 4 << 20;

// A file with every byte size, metadata, a scalar and an empty tensor, as our writer makes it.
std::string MakeSample(const std::string& dir) {
  const std::string path = dir + "/sample.safetensors";
  const absl::Status status = WriteSafetensors(path,
                                               {{"conv.weight", torch::randn({4, 3, 3, 3})},
                                                {"step", torch::tensor(int64_t{1234})},
                                                {"norm.bias", torch::randn({7}).to(torch::kHalf)},
                                                {"emb", torch::randn({5, 3}).to(torch::kBFloat16)},
                                                {"ids", torch::arange(9, torch::kInt32)},
                                                {"mask", torch::tensor({true, false, true})},
                                                {"codes", torch::arange(11, torch::kUInt8)},
                                                {"none", torch::zeros({0, 2})},
                                                {"scale", torch::tensor(0.5, torch::kFloat64)}},
                                               {{"format", "pt"}, {"note", "hostile input test"}});
  EXPECT_TRUE(status.ok()) << status;
  return path;
}

std::vector<size_t> CutLengths(uint64_t data_offset, uint64_t size) {
  std::vector<size_t> cuts;
  for (size_t n = 0; n < data_offset && n < size; ++n) cuts.push_back(n);
  for (size_t n = data_offset; n < size; n += kDataStride) cuts.push_back(n);
  cuts.push_back(size - 1);
  return cuts;
}

void ExpectEveryCutIsDataLoss(const std::string& source, const std::string& dir) {
  const std::string bytes = ReadBytes(source);
  absl::StatusOr<Header> full = ParseHeader(bytes, source);
  ASSERT_TRUE(full.ok()) << full.status();
  const std::string cut_path = dir + "/cut.safetensors";
  const std::vector<size_t> cuts = CutLengths(full->data_offset(), bytes.size());
  for (size_t i = 0; i < cuts.size(); ++i) {
    const size_t n = cuts[i];
    const absl::Status parsed = ParseHeader(absl::string_view(bytes).substr(0, n), source).status();
    EXPECT_TRUE(IsErrorNaming(parsed, absl::StatusCode::kDataLoss, source, "")) << "cut at " << n;
    if (i % kOpenEvery == 0) {
      WriteBytes(cut_path, absl::string_view(bytes).substr(0, n));
      EXPECT_TRUE(IsErrorNaming(SafetensorsFile::Open(cut_path).status(),
                                absl::StatusCode::kDataLoss, cut_path, ""))
          << "cut at " << n;
    }
  }
}

TEST(HostileInputTest, EveryCutOfAWrittenFileIsDataLoss) {
  const std::string dir = likeness::testing::MakeTestTempDir("st_cut");
  ExpectEveryCutIsDataLoss(MakeSample(dir), dir);
}

TEST(HostileInputTest, EveryCutOfTheSmallestGoldenFileIsDataLoss) {
  const std::string golden = likeness::testing::GoldenDir();
  std::string smallest;
  uintmax_t smallest_size = kMaxGoldenBytesToCut;
  if (fs::is_directory(golden)) {
    for (const auto& entry : fs::directory_iterator(golden)) {
      if (entry.path().extension() != ".safetensors") continue;
      if (entry.file_size() <= smallest_size) {
        smallest = entry.path().string();
        smallest_size = entry.file_size();
      }
    }
  }
  if (smallest.empty()) {
    GTEST_SKIP() << "no .safetensors under " << kMaxGoldenBytesToCut << " bytes in " << golden
                 << " (GoldenFilesTest reports a missing folder)";
  }
  ExpectEveryCutIsDataLoss(smallest, likeness::testing::MakeTestTempDir("st_cut_golden"));
}

// The bytes a mutation writes at one position: every single-bit flip, and the characters that
// change JSON structure or numbers.
std::vector<char> Mutations(char original) {
  std::vector<char> out;
  for (int bit = 0; bit < 8; ++bit) out.push_back(static_cast<char>(original ^ (1 << bit)));
  for (const char c : std::string("\"{}[],:09-e. \0\xff", 16)) {
    if (c != original) out.push_back(c);
  }
  return out;
}

TEST(HostileInputTest, ChangedHeaderBytesGiveAnErrorOrAConsistentFile) {
  const std::string dir = likeness::testing::MakeTestTempDir("st_flip");
  const std::string source = MakeSample(dir);
  const std::string bytes = ReadBytes(source);
  absl::StatusOr<Header> original = ParseHeader(bytes, source);
  ASSERT_TRUE(original.ok()) << original.status();
  const std::string mutated_path = dir + "/mutated.safetensors";
  int errors = 0;
  int still_valid = 0;
  for (size_t pos = 0; pos < original->data_offset(); ++pos) {
    for (const char c : Mutations(bytes[pos])) {
      std::string mutated = bytes;
      mutated[pos] = c;
      absl::StatusOr<Header> header = ParseHeader(mutated, source);
      if (!header.ok()) {
        ++errors;
        const absl::StatusCode code = header.status().code();
        EXPECT_TRUE(code == absl::StatusCode::kInvalidArgument ||
                    code == absl::StatusCode::kDataLoss)
            << "byte " << pos << ": " << header.status();
        EXPECT_TRUE(IsErrorNaming(header.status(), code, source, "")) << "byte " << pos;
        continue;
      }
      // Still a valid file (a changed name, metadata value or padding): it must be one in full.
      ++still_valid;
      ASSERT_TRUE(IsConsistent(*header, mutated.size())) << "byte " << pos;
      WriteBytes(mutated_path, mutated);
      absl::StatusOr<std::shared_ptr<SafetensorsFile>> file = SafetensorsFile::Open(mutated_path);
      ASSERT_TRUE(file.ok()) << file.status();
      for (const std::string& name : (*file)->Names()) {
        absl::StatusOr<torch::Tensor> t = (*file)->Get(name);
        ASSERT_TRUE(t.ok()) << "byte " << pos << ": " << t.status();
        EXPECT_EQ(static_cast<uint64_t>(t->numel()), (*file)->header().Find(name)->num_elements());
      }
    }
  }
  RecordProperty("errors", errors);
  RecordProperty("still_valid", still_valid);
  // Both outcomes must actually have been exercised, or the test proves little.
  EXPECT_GT(errors, 1000);
  EXPECT_GT(still_valid, 10);
}

}  // namespace
}  // namespace likeness::safetensors
