// Loading the vocabulary: both formats, and errors that name the file (and line) at fault.
#include "worker/text/bpe_vocab.h"

#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_data.h"
#include "tests/text/tokenizer_cases.h"
#include "worker/text/clip_tokenizer.h"

namespace likeness::testing {
namespace {

using ::testing::HasSubstr;
using text::ClipTokenizer;

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
  ASSERT_TRUE(out.good()) << path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteGzip(const std::string& path, const std::string& contents) {
  gzFile file = gzopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr) << path;
  ASSERT_EQ(gzwrite(file, contents.data(), static_cast<unsigned>(contents.size())),
            static_cast<int>(contents.size()));
  ASSERT_EQ(gzclose(file), Z_OK);
}

// A tiny but complete merges file: the header line, then merges.
constexpr char kTinyMerges[] = "\"tiny#version: 0.2\ni n\nt h\nth e</w>\n";

class BpeVocabTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTestTempDir("bpe_vocab"); }
  std::string dir_;
};

TEST_F(BpeVocabTest, TinyMergesFileGivesClipLayout) {
  const std::string path = dir_ + "/tiny.txt.gz";
  WriteGzip(path, kTinyMerges);
  auto tokenizer = ClipTokenizer::Load(path);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  // Python would also make a merge of the empty string after the final newline; a file's
  // end is not a merge here.
  EXPECT_EQ(tokenizer->vocab_size(), 512 + 3 + 2);
  EXPECT_EQ(tokenizer->start_of_text(), 515);
  EXPECT_EQ(tokenizer->end_of_text(), 516);
  EXPECT_EQ(tokenizer->Encode("the"), std::vector<int>{514});  // "th" then "th e</w>".
  EXPECT_EQ(tokenizer->Decode(tokenizer->Encode("in the thin")), "in the thin ");
  // Uncompressed text reads the same (zlib passes it through).
  const std::string plain = dir_ + "/tiny.txt";
  WriteFile(plain, kTinyMerges);
  auto from_plain = ClipTokenizer::Load(plain);
  ASSERT_TRUE(from_plain.ok()) << from_plain.status();
  EXPECT_EQ(from_plain->Encode("in the thin"), tokenizer->Encode("in the thin"));
}

TEST_F(BpeVocabTest, MissingFileIsNotFoundNamingThePath) {
  const std::string path = dir_ + "/no_such_vocab.txt.gz";
  auto tokenizer = ClipTokenizer::Load(path);
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(tokenizer.status().message(), HasSubstr(path));
}

TEST_F(BpeVocabTest, TruncatedGzipIsCorruptNamingThePath) {
  const std::string original = ReadFile(BpeVocabPath());
  ASSERT_GT(original.size(), 1000u) << "read " << BpeVocabPath();
  if (original.compare(0, 2, "\x1f\x8b") != 0) GTEST_SKIP() << BpeVocabPath() << " is not gzip";
  const std::string path = dir_ + "/truncated.txt.gz";
  WriteFile(path, original.substr(0, original.size() / 2));
  auto tokenizer = ClipTokenizer::Load(path);
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kDataLoss) << tokenizer.status();
  EXPECT_THAT(tokenizer.status().message(), HasSubstr(path));
}

TEST_F(BpeVocabTest, GarbledGzipIsCorruptNamingThePath) {
  std::string data;
  const std::string path = dir_ + "/garbled.txt.gz";
  WriteGzip(path, std::string(kTinyMerges) + std::string(10000, 'x'));
  data = ReadFile(path);
  for (size_t i = 12; i < data.size() - 8; i += 7) data[i] = static_cast<char>(data[i] ^ 0x5A);
  WriteFile(path, data);
  auto tokenizer = ClipTokenizer::Load(path);
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kDataLoss) << tokenizer.status();
  EXPECT_THAT(tokenizer.status().message(), HasSubstr(path));
}

TEST_F(BpeVocabTest, MalformedMergesLineNamesFileAndLine) {
  for (const bool gzip : {true, false}) {
    const std::string path = dir_ + (gzip ? "/bad_line.txt.gz" : "/bad_line.txt");
    const std::string contents = "#version: 0.2\ni n\nt h e\nth e</w>\n";
    if (gzip) {
      WriteGzip(path, contents);
    } else {
      WriteFile(path, contents);
    }
    auto tokenizer = ClipTokenizer::Load(path);
    ASSERT_FALSE(tokenizer.ok());
    EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(tokenizer.status().message(), HasSubstr(path + ":3:"));
    EXPECT_THAT(tokenizer.status().message(), HasSubstr("'t h e'"));
  }
}

TEST_F(BpeVocabTest, DiffusersFolderErrorsNameTheFile) {
  // No vocab.json at all.
  auto empty = ClipTokenizer::Load(dir_);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(empty.status().message(), HasSubstr(dir_ + "/vocab.json"));

  // A complete folder from the tiny vocabulary, then broken one file at a time.
  const std::string tiny = dir_ + "/tiny.txt";
  WriteFile(tiny, kTinyMerges);
  auto vocab = text::LoadBpeVocab(tiny);
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  const std::string folder = dir_ + "/tokenizer";
  std::filesystem::create_directories(folder);
  ASSERT_TRUE(WriteDiffusersTokenizerFolder(*vocab, folder).ok());
  auto good = ClipTokenizer::Load(folder);
  ASSERT_TRUE(good.ok()) << good.status();
  // "in" has no merge with "n</w>"; "thin" merges only "t h".
  EXPECT_EQ(good->Encode("in the thin"), std::vector<int>({72, 333, 514, 513, 72, 333}));

  WriteFile(folder + "/vocab.json", "{\"a\": 1,\n \"b\": }\n");
  auto bad_json = ClipTokenizer::Load(folder);
  ASSERT_FALSE(bad_json.ok());
  EXPECT_THAT(bad_json.status().message(), HasSubstr(folder + "/vocab.json:2:"));

  ASSERT_TRUE(WriteDiffusersTokenizerFolder(*vocab, folder).ok());
  WriteFile(folder + "/merges.txt", "#version: 0.2\ni n\nq z\n");
  auto unknown_merge = ClipTokenizer::Load(folder);
  ASSERT_FALSE(unknown_merge.ok());
  EXPECT_THAT(unknown_merge.status().message(), HasSubstr(folder + "/merges.txt:3:"));

  WriteFile(folder + "/merges.txt", "#version: 0.2\ni n\nthe\n");
  auto malformed = ClipTokenizer::Load(folder);
  ASSERT_FALSE(malformed.ok());
  EXPECT_THAT(malformed.status().message(), HasSubstr(folder + "/merges.txt:3: malformed"));

  WriteFile(folder + "/vocab.json", "{\"a\": 0, \"b\": 1}");
  auto incomplete = ClipTokenizer::Load(folder);
  ASSERT_FALSE(incomplete.ok());
  EXPECT_THAT(incomplete.status().message(), HasSubstr(folder + "/vocab.json: lacks the token"));
}

}  // namespace
}  // namespace likeness::testing
