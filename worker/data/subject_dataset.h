// A subject's photos made ready for training: decoded (EXIF orientation applied), resized and
// center-cropped to a square, with SDXL's micro-conditioning numbers and the instance prompt
// tokenized for both text encoders. Written as one .safetensors file so a training job on any
// node reads it with one mmap, and checked on read so a stale or foreign file is refused.
//
// File layout (all tensors in one .safetensors; metadata strings under __metadata__):
//   pixels          uint8 [N, 3, R, R]  RGB, the cropped squares
//   original_size   int64 [N, 2]        (height, width) of each photo as decoded
//   crop_top_left   int64 [N, 2]        (top, left) of the square in the resized photo
//   input_ids_1     int64 [77]          prompt for text encoder 1 (CLIP ViT-L), padded with <|endoftext|>
//   input_ids_2     int64 [77]          prompt for text encoder 2 (OpenCLIP bigG), padded with 0
//   metadata: likeness.kind = "subject_dataset", likeness.version, prompt, resolution,
//             files (JSON array, in row order)
#ifndef LIKENESS_WORKER_DATA_SUBJECT_DATASET_H_
#define LIKENESS_WORKER_DATA_SUBJECT_DATASET_H_

#include <torch/torch.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/image/image_io.h"

namespace likeness::data {

// SDXL base was trained at 1024 x 1024; smaller sizes train faster but lose detail.
inline constexpr int kDefaultResolution = 1024;
// Below 64 px the VAE's 8x downsampling leaves fewer than 8 latent pixels a side.
inline constexpr int kMinResolution = 64;
inline constexpr int kMaxResolution = 4096;
// Users bring 10-30 photos; more than this is almost certainly the wrong folder.
inline constexpr int kMaxSubjectImages = 1000;
inline constexpr char kDatasetKind[] = "subject_dataset";
inline constexpr int kDatasetFormatVersion = 1;

struct SubjectDatasetOptions {
  std::string subject_dir;      // Photos: *.jpg, *.jpeg, *.png, *.webp (any case), not recursive.
  std::string instance_prompt;  // "a photo of sks dog"
  std::string vocab_path;       // CLIP BPE vocabulary (.txt.gz or a tokenizer folder).
  int resolution = kDefaultResolution;
  image::DecodeOptions decode;
};

struct SubjectDataset {
  std::string prompt;
  int resolution = 0;
  std::vector<std::string> files;  // Base names, sorted; row i of every tensor is files[i].
  torch::Tensor pixels;            // uint8 [N, 3, R, R]
  torch::Tensor original_size;     // int64 [N, 2]
  torch::Tensor crop_top_left;     // int64 [N, 2]
  torch::Tensor input_ids_1;       // int64 [77]
  torch::Tensor input_ids_2;       // int64 [77]

  int size() const { return static_cast<int>(files.size()); }
};

// The photo files of a subject folder, sorted by name. NOT_FOUND if the folder is missing,
// INVALID_ARGUMENT if it holds no photo or more than kMaxSubjectImages.
absl::StatusOr<std::vector<std::string>> ListSubjectImages(const std::string& dir);

// Decodes every photo. One bad photo fails the whole build with an error naming every bad
// file, so no photo the user brought is silently left out of training.
absl::StatusOr<SubjectDataset> BuildSubjectDataset(const SubjectDatasetOptions& options);

absl::Status WriteSubjectDataset(const std::string& path, const SubjectDataset& dataset);

// Reads and validates a file WriteSubjectDataset wrote: kind, version, tensor names, dtypes
// and shapes; errors name the file and the field.
absl::StatusOr<SubjectDataset> ReadSubjectDataset(const std::string& path);

// A grid of thumbnails (row-major, `columns` wide), for a person to check the crops at a glance.
absl::StatusOr<image::Image> ContactSheet(const SubjectDataset& dataset, int thumbnail_size,
                                          int columns);

}  // namespace likeness::data

#endif  // LIKENESS_WORKER_DATA_SUBJECT_DATASET_H_
