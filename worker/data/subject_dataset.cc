#include "worker/data/subject_dataset.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/safetensors/safetensors_file.h"
#include "common/safetensors/writer.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "worker/image/image_tensor.h"
#include "worker/text/clip_tokenizer.h"

namespace likeness::data {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPhotoExtensions[] = {".jpg", ".jpeg", ".png", ".webp"};
constexpr int kMicroConditioningPairs = 2;

bool IsPhoto(const fs::path& path) {
  const std::string ext = absl::AsciiStrToLower(path.extension().string());
  return std::any_of(std::begin(kPhotoExtensions), std::end(kPhotoExtensions),
                     [&](const char* e) { return ext == e; });
}

torch::Tensor IdsTensor(const std::vector<int>& ids) {
  std::vector<int64_t> wide(ids.begin(), ids.end());
  return torch::tensor(wide, torch::kInt64);
}

absl::Status CheckTensor(const std::string& path, const std::string& name, const torch::Tensor& t,
                         c10::ScalarType dtype, const std::vector<int64_t>& shape) {
  if (t.scalar_type() != dtype || t.sizes() != c10::IntArrayRef(shape)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": tensor '", name, "' should be ", c10::toString(dtype), " [",
        absl::StrJoin(shape, ", "), "] but is ", c10::toString(t.scalar_type()), " [",
        absl::StrJoin(t.sizes().vec(), ", "), "]"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ListSubjectImages(const std::string& dir) {
  std::error_code error;
  if (!fs::is_directory(dir, error)) {
    return absl::NotFoundError(absl::StrCat("subject folder ", dir, " does not exist or is not a folder"));
  }
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    if (entry.is_regular_file() && IsPhoto(entry.path())) files.push_back(entry.path().filename().string());
  }
  if (error) return absl::InternalError(absl::StrCat("cannot list ", dir, ": ", error.message()));
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("subject folder ", dir,
                                                   " holds no .jpg, .jpeg, .png or .webp photo"));
  }
  if (files.size() > static_cast<size_t>(kMaxSubjectImages)) {
    return absl::InvalidArgumentError(absl::StrCat("subject folder ", dir, " holds ", files.size(),
                                                   " photos, more than ", kMaxSubjectImages));
  }
  return files;
}

absl::StatusOr<SubjectDataset> BuildSubjectDataset(const SubjectDatasetOptions& options) {
  if (options.resolution < kMinResolution || options.resolution > kMaxResolution ||
      options.resolution % 8 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("resolution ", options.resolution, " must be a multiple of 8 in [",
                                                   kMinResolution, ", ", kMaxResolution, "]"));
  }
  if (absl::StripAsciiWhitespace(options.instance_prompt).empty()) {
    return absl::InvalidArgumentError("the instance prompt is empty");
  }
  LIKENESS_ASSIGN_OR_RETURN(text::ClipTokenizer tokenizer, text::ClipTokenizer::Load(options.vocab_path));
  LIKENESS_ASSIGN_OR_RETURN(std::vector<std::string> files, ListSubjectImages(options.subject_dir));

  SubjectDataset dataset;
  dataset.prompt = options.instance_prompt;
  dataset.resolution = options.resolution;
  std::vector<torch::Tensor> crops;
  std::vector<int64_t> original_size, crop_top_left;
  std::vector<std::string> errors;
  for (const std::string& name : files) {
    const std::string path = (fs::path(options.subject_dir) / name).string();
    absl::StatusOr<image::Image> decoded = image::DecodeImageFile(path, options.decode);
    absl::StatusOr<torch::Tensor> chw =
        decoded.ok() ? image::ImageToTensor(*decoded) : absl::StatusOr<torch::Tensor>(decoded.status());
    absl::StatusOr<image::SquareCrop> crop =
        chw.ok() ? image::ResizeAndCenterCrop(*chw, options.resolution)
                 : absl::StatusOr<image::SquareCrop>(chw.status());
    if (!crop.ok()) {
      errors.push_back(std::string(crop.status().message()));
      continue;
    }
    dataset.files.push_back(name);
    // [3, R, R] float in [0, 1] -> uint8: a quarter of the bytes, exact for 8-bit photos.
    crops.push_back(crop->pixels.mul(255.0).round_().clamp_(0, 255).to(torch::kUInt8));
    original_size.insert(original_size.end(), {crop->original_height, crop->original_width});
    crop_top_left.insert(crop_top_left.end(), {crop->crop_top, crop->crop_left});
  }
  if (!errors.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(errors.size(), " of ", files.size(),
                                                   " photos in ", options.subject_dir,
                                                   " cannot be used:\n  ", absl::StrJoin(errors, "\n  ")));
  }
  const int64_t n = static_cast<int64_t>(dataset.files.size());
  dataset.pixels = torch::stack(crops);
  dataset.original_size = torch::tensor(original_size, torch::kInt64).view({n, kMicroConditioningPairs});
  dataset.crop_top_left = torch::tensor(crop_top_left, torch::kInt64).view({n, kMicroConditioningPairs});
  dataset.input_ids_1 = IdsTensor(tokenizer.Tokenize(options.instance_prompt, text::PadStyle::kEndOfText));
  dataset.input_ids_2 = IdsTensor(tokenizer.Tokenize(options.instance_prompt, text::PadStyle::kZero));
  return dataset;
}

absl::Status WriteSubjectDataset(const std::string& path, const SubjectDataset& dataset) {
  const std::map<std::string, std::string> metadata = {
      {"likeness.kind", kDatasetKind},
      {"likeness.version", std::to_string(kDatasetFormatVersion)},
      {"prompt", dataset.prompt},
      {"resolution", std::to_string(dataset.resolution)},
      {"files", nlohmann::json(dataset.files).dump()},
  };
  return safetensors::WriteSafetensors(path,
                                       {{"pixels", dataset.pixels},
                                        {"original_size", dataset.original_size},
                                        {"crop_top_left", dataset.crop_top_left},
                                        {"input_ids_1", dataset.input_ids_1},
                                        {"input_ids_2", dataset.input_ids_2}},
                                       metadata);
}

absl::StatusOr<SubjectDataset> ReadSubjectDataset(const std::string& path) {
  LIKENESS_ASSIGN_OR_RETURN(std::shared_ptr<safetensors::SafetensorsFile> file,
                            safetensors::SafetensorsFile::Open(path));
  const auto& meta = file->metadata();
  auto field = [&](const std::string& key) -> absl::StatusOr<std::string> {
    auto it = meta.find(key);
    if (it == meta.end()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": metadata field '", key, "' is missing"));
    }
    return it->second;
  };
  LIKENESS_ASSIGN_OR_RETURN(std::string kind, field("likeness.kind"));
  if (kind != kDatasetKind) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": likeness.kind is '", kind, "', not '", kDatasetKind, "'"));
  }
  LIKENESS_ASSIGN_OR_RETURN(std::string version, field("likeness.version"));
  if (version != std::to_string(kDatasetFormatVersion)) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": dataset format version ", version,
                                                      ", this build reads ", kDatasetFormatVersion));
  }
  SubjectDataset dataset;
  LIKENESS_ASSIGN_OR_RETURN(dataset.prompt, field("prompt"));
  LIKENESS_ASSIGN_OR_RETURN(std::string resolution, field("resolution"));
  if (!absl::SimpleAtoi(resolution, &dataset.resolution) || dataset.resolution < kMinResolution ||
      dataset.resolution > kMaxResolution) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": resolution '", resolution, "' is not valid"));
  }
  LIKENESS_ASSIGN_OR_RETURN(std::string files_json, field("files"));
  nlohmann::json files = nlohmann::json::parse(files_json, nullptr, /*allow_exceptions=*/false);
  if (!files.is_array() || !std::all_of(files.begin(), files.end(), [](const auto& f) { return f.is_string(); })) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": metadata field 'files' is not a JSON array of names"));
  }
  dataset.files = files.get<std::vector<std::string>>();
  const int64_t n = static_cast<int64_t>(dataset.files.size());
  const int64_t r = dataset.resolution;
  const int64_t ids = text::kMaxLength;
  LIKENESS_ASSIGN_OR_RETURN(dataset.pixels, file->Get("pixels"));
  LIKENESS_ASSIGN_OR_RETURN(dataset.original_size, file->Get("original_size"));
  LIKENESS_ASSIGN_OR_RETURN(dataset.crop_top_left, file->Get("crop_top_left"));
  LIKENESS_ASSIGN_OR_RETURN(dataset.input_ids_1, file->Get("input_ids_1"));
  LIKENESS_ASSIGN_OR_RETURN(dataset.input_ids_2, file->Get("input_ids_2"));
  LIKENESS_RETURN_IF_ERROR(CheckTensor(path, "pixels", dataset.pixels, torch::kUInt8, {n, 3, r, r}));
  LIKENESS_RETURN_IF_ERROR(CheckTensor(path, "original_size", dataset.original_size, torch::kInt64, {n, 2}));
  LIKENESS_RETURN_IF_ERROR(CheckTensor(path, "crop_top_left", dataset.crop_top_left, torch::kInt64, {n, 2}));
  LIKENESS_RETURN_IF_ERROR(CheckTensor(path, "input_ids_1", dataset.input_ids_1, torch::kInt64, {ids}));
  LIKENESS_RETURN_IF_ERROR(CheckTensor(path, "input_ids_2", dataset.input_ids_2, torch::kInt64, {ids}));
  return dataset;
}

absl::StatusOr<image::Image> ContactSheet(const SubjectDataset& dataset, int thumbnail_size, int columns) {
  if (dataset.size() == 0 || thumbnail_size <= 0 || columns <= 0) {
    return absl::InvalidArgumentError("a contact sheet needs images, a thumbnail size and columns");
  }
  const int rows = (dataset.size() + columns - 1) / columns;
  const int cols = std::min(columns, dataset.size());
  // [N, 3, R, R] uint8 -> float [N, 3, T, T], antialiased like the training crops.
  torch::Tensor thumbs = torch::nn::functional::interpolate(
      dataset.pixels.to(torch::kFloat32).div(255.0),
      torch::nn::functional::InterpolateFuncOptions()
          .size(std::vector<int64_t>{thumbnail_size, thumbnail_size})
          .mode(torch::kBilinear)
          .align_corners(false)
          .antialias(true));
  torch::Tensor sheet = torch::ones({3, rows * thumbnail_size, cols * thumbnail_size});
  for (int i = 0; i < dataset.size(); ++i) {
    const int64_t top = (i / columns) * thumbnail_size, left = (i % columns) * thumbnail_size;
    sheet.narrow(1, top, thumbnail_size).narrow(2, left, thumbnail_size).copy_(thumbs[i]);
  }
  return image::TensorToImage(sheet);
}

}  // namespace likeness::data
