#include "worker/train/latent_cache.h"

#include <openssl/evp.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/safetensors/safetensors_file.h"
#include "common/safetensors/writer.h"
#include "common/status_macros.h"
#include "worker/generate/file_hash.h"
#include "worker/image/image_io.h"
#include "worker/model/vae/vae_latents.h"

namespace likeness::train {
namespace fs = std::filesystem;
namespace {

constexpr char kLatentsFolder[] = "latents";
constexpr char kTextFolder[] = "text";
constexpr const char* kTextComponentFolders[] = {"vae", "text_encoder", "text_encoder_2"};

std::string TensorBytes(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous().cpu();
  return std::string(static_cast<const char*>(c.data_ptr()), c.nbytes());
}

absl::StatusOr<std::map<std::string, torch::Tensor>> ReadAll(const std::string& path) {
  LIKENESS_ASSIGN_OR_RETURN(auto file, safetensors::SafetensorsFile::Open(path));
  std::map<std::string, torch::Tensor> out;
  for (const std::string& name : file->Names()) {
    LIKENESS_ASSIGN_OR_RETURN(torch::Tensor t, file->Get(name));
    out[name] = t.clone();  // own the memory; the mapping goes with `file`
  }
  return out;
}

}  // namespace

std::string Sha256Hex(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), length));
}

absl::StatusOr<std::string> ModelKey(const std::string& model_path,
                                     const std::string& model_config) {
  std::error_code error;
  std::string material = absl::StrCat(kCacheFormat, "\n", model_config, "\n");
  if (fs::is_regular_file(model_path, error)) {
    LIKENESS_ASSIGN_OR_RETURN(std::string hash,
                              generate::FileSha256(model_path, generate::HashKind::kWholeFile));
    absl::StrAppend(&material, hash);
    return Sha256Hex(material);
  }
  if (!fs::is_directory(model_path, error)) {
    return absl::NotFoundError(absl::StrCat("base_model ", model_path, " does not exist"));
  }
  std::vector<std::string> files;
  for (const char* component : kTextComponentFolders) {
    const fs::path dir = fs::path(model_path) / component;
    if (!fs::is_directory(dir, error)) continue;
    for (const auto& entry : fs::directory_iterator(dir, error)) {
      if (entry.is_regular_file()) files.push_back(entry.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  for (const std::string& file : files) {
    LIKENESS_ASSIGN_OR_RETURN(std::string hash,
                              generate::FileSha256(file, generate::HashKind::kWholeFile));
    absl::StrAppend(&material, fs::relative(file, model_path).string(), " ", hash, "\n");
  }
  return Sha256Hex(material);
}

LatentCache::LatentCache(std::string dir, std::string model_key)
    : dir_(std::move(dir)), model_key_(std::move(model_key)) {}

absl::StatusOr<CachedLatent> LatentCache::Latent(const std::string& image_path,
                                                 const Bucket& bucket, bool flip,
                                                 model::AutoencoderKL& vae) {
  auto hash = file_hashes_.find(image_path);
  if (hash == file_hashes_.end()) {
    LIKENESS_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(image_path));
    hash = file_hashes_.emplace(image_path, Sha256Hex(bytes)).first;
  }
  const std::string key = Sha256Hex(absl::StrCat(kCacheFormat, "\n", model_key_, "\n",
                                                 hash->second, "\n", bucket.width, "x",
                                                 bucket.height, "\n", flip ? "flip" : "noflip"));
  if (auto it = latents_.find(key); it != latents_.end()) return it->second;
  const std::string path = (fs::path(dir_) / kLatentsFolder / (key + ".safetensors")).string();
  std::error_code error;
  if (fs::is_regular_file(path, error)) {
    absl::StatusOr<std::map<std::string, torch::Tensor>> tensors = ReadAll(path);
    if (tensors.ok() && tensors->count("latents") && tensors->count("time_ids")) {
      ++loaded_;
      CachedLatent entry{tensors->at("latents"), tensors->at("time_ids")};
      latents_[key] = entry;
      return entry;
    }
    // A damaged entry is recomputed and replaced.
  }
  LIKENESS_ASSIGN_OR_RETURN(image::Image photo, image::DecodeImageFile(image_path));
  LIKENESS_ASSIGN_OR_RETURN(PreparedImage prepared, PrepareImage(photo, bucket, flip));
  CachedLatent entry;
  try {
    torch::NoGradGuard no_grad;
    const torch::Tensor mean = vae->Encode(prepared.pixels.unsqueeze(0)  // [3,H,W] -> [1,3,H,W]
                                               .to(vae->parameters()[0].options()))
                                   .Mode();
    entry.latents = model::ScaleLatents(vae->config(), mean.to(torch::kFloat32))
                        .squeeze(0)  // [1, C, h, w] -> [C, h, w]
                        .cpu()
                        .contiguous();
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("VAE encoding of ", image_path, ": ", e.what_without_backtrace()));
  }
  if (!torch::isfinite(entry.latents).all().item<bool>()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the VAE gave NaN/Inf latents for ", image_path,
        " (an fp16 VAE overflows on SDXL; keep it in float32); not cached"));
  }
  entry.time_ids = model::SdxlTimeIds({prepared.original_height, prepared.original_width},
                                      {prepared.crop_top, prepared.crop_left},
                                      {prepared.target_height, prepared.target_width});
  fs::create_directories(fs::path(path).parent_path(), error);
  LIKENESS_RETURN_IF_ERROR(safetensors::WriteSafetensors(
      path, {{"latents", entry.latents}, {"time_ids", entry.time_ids}},
      {{"likeness.kind", "latent_cache"}, {"likeness.image", image_path}}));
  ++computed_;
  latents_[key] = entry;
  return entry;
}

absl::StatusOr<model::SdxlPromptEmbeds> LatentCache::Text(const torch::Tensor& ids_1,
                                                          const torch::Tensor& ids_2,
                                                          model::SdxlModels& models) {
  const std::string key = Sha256Hex(absl::StrCat(kCacheFormat, "\ntext\n", model_key_, "\n",
                                                 TensorBytes(ids_1.to(torch::kInt64)),
                                                 TensorBytes(ids_2.to(torch::kInt64))));
  if (auto it = text_.find(key); it != text_.end()) return it->second;
  const std::string path = (fs::path(dir_) / kTextFolder / (key + ".safetensors")).string();
  std::error_code error;
  if (fs::is_regular_file(path, error)) {
    absl::StatusOr<std::map<std::string, torch::Tensor>> tensors = ReadAll(path);
    if (tensors.ok() && tensors->count("prompt_embeds") && tensors->count("pooled")) {
      ++loaded_;
      model::SdxlPromptEmbeds entry{tensors->at("prompt_embeds"), tensors->at("pooled")};
      text_[key] = entry;
      return entry;
    }
  }
  model::SdxlPromptEmbeds entry;
  try {
    torch::NoGradGuard no_grad;
    model::SdxlPromptEmbeds e = model::EncodeSdxlPrompt(
        models.text_encoder, models.text_encoder_2, ids_1.view({1, -1}), ids_2.view({1, -1}));
    entry.prompt_embeds = e.prompt_embeds.squeeze(0).to(torch::kFloat32).cpu().contiguous();
    entry.pooled_prompt_embeds =
        e.pooled_prompt_embeds.squeeze(0).to(torch::kFloat32).cpu().contiguous();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("text encoding: ", e.what_without_backtrace()));
  }
  fs::create_directories(fs::path(path).parent_path(), error);
  LIKENESS_RETURN_IF_ERROR(safetensors::WriteSafetensors(
      path, {{"prompt_embeds", entry.prompt_embeds}, {"pooled", entry.pooled_prompt_embeds}},
      {{"likeness.kind", "text_cache"}}));
  ++computed_;
  text_[key] = entry;
  return entry;
}

}  // namespace likeness::train
