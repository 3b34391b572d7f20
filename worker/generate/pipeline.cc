#include "worker/generate/pipeline.h"

#include <filesystem>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/status_macros.h"
#include "worker/generate/denoise.h"
#include "worker/generate/file_hash.h"
#include "worker/generate/inpaint_mask.h"
#include "worker/image/image_io.h"
#include "worker/image/image_tensor.h"
#include "worker/model/checkpoint/checkpoint_kind.h"
#include "worker/model/vae/vae_latents.h"

namespace likeness::generate {
namespace {

namespace fs = std::filesystem;
namespace F = torch::nn::functional;

constexpr char kSchedulerConfigPath[] = "scheduler/scheduler_config.json";
constexpr char kTokenizerFolder[] = "tokenizer";

std::string SizeText(int width, int height) { return absl::StrCat(width, "x", height); }

// [1, C, H0, W0] scaled to cover height x width (bilinear, antialiased when shrinking) and
// centre-cropped, as a photo is fitted to a frame. Unchanged when the size already matches.
torch::Tensor FitToSize(const torch::Tensor& x, int64_t height, int64_t width) {
  const int64_t h0 = x.size(2), w0 = x.size(3);
  if (h0 == height && w0 == width) return x;
  const double scale = std::max(static_cast<double>(height) / h0, static_cast<double>(width) / w0);
  const int64_t h1 = std::max<int64_t>(height, std::llround(h0 * scale));
  const int64_t w1 = std::max<int64_t>(width, std::llround(w0 * scale));
  torch::Tensor resized = F::interpolate(x, F::InterpolateFuncOptions()
                                                .size(std::vector<int64_t>{h1, w1})
                                                .mode(torch::kBilinear)
                                                .align_corners(false)
                                                .antialias(scale < 1.0));
  return resized.narrow(2, (h1 - height) / 2, height).narrow(3, (w1 - width) / 2, width);
}

absl::StatusOr<sample::SchedulerConfig> SchedulerConfigOf(const std::string& model_path) {
  const std::string path = absl::StrCat(model_path, "/", kSchedulerConfigPath);
  std::error_code error;
  if (!fs::is_regular_file(path, error)) return sample::SchedulerConfig::SdxlBase();
  LIKENESS_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON"));
  absl::StatusOr<sample::SchedulerConfig> config = sample::SchedulerConfig::FromJson(json);
  if (!config.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", config.status().message()));
  }
  return config;
}

std::string ModelName(const std::string& path) {
  fs::path p(path);
  while (!p.empty() && p.filename().empty()) p = p.parent_path();  // trailing slash
  return fs::is_directory(p) ? p.filename().string() : p.stem().string();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Pipeline>> Pipeline::Load(const PipelineOptions& options) {
  model::SdxlBuildOptions build;
  build.dtype = options.dtype;
  build.device = options.device;
  model::SdxlLoadReport report;
  LIKENESS_ASSIGN_OR_RETURN(
      model::SdxlModels models,
      model::LoadSdxlModels(options.model_path, build, &report, options.config_override,
                            options.variant));
  ModelInfo info;
  info.name = ModelName(options.model_path);
  LIKENESS_ASSIGN_OR_RETURN(info.scheduler, SchedulerConfigOf(options.model_path));
  if (options.hash_model) {
    LIKENESS_ASSIGN_OR_RETURN(info.short_hash, ModelShortHash(options.model_path));
  }
  std::string vocab = options.vocab_path;
  std::error_code error;
  const std::string tokenizer_dir = absl::StrCat(options.model_path, "/", kTokenizerFolder);
  if (fs::is_directory(tokenizer_dir, error)) vocab = tokenizer_dir;
  if (vocab.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.model_path, ": has no tokenizer/ folder; give the CLIP vocabulary (--vocab)"));
  }
  LIKENESS_ASSIGN_OR_RETURN(text::ClipTokenizer tokenizer, text::ClipTokenizer::Load(vocab));
  return std::make_unique<Pipeline>(
      std::move(models), std::make_shared<const text::ClipTokenizer>(std::move(tokenizer)),
      std::move(info), options.software);
}

Pipeline::Pipeline(model::SdxlModels models, std::shared_ptr<const text::ClipTokenizer> tokenizer,
                   ModelInfo info, std::string software)
    : models_(std::move(models)),
      clip_tokenizer_(std::move(tokenizer)),
      tokenizer_(MakeClipPromptTokenizer(clip_tokenizer_)),
      info_(std::move(info)),
      software_(std::move(software)) {}

int Pipeline::SizeMultiple() const {
  const int64_t downsamplings = models_.unet->config().num_levels() - 1;
  return static_cast<int>(models_.vae->config().DownsampleFactor() << downsamplings);
}

int Pipeline::NativeSize() const { return static_cast<int>(models_.vae->config().sample_size); }

absl::StatusOr<std::vector<GeneratedImage>> Pipeline::Generate(const GenerationSettings& settings,
                                                               const ProgressCallback& progress) {
  std::vector<GeneratedImage> all;
  for (int p = 0; p < static_cast<int>(settings.prompts.size()); ++p) {
    LIKENESS_ASSIGN_OR_RETURN(std::vector<GeneratedImage> images,
                              GeneratePrompt(settings, p, progress));
    for (GeneratedImage& image : images) all.push_back(std::move(image));
  }
  return all;
}

absl::StatusOr<std::vector<GeneratedImage>> Pipeline::GeneratePrompt(
    const GenerationSettings& s, int prompt_index, const ProgressCallback& progress) {
  if (prompt_index < 0 || prompt_index >= static_cast<int>(s.prompts.size())) {
    return absl::InvalidArgumentError(absl::StrCat("no prompt ", prompt_index));
  }
  const std::string& prompt = s.prompts[prompt_index];
  const model::VaeConfig& vae_config = models_.vae->config();
  const int factor = static_cast<int>(vae_config.DownsampleFactor());
  const bool inpainting_unet = models_.unet->config().in_channels > vae_config.latent_channels;

  // 1. The init image (img2img, inpainting) and the size.
  std::optional<image::Image> init_image;
  torch::Tensor init_pixels;  // [1, 3, H, W] in [-1, 1]
  if (!s.init_image.empty()) {
    LIKENESS_ASSIGN_OR_RETURN(image::Image decoded, image::DecodeImageFile(s.init_image));
    LIKENESS_ASSIGN_OR_RETURN(torch::Tensor chw, image::ImageToTensor(decoded));
    init_pixels = chw.unsqueeze(0) * 2.0 - 1.0;
    init_image = std::move(decoded);
  }
  int width = s.width, height = s.height;
  const int multiple = SizeMultiple();
  if (width == 0) {
    if (init_image) {
      // The init image's size, cut down to the nearest multiple the UNet accepts.
      width = init_image->width / multiple * multiple;
      height = init_image->height / multiple * multiple;
    } else {
      width = height = NativeSize();
    }
  }
  if (width < multiple || height < multiple || width % multiple != 0 || height % multiple != 0) {
    return absl::InvalidArgumentError(absl::StrCat("generate: size ", SizeText(width, height),
                                                   " must be a positive multiple of ", multiple,
                                                   " for this model"));
  }
  if (inpainting_unet && s.mask.empty()) {
    return absl::InvalidArgumentError(
        "generate: this checkpoint is an inpainting model (9 input channels): give "
        "init_image and mask");
  }

  try {
    // 2. The mask, fitted exactly as the image.
    std::optional<InpaintMask> mask;
    if (!s.mask.empty()) {
      LIKENESS_ASSIGN_OR_RETURN(image::Image mask_image, image::DecodeImageFile(s.mask));
      if (mask_image.width != init_image->width || mask_image.height != init_image->height) {
        return absl::InvalidArgumentError(absl::StrCat(
            "generate: mask ", s.mask, " is ", SizeText(mask_image.width, mask_image.height),
            " but init_image ", s.init_image, " is ",
            SizeText(init_image->width, init_image->height), "; they must match"));
      }
      LIKENESS_ASSIGN_OR_RETURN(torch::Tensor luma, MaskLuminance(mask_image));
      LIKENESS_ASSIGN_OR_RETURN(
          InpaintMask prepared,
          PrepareInpaintMask(FitToSize(luma, height, width), factor, s.mask_options));
      mask = std::move(prepared);
    }
    if (init_pixels.defined()) init_pixels = FitToSize(init_pixels, height, width);

    // 3. The sampler.
    sample::SchedulerConfig scheduler_config = info_.scheduler;
    if (s.prediction_type) scheduler_config.schedule.prediction_type = *s.prediction_type;
    LIKENESS_ASSIGN_OR_RETURN(std::unique_ptr<sample::Scheduler> scheduler,
                              sample::MakeScheduler(s.sampler, scheduler_config));
    LIKENESS_RETURN_IF_ERROR(scheduler->SetTimesteps(s.steps));
    const bool from_image = init_pixels.defined() && s.strength < 1.0;
    const int64_t begin = from_image ? scheduler->BeginIndexForStrength(s.strength) : 0;
    if (begin >= s.steps) {
      return absl::InvalidArgumentError(absl::StrCat(
          "generate: strength ", s.strength, " with ", s.steps, " steps runs no step"));
    }

    // 4. Conditioning.
    const bool guided = s.guidance_scale > 1.0;
    const SizeConditioning size{{height, width}, {0, 0}, {height, width}};
    LIKENESS_ASSIGN_OR_RETURN(PromptConditioning conditioning,
                              EncodePrompt(models_, tokenizer_, prompt, s.negative_prompt, guided,
                                           s.encode_empty_negative, size));

    // 5. Image latents (once per prompt).
    torch::Tensor image_latents, masked_image_latents;
    if (init_pixels.defined()) {
      torch::Generator posterior = at::detail::createCPUGenerator(s.seed);
      LIKENESS_ASSIGN_OR_RETURN(image_latents,
                                model::EncodeToLatents(models_.vae, init_pixels, posterior));
      image_latents = image_latents.to(torch::kFloat32);
      if (inpainting_unet) {
        const torch::Tensor masked = init_pixels * (1 - mask->binary);
        LIKENESS_ASSIGN_OR_RETURN(masked_image_latents,
                                  model::EncodeToLatents(models_.vae, masked, posterior));
        masked_image_latents = masked_image_latents.to(torch::kFloat32);
      }
    }
    const int64_t latent_h = height / factor, latent_w = width / factor;
    const std::vector<int64_t> latent_shape = {vae_config.latent_channels, latent_h, latent_w};

    // 6. Batches of images, each image with its own generator.
    const int total = s.images_per_prompt;
    const int batch = s.batch_size > 0 ? std::min(s.batch_size, total) : total;
    std::vector<GeneratedImage> out;
    for (int first = 0; first < total; first += batch) {
      const int n = std::min(batch, total - first);
      std::vector<torch::Generator> generators;
      for (int i = 0; i < n; ++i) {
        generators.push_back(at::detail::createCPUGenerator(s.seed + first + i));
      }
      const torch::Tensor noise = PerImageNoise(generators, latent_shape);
      torch::Tensor latents;
      if (from_image) {
        latents = scheduler->AddNoise(image_latents.expand({n, -1, -1, -1}), noise, begin);
      } else {
        latents = noise * scheduler->init_noise_sigma();
      }
      scheduler->Reset();
      InpaintLatents inpaint;
      if (mask) {
        inpaint.image_latents = image_latents.expand({n, -1, -1, -1});
        inpaint.noise = noise;
        if (inpainting_unet) {
          // diffusers gives the 9-channel UNet the binary mask at latent resolution.
          inpaint.mask = F::interpolate(mask->binary, F::InterpolateFuncOptions()
                                                          .size(std::vector<int64_t>{latent_h, latent_w})
                                                          .mode(torch::kNearest))
                             .expand({n, -1, -1, -1});
          inpaint.masked_image_latents = masked_image_latents.expand({n, -1, -1, -1});
        } else {
          inpaint.mask = mask->latent.expand({n, -1, -1, -1});
          inpaint.jump_length = s.repaint_jump_length;
          inpaint.jump_samples = s.repaint_jump_samples;
        }
      }
      DenoiseRequest request;
      request.unet = models_.unet;
      request.scheduler = scheduler.get();
      request.cond = RepeatRows(conditioning.cond, n);
      if (guided) request.uncond = RepeatRows(conditioning.uncond, n);
      request.guidance_scale = s.guidance_scale;
      request.guidance_rescale = s.guidance_rescale;
      request.latents = latents;
      request.begin_index = begin;
      request.generators = &generators;
      request.inpaint = mask ? &inpaint : nullptr;
      if (progress) {
        request.progress = [&, first](int64_t done, int64_t all) {
          progress({prompt_index, static_cast<int>(s.prompts.size()), first, total, done, all});
        };
      }
      LIKENESS_ASSIGN_OR_RETURN(torch::Tensor denoised, Denoise(request));
      std::optional<model::VaeTilingOptions> tiling;
      if (s.vae_tiling) tiling = model::VaeTilingOptions{};
      LIKENESS_ASSIGN_OR_RETURN(torch::Tensor decoded,
                                model::DecodeLatents(models_.vae, denoised, tiling));
      decoded = decoded.to(torch::kCPU, torch::kFloat32);
      for (int i = 0; i < n; ++i) {
        GeneratedImage result;
        LIKENESS_ASSIGN_OR_RETURN(result.image,
                                  image::TensorToImage(decoded[i], image::TensorRange::kMinusOneToOne));
        if (mask && s.paste_back) {
          LIKENESS_ASSIGN_OR_RETURN(image::Image original,
                                    image::TensorToImage(init_pixels[0],
                                                         image::TensorRange::kMinusOneToOne));
          LIKENESS_ASSIGN_OR_RETURN(result.image, PasteBack(original, result.image, mask->soft));
        }
        result.prompt = prompt;
        result.seed = s.seed + first + i;
        result.prompt_index = prompt_index;
        result.image_index = first + i;
        A1111Parameters& p = result.parameters;
        p.prompt = prompt;
        p.negative_prompt = s.negative_prompt;
        p.loras = loras_;
        p.fields = {{"Steps", absl::StrCat(s.steps)},
                    {"Sampler", sample::SamplerA1111Name(s.sampler)},
                    {"CFG scale", A1111Number(s.guidance_scale)},
                    {"Seed", absl::StrCat(result.seed)},
                    {"Size", SizeText(width, height)}};
        if (!info_.short_hash.empty()) p.fields.emplace_back("Model hash", info_.short_hash);
        p.fields.emplace_back("Model", info_.name);
        if (init_pixels.defined()) p.fields.emplace_back("Denoising strength", A1111Number(s.strength));
        if (mask) p.fields.emplace_back("Mask blur", absl::StrCat(s.mask_options.blur_px));
        if (s.guidance_rescale > 0) {
          p.fields.emplace_back("Guidance rescale", A1111Number(s.guidance_rescale));
        }
        for (const auto& field : extra_fields_) p.fields.push_back(field);
        p.fields.emplace_back("Version", software_);
        result.image.text[kA1111ParametersKey] = FormatA1111Parameters(p);
        out.push_back(std::move(result));
      }
    }
    return out;
  } catch (const c10::Error& error) {
    return absl::InternalError(absl::StrCat("generate: ", error.what_without_backtrace()));
  }
}

}  // namespace likeness::generate
