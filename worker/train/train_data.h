// What the trainer reads from a subject folder, and how each photo becomes a training input:
//
//   1. ListTrainImages: the folder's photos (data::ListSubjectImages: sorted by name), each with
//      its caption: a same-name .txt beside it (a.jpg -> a.txt) through the caption template,
//      else the instance prompt.
//   2. Aspect-ratio buckets (MakeBuckets): SDXL's standard sizes near 1024^2 pixels, scaled to
//      the training resolution and rounded to the model's size multiple. Each photo goes to the
//      bucket nearest its aspect ratio (log-ratio distance), so every batch shares one shape.
//   3. PrepareImage: resize so the bucket is covered (antialiased bilinear, as torchvision),
//      center crop, optional horizontal flip, and SDXL's micro-conditioning from the real crop:
//      original size = the photo's, crop top-left = where the crop starts in the resized photo
//      (for a flipped image, measured from the flipped side, as diffusers' SDXL scripts do),
//      target size = the bucket.
#ifndef LIKENESS_WORKER_TRAIN_TRAIN_DATA_H_
#define LIKENESS_WORKER_TRAIN_TRAIN_DATA_H_

#include <torch/torch.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/image/image.h"

namespace likeness::train {

struct Bucket {
  int width = 0;
  int height = 0;
  bool operator==(const Bucket& other) const {
    return width == other.width && height == other.height;
  }
};

// SDXL's recommended training/generation sizes (width x height), all about 1024^2 pixels with
// sides multiples of 64: the square and the landscape/portrait pairs up to 2.4:1, the set
// Stability published with SDXL 1.0 and that kohya's SDXL bucketing settles on.
inline constexpr Bucket kSdxlBuckets[] = {
    {1024, 1024}, {1152, 896}, {896, 1152}, {1216, 832}, {832, 1216},
    {1344, 768},  {768, 1344}, {1536, 640}, {640, 1536},
};
inline constexpr int kSdxlBucketResolution = 1024;

// kSdxlBuckets scaled by resolution / 1024, each side rounded to the nearest multiple of
// `multiple` (at least one multiple); duplicates (tiny resolutions collapse pairs) dropped, the
// first kept. `bucketing` false: the one square bucket resolution x resolution.
std::vector<Bucket> MakeBuckets(int resolution, int multiple, bool bucketing);

// The index of the bucket whose aspect ratio is nearest width/height (the first on a tie).
int NearestBucket(const std::vector<Bucket>& buckets, int width, int height);

struct TrainImage {
  std::string path;
  std::string caption;
  int width = 0;   // decoded, EXIF orientation applied
  int height = 0;
  int bucket = 0;
};

// Steps 1 and 2 for a folder: decodes every photo once for its size. `caption_template` may
// hold "{caption}" (the .txt content, trimmed; empty without one); empty template: the .txt
// caption if there is one, else `default_prompt`. Errors name every bad file.
absl::StatusOr<std::vector<TrainImage>> ListTrainImages(const std::string& dir,
                                                        const std::string& caption_template,
                                                        const std::string& default_prompt,
                                                        const std::vector<Bucket>& buckets);

struct PreparedImage {
  torch::Tensor pixels;  // float32 [3, bucket height, bucket width] in [-1, 1]
  int original_height = 0, original_width = 0;
  int crop_top = 0, crop_left = 0;
  int target_height = 0, target_width = 0;
};

// Step 3. INVALID_ARGUMENT for a malformed image.
absl::StatusOr<PreparedImage> PrepareImage(const image::Image& photo, const Bucket& bucket,
                                           bool flip);

}  // namespace likeness::train

#endif  // LIKENESS_WORKER_TRAIN_TRAIN_DATA_H_
