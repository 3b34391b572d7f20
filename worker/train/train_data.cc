#include "worker/train/train_data.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "common/atomic_file.h"
#include "common/status_macros.h"
#include "worker/data/subject_dataset.h"
#include "worker/image/image_io.h"
#include "worker/image/image_tensor.h"

namespace likeness::train {
namespace fs = std::filesystem;
namespace {

constexpr char kCaptionPlaceholder[] = "{caption}";
constexpr char kCaptionExtension[] = ".txt";

int RoundToMultiple(double value, int multiple) {
  return std::max(multiple, static_cast<int>(std::lround(value / multiple)) * multiple);
}

}  // namespace

std::vector<Bucket> MakeBuckets(int resolution, int multiple, bool bucketing) {
  if (!bucketing) return {Bucket{resolution, resolution}};
  const double scale = static_cast<double>(resolution) / kSdxlBucketResolution;
  std::vector<Bucket> buckets;
  for (const Bucket& b : kSdxlBuckets) {
    const Bucket scaled{RoundToMultiple(b.width * scale, multiple),
                        RoundToMultiple(b.height * scale, multiple)};
    if (std::find(buckets.begin(), buckets.end(), scaled) == buckets.end()) {
      buckets.push_back(scaled);
    }
  }
  return buckets;
}

int NearestBucket(const std::vector<Bucket>& buckets, int width, int height) {
  const double ratio = std::log(static_cast<double>(width) / height);
  int best = 0;
  double best_distance = INFINITY;
  for (size_t i = 0; i < buckets.size(); ++i) {
    const double d =
        std::abs(ratio - std::log(static_cast<double>(buckets[i].width) / buckets[i].height));
    if (d < best_distance) {
      best_distance = d;
      best = static_cast<int>(i);
    }
  }
  return best;
}

absl::StatusOr<std::vector<TrainImage>> ListTrainImages(const std::string& dir,
                                                        const std::string& caption_template,
                                                        const std::string& default_prompt,
                                                        const std::vector<Bucket>& buckets) {
  LIKENESS_ASSIGN_OR_RETURN(std::vector<std::string> names, data::ListSubjectImages(dir));
  std::vector<TrainImage> images;
  std::vector<std::string> errors;
  for (const std::string& name : names) {
    TrainImage item;
    item.path = (fs::path(dir) / name).string();
    absl::StatusOr<image::Image> photo = image::DecodeImageFile(item.path);
    if (!photo.ok()) {
      errors.push_back(std::string(photo.status().message()));
      continue;
    }
    item.width = photo->width;
    item.height = photo->height;
    item.bucket = NearestBucket(buckets, item.width, item.height);
    const fs::path caption_path = fs::path(item.path).replace_extension(kCaptionExtension);
    std::string caption;
    bool has_caption = false;
    std::error_code error;
    if (fs::is_regular_file(caption_path, error)) {
      LIKENESS_ASSIGN_OR_RETURN(std::string text, ReadFileToString(caption_path.string()));
      caption = std::string(absl::StripAsciiWhitespace(text));
      has_caption = true;
    }
    if (!caption_template.empty()) {
      item.caption = absl::StrReplaceAll(caption_template, {{kCaptionPlaceholder, caption}});
    } else {
      item.caption = has_caption ? caption : default_prompt;
    }
    images.push_back(std::move(item));
  }
  if (!errors.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", errors.size(), " photo(s): ", absl::StrJoin(errors, "; ")));
  }
  return images;
}

absl::StatusOr<PreparedImage> PrepareImage(const image::Image& photo, const Bucket& bucket,
                                           bool flip) {
  LIKENESS_ASSIGN_OR_RETURN(torch::Tensor chw, image::ImageToTensor(photo));
  PreparedImage out;
  out.original_height = photo.height;
  out.original_width = photo.width;
  out.target_height = bucket.height;
  out.target_width = bucket.width;
  // The smallest scale at which the photo covers the bucket; the other side is cropped.
  const double scale = std::max(static_cast<double>(bucket.width) / photo.width,
                                static_cast<double>(bucket.height) / photo.height);
  const int64_t new_width = std::max<int64_t>(bucket.width, std::lround(photo.width * scale));
  const int64_t new_height = std::max<int64_t>(bucket.height, std::lround(photo.height * scale));
  // Half margins rounded half to even, as torchvision's CenterCrop (Python's round()).
  out.crop_top = static_cast<int>(std::nearbyint((new_height - bucket.height) / 2.0));
  out.crop_left = static_cast<int>(std::nearbyint((new_width - bucket.width) / 2.0));
  try {
    torch::NoGradGuard no_grad;
    namespace F = torch::nn::functional;
    torch::Tensor resized =
        F::interpolate(chw.unsqueeze(0),  // [3, H, W] -> [1, 3, H, W]
                       F::InterpolateFuncOptions()
                           .size(std::vector<int64_t>{new_height, new_width})
                           .mode(torch::kBilinear)
                           .align_corners(false)
                           .antialias(true))
            .squeeze(0);  // [1, 3, h, w] -> [3, h, w]
    if (flip) {
      resized = resized.flip({2});
      out.crop_left = static_cast<int>(new_width) - out.crop_left - bucket.width;
    }
    out.pixels = resized.slice(1, out.crop_top, out.crop_top + bucket.height)
                     .slice(2, out.crop_left, out.crop_left + bucket.width)
                     .mul(2.0)
                     .sub(1.0)
                     .contiguous();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("resize and crop: ", e.what_without_backtrace()));
  }
  return out;
}

}  // namespace likeness::train
