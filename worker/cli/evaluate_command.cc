// `likeness evaluate`: DreamBench metrics of a folder of generated images against a folder of
// real photos of the subject (worker/eval/evaluator.h), printed as a table beside the DreamBooth
// paper's numbers and optionally written as JSON.
#include <ostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "nlohmann/json.hpp"
#include "worker/cli/commands.h"
#include "worker/cli/defaults.h"
#include "worker/eval/evaluation_report.h"
#include "worker/eval/evaluator.h"

namespace likeness::cli {
namespace {

constexpr char kCommand[] = "likeness evaluate";
// More images per forward do not speed up a CPU and cost memory; the cap only catches typos.
constexpr long long kMaxBatchSize = 1024;

int UsageError(std::ostream& err, const std::string& message) {
  err << kCommand << ": " << message << "\nRun 'likeness evaluate --help' for usage.\n";
  return kExitUsage;
}

int Failure(std::ostream& err, const std::string& message) {
  err << kCommand << ": " << message << "\n";
  return kExitFailure;
}

// --losses FILE: {"train_loss": x, "heldout_loss": y}, either key optional.
absl::StatusOr<eval::LossSignals> ReadLosses(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  const nlohmann::json json = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": want a JSON object {\"", eval::kMetricTrainLoss, "\": x, \"",
        eval::kMetricHeldoutLoss, "\": y}"));
  }
  eval::LossSignals losses;
  for (const auto& [key, value] : json.items()) {
    if (key != eval::kMetricTrainLoss && key != eval::kMetricHeldoutLoss) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": unknown key '", key, "'"));
    }
    if (!value.is_number()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": '", key, "' is not a number"));
    }
    (key == eval::kMetricTrainLoss ? losses.train_loss : losses.heldout_loss) = value.get<double>();
  }
  return losses;
}

int RunEvaluate(const Args& args, std::ostream& out, std::ostream& err) {
  for (const char* required : {"real", "generated"}) {
    if (!args.Given(required)) return UsageError(err, absl::StrCat("--", required, " is required"));
  }
  absl::StatusOr<long long> batch_size = args.GetInt("batch-size");
  if (!batch_size.ok()) return UsageError(err, std::string(batch_size.status().message()));
  if (*batch_size < 1 || *batch_size > kMaxBatchSize) {
    return UsageError(err, absl::StrCat("--batch-size wants 1 to ", kMaxBatchSize, ", got ",
                                        *batch_size));
  }
  if (args.Given("identifier") && args.Get("identifier").empty()) {
    return UsageError(err, "--identifier is empty");
  }

  eval::EvaluatorOptions options;
  options.clip_path = args.Get("clip");
  options.dino_path = args.Get("dino");
  options.vocab_path = VocabPath(args);
  options.batch_size = static_cast<int>(*batch_size);

  eval::EvaluationInputs inputs;
  inputs.real_dir = args.Get("real");
  inputs.generated_dir = args.Get("generated");
  inputs.prompts_path = args.Get("prompts");
  inputs.identifier = args.Get("identifier");
  inputs.class_noun = args.Get("class");
  if (args.Given("losses")) {
    absl::StatusOr<eval::LossSignals> losses = ReadLosses(args.Get("losses"));
    if (!losses.ok()) return Failure(err, absl::StrCat("--losses ", losses.status().message()));
    inputs.losses = *losses;
  }

  absl::StatusOr<eval::Evaluator> evaluator = eval::Evaluator::Create(options);
  if (!evaluator.ok()) return Failure(err, std::string(evaluator.status().message()));
  absl::StatusOr<eval::EvaluationResult> result = evaluator->Evaluate(inputs);
  if (!result.ok()) return Failure(err, std::string(result.status().message()));

  out << eval::FormatEvaluationTable(*result);
  if (args.Given("json")) {
    if (absl::Status written = eval::WriteEvaluationJson(args.Get("json"), *result); !written.ok()) {
      return Failure(err, absl::StrCat("--json ", written.message()));
    }
    out << "\nwrote " << args.Get("json") << "\n";
  }
  out.flush();
  return out ? kExitOk : kExitFailure;
}

}  // namespace

Command MakeEvaluateCommand() {
  Command command;
  command.name = "evaluate";
  command.summary = "Score generated images against real photos: DINO, CLIP-I, CLIP-T, diversity.";
  command.usage_args =
      "--real DIR --generated DIR [--prompts FILE] [--clip PATH] [--dino PATH]\n"
      "         [--class NOUN] [--identifier TOKEN] [--json OUT]";
  command.description = absl::StrCat(
      "The DreamBench metrics of the DreamBooth paper for one subject, printed beside the\n"
      "paper's numbers (Table 1):\n"
      "  DINO    mean cosine of DINO ViT-S/16 [CLS] embeddings over all (generated, real) pairs\n"
      "  CLIP-I  the same with CLIP image embeddings\n"
      "  CLIP-T  mean cosine of each generated image's CLIP embedding with its prompt's, the\n"
      "          identifier replaced by the class noun ('a sks dog' is scored as 'a dog')\n"
      "  diversity among the generations (mean pairwise pixel distance; 1 - mean pairwise\n"
      "          cosine of the embeddings), and training losses given with --losses.\n"
      "A metric whose weights are not given is skipped, and the output says which and why.\n"
      "Give the same folder as --real and --generated for the paper's real-image row (pairs of\n"
      "an image with itself are then left out).\n"
      "\n"
      "DIR: the .png, .jpg, .jpeg and .webp files directly in it.\n"
      "--clip PATH: a transformers folder (config.json + model.safetensors) or a .safetensors\n"
      "  file of CLIPModel (both towers; CLIP-T needs the text tower) or\n"
      "  CLIPVisionModelWithProjection, e.g. openai/clip-vit-large-patch14. --dino PATH: the same\n"
      "  for facebook/dino-vits16 (ViTModel) or the original DINO names. Without a config.json\n"
      "  the sizes are read from the tensors (heads of width 64 assumed).\n"
      "--prompts FILE: JSON {\"image.png\": \"prompt\", ...}, or text with one prompt per line\n"
      "  in file-name order, or NAME<TAB>PROMPT lines. Without it, or for images it does not\n"
      "  name, the PNG's \"parameters\" text (AUTOMATIC1111 format) gives the prompt.\n"
      "\n"
      "Exit status: 0 ok, 1 a file could not be read or scored, 2 bad command line.");
  command.options = {
      {"real", "DIR", "the subject's real photos", ""},
      {"generated", "DIR", "the generated images", ""},
      {"prompts", "FILE", "the prompt of each generated image (see above)", ""},
      {"clip", "PATH", "CLIP weights: CLIP-I and CLIP-T", ""},
      {"dino", "PATH", "DINO ViT weights: DINO", ""},
      {"class", "NOUN", "the subject's class noun ('dog'), put in place of the identifier", ""},
      {"identifier", "TOKEN", "the subject's token in the prompts ('sks')", ""},
      {"json", "OUT", "also write the full report (per image too) as JSON to OUT", ""},
      {"losses", "FILE", "JSON {\"train_loss\": x, \"heldout_loss\": y} to report beside", ""},
      {"batch-size", "N", "images per encoder forward",
       std::to_string(eval::kDefaultEmbeddingBatchSize)},
      VocabOption(),
  };
  command.max_positional = 0;
  command.run = RunEvaluate;
  return command;
}

}  // namespace likeness::cli
