// VAE latents and text-encoder outputs computed once and kept on disk, content-addressed, so
// every trial of a sweep (other seeds, rates, ranks) reuses the same subject's encodings.
//
// Keys (lower-case hex sha256, OpenSSL EVP):
//   latents: sha256(kCacheFormat, model key, sha256(image file bytes), bucket w x h, flip)
//   text:    sha256(kCacheFormat, model key, ids_1, ids_2)
// where the model key (ModelKey) identifies the weights of the VAE and text encoders. Files:
//   <dir>/latents/<key>.safetensors  latents float32 [C, h, w]; time_ids float32 [6]
//   <dir>/text/<key>.safetensors     prompt_embeds float32 [77, hidden]; pooled float32 [P]
// each written atomically (common/safetensors/writer.h), so concurrent jobs filling one cache
// at worst compute an entry twice. Latents are the posterior MEAN, scaled: a cache shared by
// trials must not depend on a trial's seed (kohya's cache_latents also stores one fixed
// latent per image). A latent with NaN/Inf is refused when computed (FAILED_PRECONDITION
// naming the image): an fp16 VAE overflow must not poison every later run.
#ifndef LIKENESS_WORKER_TRAIN_LATENT_CACHE_H_
#define LIKENESS_WORKER_TRAIN_LATENT_CACHE_H_

#include <torch/torch.h>

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "worker/model/sdxl/sdxl_models.h"
#include "worker/model/text/sdxl_conditioning.h"
#include "worker/train/train_data.h"

namespace likeness::train {

// Bump when what a cache file holds or how it is computed changes.
inline constexpr char kCacheFormat[] = "likeness-train-cache-v1";

// Lower-case hex sha256 of `data`.
std::string Sha256Hex(const std::string& data);

// Identifies the weights the cache depends on: the sha256 of a single-file checkpoint, or for
// a diffusers folder of every file under vae/, text_encoder/ and text_encoder_2/; plus the
// component-config JSON override. Errors name the path.
absl::StatusOr<std::string> ModelKey(const std::string& model_path,
                                     const std::string& model_config);

struct CachedLatent {
  torch::Tensor latents;   // float32 [C, h, w], CPU
  torch::Tensor time_ids;  // float32 [6]: original h, w, crop top, left, target h, w
};

class LatentCache {
 public:
  LatentCache(std::string dir, std::string model_key);

  // The latents of `image_path` cropped to `bucket` (flipped when `flip`), from memory, disk,
  // or the VAE (then stored).
  absl::StatusOr<CachedLatent> Latent(const std::string& image_path, const Bucket& bucket,
                                      bool flip, model::AutoencoderKL& vae);

  // SDXL's prompt conditioning for token ids ([77] each), from memory, disk or the encoders.
  absl::StatusOr<model::SdxlPromptEmbeds> Text(const torch::Tensor& ids_1,
                                               const torch::Tensor& ids_2,
                                               model::SdxlModels& models);

  int64_t computed() const { return computed_; }  // entries made by an encoder in this object
  int64_t loaded() const { return loaded_; }      // entries read from disk

 private:
  std::string dir_;
  std::string model_key_;
  std::map<std::string, CachedLatent> latents_;
  std::map<std::string, model::SdxlPromptEmbeds> text_;
  std::map<std::string, std::string> file_hashes_;  // image path -> sha256
  int64_t computed_ = 0;
  int64_t loaded_ = 0;
};

}  // namespace likeness::train

#endif  // LIKENESS_WORKER_TRAIN_LATENT_CACHE_H_
