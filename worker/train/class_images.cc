#include "worker/train/class_images.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "protos/likeness.pb.h"
#include "worker/generate/generate_settings.h"
#include "worker/generate/pipeline.h"
#include "worker/image/image_io.h"
#include "worker/train/latent_cache.h"

namespace likeness::train {
namespace fs = std::filesystem;

std::string ClassImageKey(const ClassImageRequest& r) {
  // Length-prefixed fields: no two requests share a material string.
  std::string material = kClassImageFormat;
  for (const std::string& field :
       {r.model_key, r.class_prompt, absl::StrCat(r.count), absl::StrCat(r.resolution),
        absl::StrCat(r.seed), std::string(kClassImageSampler), absl::StrCat(kClassImageSteps),
        absl::StrCat(kClassImageGuidance)}) {
    absl::StrAppend(&material, "|", field.size(), ":", field);
  }
  return Sha256Hex(material);
}

absl::StatusOr<std::string> EnsureClassImages(const ClassImageRequest& request,
                                              model::SdxlModels& models,
                                              std::shared_ptr<const text::ClipTokenizer> tokenizer,
                                              const std::function<void(int, int)>& progress) {
  const fs::path root = fs::path(request.cache_dir) / kClassImageSubdir;
  const fs::path final_dir = root / ClassImageKey(request);
  std::error_code error;
  if (fs::is_directory(final_dir, error)) return final_dir.string();  // step 2

  v1::GenerateConfig config;
  config.add_prompts(request.class_prompt);
  config.set_sampler(kClassImageSampler);
  config.set_steps(kClassImageSteps);
  config.set_guidance_scale(kClassImageGuidance);
  config.set_seed(request.seed);
  config.set_images_per_prompt(request.count);
  config.set_batch_size(kClassImageBatch);
  config.set_width(request.resolution);
  config.set_height(request.resolution);
  absl::StatusOr<generate::GenerationSettings> settings = generate::ResolveGenerateConfig(config);
  if (!settings.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("train: class images: ", settings.status().message()));
  }
  const fs::path temp_dir = root / absl::StrCat(final_dir.filename().string(), ".tmp-", getpid());
  fs::remove_all(temp_dir, error);
  fs::create_directories(temp_dir, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("train: class images: cannot create ", temp_dir.string(), ": ", error.message()));
  }
  generate::ModelInfo info;
  info.name = "base model";
  generate::Pipeline pipeline(models, std::move(tokenizer), info);
  absl::StatusOr<std::vector<generate::GeneratedImage>> images =
      pipeline.GeneratePrompt(*settings, 0, [&](const generate::GenerateProgress& p) {
        if (progress && p.evaluations_done == p.evaluations_total) {
          progress(p.images_done, p.images_total);
        }
      });
  if (!images.ok()) {
    fs::remove_all(temp_dir, error);
    return absl::InternalError(
        absl::StrCat("train: generating class images: ", images.status().message()));
  }
  for (const generate::GeneratedImage& image : *images) {
    char name[32];
    std::snprintf(name, sizeof(name), "%05d.png", image.image_index);
    image::PngText text(image.image.text.begin(), image.image.text.end());
    LIKENESS_RETURN_IF_ERROR(image::WritePngFile((temp_dir / name).string(), image.image, text));
  }
  fs::rename(temp_dir, final_dir, error);
  if (error) {
    // Another job committed the same key first: its folder has the same images.
    fs::remove_all(temp_dir, error);
    if (!fs::is_directory(final_dir, error)) {
      return absl::InternalError(
          absl::StrCat("train: class images: cannot commit ", final_dir.string()));
    }
  }
  return final_dir.string();
}

}  // namespace likeness::train
