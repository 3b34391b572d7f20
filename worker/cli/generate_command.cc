// `likeness generate`: text-to-image, img2img and inpainting with SDXL, LoRAs and embeddings.
// Flags, a YAML generate config (protos/likeness.proto GenerateConfig) and --set overrides all
// land in one GenerateConfig, so the command and the coordinator's generate jobs share a schema.
#include <filesystem>
#include <fstream>
#include <ostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/atomic_file.h"
#include "common/config/proto_yaml.h"
#include "nlohmann/json.hpp"
#include "worker/cli/commands.h"
#include "worker/cli/defaults.h"
#include "worker/cli/progress_bar.h"
#include "worker/cli/torch_options.h"
#include "worker/generate/generate_settings.h"
#include "worker/generate/personalize.h"
#include "worker/generate/pipeline.h"
#include "worker/image/image_grid.h"
#include "worker/image/image_io.h"
#include "worker/sample/scheduler.h"

namespace likeness::cli {
namespace {

namespace fs = std::filesystem;

constexpr char kCommand[] = "generate";
constexpr char kResolvedConfigFile[] = "generate.yaml";
constexpr char kGridFile[] = "grid.png";
// Grid cells are shown at most this large, so a grid of 1024-px images stays viewable.
constexpr int kGridCellMaxPx = 512;

// prompts x seeds, labelled, as grid.png.
absl::Status WriteGrid(const std::string& dir, const generate::GenerationSettings& settings,
                       const std::vector<generate::GeneratedImage>& images, std::ostream& err) {
  image::GridSpec spec;
  spec.columns = settings.images_per_prompt;
  for (const std::string& prompt : settings.prompts) spec.row_labels.push_back(prompt);
  for (int i = 0; i < settings.images_per_prompt; ++i) {
    spec.column_labels.push_back(absl::StrCat("seed ", settings.seed + i));
  }
  for (const generate::GeneratedImage& image : images) spec.cells.push_back({&image.image});
  image::GridOptions options;
  if (!images.empty()) {
    const int side = std::max(images[0].image.width, images[0].image.height);
    const double shrink = side > kGridCellMaxPx ? double(kGridCellMaxPx) / side : 1.0;
    options.cell_width = static_cast<int>(images[0].image.width * shrink);
    options.cell_height = static_cast<int>(images[0].image.height * shrink);
  }
  absl::StatusOr<image::GridResult> grid = image::MakeImageGrid(spec, options);
  if (!grid.ok()) return grid.status();
  for (const std::string& warning : grid->warnings) err << kCommand << ": grid: " << warning << "\n";
  return image::WritePngFile(absl::StrCat(dir, "/", kGridFile), grid->image);
}

std::string Help() {
  return absl::StrCat(
      "Writes PNGs to --out: <prompt>-<image>-<seed>.png, each with AUTOMATIC1111's\n"
      "'parameters' text chunk (A1111's PNG Info and ComfyUI read it), and generate.yaml,\n"
      "the complete config that reproduces the run.\n\n"
      "Settings come from --config (YAML, the GenerateConfig schema in protos/likeness.proto),\n"
      "then the flags, then --set FIELD=VALUE, each overriding the one before.\n\n"
      "Samplers: ", absl::StrJoin(sample::SamplerNames(), ", "), ".\n"
      "Image i of each prompt uses seed + i; the same seed, settings and device give the same\n"
      "image bit for bit. Starting noise is drawn on the CPU, so a seed starts from the same\n"
      "noise on any device, but CUDA's arithmetic differs from the CPU's, so the images differ.\n\n"
      "img2img: --init IMG --strength S (0-1, default ", generate::kDefaultImg2ImgStrength,
      ").\nInpainting: --init IMG --mask MASK (white = repaint, same size as IMG); with a\n"
      "standard SDXL checkpoint the kept region is blended in at every step (RePaint, with\n"
      "--repaint-jumps LEN:N to resample), an inpainting checkpoint (9 input channels) is used\n"
      "as such; --paste-back keeps every unmasked pixel exactly.");
}

// FILE[:SCALE] / FILE[:TOKEN]: the suffix after the last ':' when it is not part of the path.
std::pair<std::string, std::string> SplitSuffix(const std::string& spec) {
  const size_t colon = spec.rfind(':');
  if (colon == std::string::npos || colon == 0 || spec.find('/', colon) != std::string::npos) {
    return {spec, ""};
  }
  return {spec.substr(0, colon), spec.substr(colon + 1)};
}

absl::Status FlagsToConfig(const Args& args, v1::GenerateConfig* config) {
  if (args.Given("model")) config->set_model(args.Get("model"));
  const std::vector<std::string> prompts = args.GetAll("prompt");
  if (!prompts.empty()) {
    config->clear_prompts();
    for (const std::string& p : prompts) config->add_prompts(p);
  }
  if (args.Given("prompts-file")) {
    absl::StatusOr<std::string> text = ReadFileToString(args.Get("prompts-file"));
    if (!text.ok()) return text.status();
    config->clear_prompts();
    for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipWhitespace())) {
      config->add_prompts(std::string(line));
    }
  }
  if (args.Given("negative")) config->set_negative_prompt(args.Get("negative"));
  if (args.Given("sampler")) config->set_sampler(args.Get("sampler"));
  auto int_flag = [&](const char* name, auto setter) -> absl::Status {
    if (!args.Given(name)) return absl::OkStatus();
    absl::StatusOr<long long> v = args.GetInt(name);
    if (!v.ok()) return v.status();
    setter(*v);
    return absl::OkStatus();
  };
  auto double_flag = [&](const char* name, auto setter) -> absl::Status {
    if (!args.Given(name)) return absl::OkStatus();
    absl::StatusOr<double> v = args.GetDouble(name);
    if (!v.ok()) return v.status();
    setter(*v);
    return absl::OkStatus();
  };
  for (absl::Status s : {
           int_flag("steps", [&](long long v) { config->set_steps(static_cast<int>(v)); }),
           int_flag("seed", [&](long long v) { config->set_seed(static_cast<uint64_t>(v)); }),
           int_flag("num", [&](long long v) { config->set_images_per_prompt(static_cast<int>(v)); }),
           int_flag("batch", [&](long long v) { config->set_batch_size(static_cast<uint32_t>(v)); }),
           int_flag("mask-blur", [&](long long v) { config->set_mask_blur(static_cast<int>(v)); }),
           int_flag("mask-dilate", [&](long long v) { config->set_mask_dilate(static_cast<int>(v)); }),
           double_flag("cfg", [&](double v) { config->set_guidance_scale(v); }),
           double_flag("rescale", [&](double v) { config->set_guidance_rescale(v); }),
           double_flag("strength", [&](double v) { config->set_strength(v); }),
       }) {
    if (!s.ok()) return s;
  }
  if (args.Given("size")) {
    const std::vector<std::string> parts = absl::StrSplit(args.Get("size"), 'x');
    int w = 0, h = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &w) || !absl::SimpleAtoi(parts[1], &h)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--size wants WIDTHxHEIGHT, e.g. 1024x1024; got '", args.Get("size"), "'"));
    }
    config->set_width(w);
    config->set_height(h);
  }
  if (args.Given("init")) config->set_init_image(args.Get("init"));
  if (args.Given("mask")) config->set_mask(args.Get("mask"));
  if (args.Switch("paste-back")) config->set_paste_back(true);
  if (args.Given("repaint-jumps")) {
    const auto [length, samples] = SplitSuffix(args.Get("repaint-jumps"));
    int l = 0, n = 0;
    if (!absl::SimpleAtoi(length, &l) || !absl::SimpleAtoi(samples, &n)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--repaint-jumps wants LENGTH:SAMPLES, e.g. 10:3; got '", args.Get("repaint-jumps"), "'"));
    }
    config->set_repaint_jump_length(l);
    config->set_repaint_jump_samples(n);
  }
  for (const std::string& spec : args.GetAll("lora")) {
    const auto [path, scale] = SplitSuffix(spec);
    v1::LoraRef* lora = config->add_loras();
    lora->set_path(path);
    if (!scale.empty()) {
      double value = 0;
      if (!absl::SimpleAtod(scale, &value)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--lora ", spec, ": scale '", scale, "' is not a number"));
      }
      lora->set_scale(value);
    }
  }
  for (const std::string& spec : args.GetAll("embedding")) {
    const auto [path, token] = SplitSuffix(spec);
    v1::EmbeddingRef* embedding = config->add_embeddings();
    embedding->set_path(path);
    embedding->set_token(token);
  }
  if (args.Switch("merge-loras")) config->set_merge_loras(true);
  if (args.Switch("encode-empty-negative")) config->set_encode_empty_negative(true);
  if (args.Switch("vae-tiling")) config->set_vae_tiling(true);
  if (args.Given("prediction-type")) config->set_prediction_type(args.Get("prediction-type"));
  if (args.Given("dtype")) config->set_dtype(args.Get("dtype"));
  if (args.Given("device")) config->set_device(args.Get("device"));
  if (args.Given("vocab")) config->set_vocab(args.Get("vocab"));
  if (args.Given("model-config")) config->set_model_config(args.Get("model-config"));
  if (args.Given("out")) config->set_output_dir(args.Get("out"));
  return absl::OkStatus();
}

int RunGenerate(const Args& args, std::ostream& out, std::ostream& err) {
  auto fail = [&](const absl::Status& status, int code = kExitFailure) {
    err << kCommand << ": " << status.message() << "\n";
    return code;
  };
  v1::GenerateConfig config;
  if (args.Given("config")) {
    if (absl::Status s = config::MergeYamlFileIntoProto(args.Get("config"), &config); !s.ok()) {
      return fail(s, kExitUsage);
    }
  }
  if (absl::Status s = FlagsToConfig(args, &config); !s.ok()) return fail(s, kExitUsage);
  if (absl::Status s = config::ApplyOverrides(args.GetAll("set"), &config); !s.ok()) {
    return fail(s, kExitUsage);
  }
  if (config.model().empty()) return fail(absl::InvalidArgumentError("--model is required"), kExitUsage);
  if (config.output_dir().empty()) return fail(absl::InvalidArgumentError("--out is required"), kExitUsage);
  absl::StatusOr<generate::GenerationSettings> settings = generate::ResolveGenerateConfig(config);
  if (!settings.ok()) return fail(settings.status(), kExitUsage);
  absl::StatusOr<torch::Dtype> dtype = ParseDtype(config.dtype());
  if (!dtype.ok()) return fail(dtype.status(), kExitUsage);
  absl::StatusOr<torch::Device> device = ParseDevice(config.device());
  if (!device.ok()) return fail(device.status(), kExitUsage);

  std::error_code error;
  fs::create_directories(config.output_dir(), error);
  if (error) {
    return fail(absl::InternalError(
        absl::StrCat("cannot create ", config.output_dir(), ": ", error.message())));
  }
  generate::PipelineOptions options;
  options.model_path = config.model();
  options.dtype = *dtype;
  options.device = *device;
  options.vocab_path = config.vocab().empty() ? DefaultVocabPath() : config.vocab();
  options.software = absl::StrCat("likeness ", LIKENESS_VERSION);
  if (!config.model_config().empty()) {
    absl::StatusOr<std::string> text = ReadFileToString(config.model_config());
    if (!text.ok()) return fail(text.status(), kExitUsage);
    nlohmann::json json = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (!json.is_object()) {
      return fail(absl::InvalidArgumentError(
                      absl::StrCat(config.model_config(), ": not a JSON object")), kExitUsage);
    }
    options.config_override = json.contains("config") ? json["config"] : json;
  }
  err << kCommand << ": loading " << config.model() << "\n";
  absl::StatusOr<std::unique_ptr<generate::Pipeline>> pipeline = generate::Pipeline::Load(options);
  if (!pipeline.ok()) return fail(pipeline.status());
  if (absl::Status s = generate::ApplyPersonalization(config, **pipeline); !s.ok()) return fail(s);

  // The resolved config first: a run that dies half-way can still be repeated.
  const std::string config_path = absl::StrCat(config.output_dir(), "/", kResolvedConfigFile);
  if (absl::Status s = WriteFileAtomically(config_path, config::ProtoToYaml(config)); !s.ok()) {
    return fail(s);
  }
  ProgressBar bar(err, StderrIsTerminal());
  int written = 0;
  std::vector<generate::GeneratedImage> all_images;
  for (int p = 0; p < static_cast<int>(settings->prompts.size()); ++p) {
    int current_batch_start = -1;
    absl::StatusOr<std::vector<generate::GeneratedImage>> images = (*pipeline)->GeneratePrompt(
        *settings, p, [&](const generate::GenerateProgress& progress) {
          if (progress.images_done != current_batch_start) {
            current_batch_start = progress.images_done;
            bar.Start(absl::StrFormat("[prompt %d/%d, images %d-%d/%d]", p + 1,
                                      progress.num_prompts, progress.images_done + 1,
                                      std::min(progress.images_total,
                                               progress.images_done + (settings->batch_size > 0
                                                                           ? settings->batch_size
                                                                           : progress.images_total)),
                                      progress.images_total),
                      progress.evaluations_total);
          }
          bar.Update(progress.evaluations_done);
        });
    bar.Finish();
    if (!images.ok()) return fail(images.status());
    for (const generate::GeneratedImage& image : *images) {
      const std::string path = absl::StrFormat("%s/%02d-%03d-%d.png", config.output_dir(),
                                               image.prompt_index, image.image_index, image.seed);
      image::PngText text(image.image.text.begin(), image.image.text.end());
      if (absl::Status s = image::WritePngFile(path, image.image, text); !s.ok()) return fail(s);
      out << path << "\n";
      ++written;
    }
    if (args.Switch("grid")) {
      for (generate::GeneratedImage& image : *images) all_images.push_back(std::move(image));
    }
  }
  if (args.Switch("grid")) {
    if (absl::Status s = WriteGrid(config.output_dir(), *settings, all_images, err); !s.ok()) {
      return fail(s);
    }
    out << config.output_dir() << "/" << kGridFile << "\n";
  }
  err << kCommand << ": wrote " << written << " image(s) and " << config_path << "\n";
  return kExitOk;
}

}  // namespace

Command MakeGenerateCommand() {
  Command command;
  command.name = kCommand;
  command.summary = "Generate images with SDXL: text-to-image, img2img, inpainting, LoRAs";
  command.usage_args = "--model PATH --prompt TEXT --out DIR [options]";
  command.description = Help();
  command.options = {
      {"model", "PATH", "SDXL diffusers folder or single-file checkpoint (.safetensors)", ""},
      {"model-config", "FILE", "JSON of per-component configs for a single file that is not "
                               "SDXL-sized ({\"unet\": {...}, ...})", ""},
      {"prompt", "TEXT", "a prompt; repeat for several", "", true},
      {"prompts-file", "FILE", "one prompt per line", ""},
      {"negative", "TEXT", "negative prompt (empty: SDXL's zeroed negative conditioning)", ""},
      {"encode-empty-negative", "", "encode an empty negative prompt instead of zeros", ""},
      {"sampler", "NAME", absl::StrCat("one of ", absl::StrJoin(sample::SamplerNames(), ", ")),
       generate::kDefaultSampler},
      {"steps", "N", "sampling steps", absl::StrCat(generate::kDefaultSteps)},
      {"cfg", "X", "classifier-free guidance scale (1 = off)",
       generate::A1111Number(generate::kDefaultGuidanceScale)},
      {"rescale", "X", "guidance rescale in [0, 1] (0.7 suits v-prediction models)", "0"},
      {"seed", "S", "seed of the first image of each prompt", "0"},
      {"num", "N", "images per prompt", "1"},
      {"batch", "N", "images per UNet call (memory); default all of a prompt", ""},
      {"size", "WxH", "image size (default: the init image's, else the model's native)", ""},
      {"init", "IMG", "img2img / inpainting source image", ""},
      {"strength", "S", "how much of the init image to repaint, (0, 1]", ""},
      {"mask", "MASK", "inpainting mask, white = repaint", ""},
      {"mask-blur", "PX", "Gaussian blur of the mask (-1: none)", ""},
      {"mask-dilate", "PX", "grow the mask first", "0"},
      {"paste-back", "", "keep unmasked pixels of the init image exactly", ""},
      {"repaint-jumps", "LEN:N", "RePaint: every LEN steps go back and resample, N times in all", ""},
      {"lora", "FILE[:SCALE]", "apply a LoRA (kohya or PEFT format); repeat for several", "", true},
      {"merge-loras", "", "fold LoRAs into the weights (faster steps)", ""},
      {"embedding", "FILE[:TOKEN]", "textual-inversion embedding (clip_l/clip_g); token "
                                    "defaults to the file name", "", true},
      {"prediction-type", "TYPE", "override the model's: epsilon or v_prediction", ""},
      {"vae-tiling", "", "decode in tiles (large images, little memory)", ""},
      {"dtype", "TYPE", "float32, bfloat16 or float16 (the VAE stays float32)", "float32"},
      {"device", "DEV", "cpu, cuda or cuda:N (default: cuda when present)", ""},
      {"config", "FILE", "YAML generate config", ""},
      {"set", "FIELD=VALUE", "override one config field; repeat for several", "", true},
      {"out", "DIR", "output folder", ""},
      {"grid", "", "also write grid.png: prompts (rows) x seeds (columns), labelled", ""},
      VocabOption(),
  };
  command.max_positional = 0;
  command.run = RunGenerate;
  return command;
}

}  // namespace likeness::cli
