#include "worker/data/subject_dataset.h"

#include <filesystem>
#include <fstream>

#include "common/atomic_file.h"
#include "gtest/gtest.h"
#include "tests/test_data.h"
#include "worker/image/image_io.h"

namespace likeness::data {
namespace {

namespace fs = std::filesystem;

// Small, so the test decodes real photos but stays fast.
constexpr int kTestResolution = 128;

SubjectDatasetOptions Options(const std::string& dir) {
  SubjectDatasetOptions options;
  options.subject_dir = dir;
  options.instance_prompt = "a photo of sks dog";
  options.vocab_path = testing::BpeVocabPath();
  options.resolution = kTestResolution;
  return options;
}

TEST(SubjectDatasetTest, BuildsFromRealPhotosWithMicroConditioning) {
  const std::string dir = testing::FirstSubjectDir();
  ASSERT_FALSE(dir.empty()) << "no subject folder under " << testing::DreamBenchDir();
  auto files = ListSubjectImages(dir);
  ASSERT_TRUE(files.ok()) << files.status();
  auto dataset = BuildSubjectDataset(Options(dir));
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  const int64_t n = static_cast<int64_t>(files->size());
  EXPECT_EQ(dataset->files, *files);
  EXPECT_EQ(dataset->pixels.sizes(), (std::vector<int64_t>{n, 3, kTestResolution, kTestResolution}));
  EXPECT_EQ(dataset->pixels.scalar_type(), torch::kUInt8);
  for (int64_t i = 0; i < n; ++i) {
    auto photo = image::DecodeImageFile(dir + "/" + (*files)[i]);
    ASSERT_TRUE(photo.ok()) << photo.status();
    EXPECT_EQ(dataset->original_size[i][0].item<int64_t>(), photo->height) << (*files)[i];
    EXPECT_EQ(dataset->original_size[i][1].item<int64_t>(), photo->width) << (*files)[i];
    // The crop sits inside the resized photo and along its long side only.
    const int64_t top = dataset->crop_top_left[i][0].item<int64_t>();
    const int64_t left = dataset->crop_top_left[i][1].item<int64_t>();
    EXPECT_TRUE(top == 0 || left == 0) << (*files)[i];
    EXPECT_GE(top, 0);
    EXPECT_GE(left, 0);
    // Real photos are not blank: the crop has contrast.
    EXPECT_GT(dataset->pixels[i].to(torch::kFloat32).std().item<float>(), 5.0f) << (*files)[i];
  }
  EXPECT_EQ(dataset->input_ids_1[0].item<int64_t>(), 49406);
  EXPECT_EQ(dataset->input_ids_1[76].item<int64_t>(), 49407);  // padded with <|endoftext|>
  EXPECT_EQ(dataset->input_ids_2[76].item<int64_t>(), 0);      // padded with '!'
}

TEST(SubjectDatasetTest, WriteReadRoundTripAndContactSheet) {
  auto dataset = BuildSubjectDataset(Options(testing::FirstSubjectDir()));
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  const std::string path = testing::MakeTestTempDir("subject_roundtrip") + "/dataset.safetensors";
  ASSERT_TRUE(WriteSubjectDataset(path, *dataset).ok());
  auto read = ReadSubjectDataset(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->files, dataset->files);
  EXPECT_EQ(read->prompt, dataset->prompt);
  EXPECT_EQ(read->resolution, dataset->resolution);
  EXPECT_TRUE(read->pixels.equal(dataset->pixels));
  EXPECT_TRUE(read->original_size.equal(dataset->original_size));
  EXPECT_TRUE(read->crop_top_left.equal(dataset->crop_top_left));
  EXPECT_TRUE(read->input_ids_2.equal(dataset->input_ids_2));

  constexpr int kThumb = 32, kColumns = 4;
  auto sheet = ContactSheet(*dataset, kThumb, kColumns);
  ASSERT_TRUE(sheet.ok()) << sheet.status();
  const int rows = (dataset->size() + kColumns - 1) / kColumns;
  EXPECT_EQ(sheet->height, rows * kThumb);
  EXPECT_EQ(sheet->width, std::min(kColumns, dataset->size()) * kThumb);
  EXPECT_EQ(sheet->channels, 3);
}

TEST(SubjectDatasetTest, OneCorruptPhotoFailsNamingIt) {
  const std::string src = testing::FirstSubjectDir();
  const std::string dir = testing::MakeTestTempDir("subject_corrupt");
  auto files = ListSubjectImages(src);
  ASSERT_TRUE(files.ok());
  for (const std::string& f : *files) fs::copy_file(src + "/" + f, dir + "/" + f);
  auto bytes = ReadFileToString(src + "/" + files->front());
  ASSERT_TRUE(bytes.ok());
  ASSERT_TRUE(WriteFileAtomically(dir + "/" + files->front(), bytes->substr(0, bytes->size() / 2)).ok());
  std::ofstream(dir + "/notes.txt") << "not a photo, ignored";
  auto dataset = BuildSubjectDataset(Options(dir));
  ASSERT_FALSE(dataset.ok());
  EXPECT_NE(dataset.status().message().find(files->front()), std::string::npos) << dataset.status();
  EXPECT_NE(dataset.status().message().find("1 of " + std::to_string(files->size())), std::string::npos)
      << dataset.status();
}

TEST(SubjectDatasetTest, BadInputsGiveClearErrors) {
  const std::string empty = testing::MakeTestTempDir("subject_empty");
  EXPECT_EQ(ListSubjectImages(empty).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ListSubjectImages(empty + "/missing").status().code(), absl::StatusCode::kNotFound);
  SubjectDatasetOptions options = Options(testing::FirstSubjectDir());
  options.resolution = 100;  // not a multiple of 8
  EXPECT_NE(BuildSubjectDataset(options).status().message().find("100"), std::string::npos);
  options = Options(testing::FirstSubjectDir());
  options.instance_prompt = "   ";
  EXPECT_EQ(BuildSubjectDataset(options).status().code(), absl::StatusCode::kInvalidArgument);

  // A dataset file of another kind is refused by name.
  const std::string path = testing::MakeTestTempDir("subject_kind") + "/other.safetensors";
  ASSERT_TRUE(WriteFileAtomically(path, std::string("\x02\x00\x00\x00\x00\x00\x00\x00{}", 10)).ok());
  auto read = ReadSubjectDataset(path);
  ASSERT_FALSE(read.ok());
  EXPECT_NE(read.status().message().find("likeness.kind"), std::string::npos) << read.status();
}

}  // namespace
}  // namespace likeness::data
