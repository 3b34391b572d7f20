#include "worker/eval/evaluation_report.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/atomic_file.h"
#include "worker/eval/metrics.h"

namespace likeness::eval {
namespace {

using nlohmann::json;

constexpr int kJsonIndent = 2;
constexpr char kAbsent[] = "-";

struct TableRow {
  const char* label;
  const char* metric;
  std::optional<double> ReferenceRow::*reference;
};
constexpr TableRow kTableRows[] = {
    {"DINO", kMetricDino, &ReferenceRow::dino},
    {"CLIP-I", kMetricClipI, &ReferenceRow::clip_i},
    {"CLIP-T", kMetricClipT, &ReferenceRow::clip_t},
};

// Three decimals, as the paper reports them.
std::string Number(std::optional<double> value) {
  return value ? absl::StrFormat("%.3f", *value) : std::string(kAbsent);
}

std::optional<double> Metric(const EvaluationResult& result, const char* key) {
  const auto it = result.metrics.find(key);
  return it == result.metrics.end() ? std::nullopt : std::optional<double>(it->second);
}

}  // namespace

json EvaluationToJson(const EvaluationResult& result) {
  json reference = {{"source", kPaperCitation}};
  for (const ReferenceRow& row : kPaperReferenceRows) {
    json values = json::object();
    if (row.dino) values[kMetricDino] = *row.dino;
    if (row.clip_i) values[kMetricClipI] = *row.clip_i;
    if (row.clip_t) values[kMetricClipT] = *row.clip_t;
    reference[row.key] = values;
  }
  json images = json::array();
  for (const ImageScore& score : result.generated) {
    json image = {{"file", score.file}};
    if (score.prompt) {
      image["prompt"] = *score.prompt;
      image["prompt_source"] = score.prompt_source;
    }
    if (score.evaluation_prompt) image["evaluation_prompt"] = *score.evaluation_prompt;
    if (score.dino) image[kMetricDino] = *score.dino;
    if (score.clip_i) image[kMetricClipI] = *score.clip_i;
    if (score.clip_t) image[kMetricClipT] = *score.clip_t;
    images.push_back(std::move(image));
  }
  json metrics = json::object();
  for (const auto& [key, value] : result.metrics) metrics[key] = value;
  return {{"format", kEvaluationFormat},
          {"real",
           {{"dir", result.real_dir},
            {"images", result.real_files.size()},
            {"files", result.real_files}}},
          {"generated", {{"dir", result.generated_dir}, {"images", result.generated.size()}}},
          {"same_set", result.same_set},
          {"prompts", {{"identifier", result.identifier}, {"class", result.class_noun}}},
          {"metrics", metrics},
          {"skipped", result.skipped},
          {"reference", reference},
          {"models", result.models},
          {"images", images},
          {"warnings", result.warnings}};
}

std::string FormatEvaluationTable(const EvaluationResult& result) {
  std::string out = absl::StrFormat(
      "%d generated images (%s) vs %d real images (%s)%s\n\n", result.generated.size(),
      result.generated_dir, result.real_files.size(), result.real_dir,
      result.same_set ? "; one folder, so pairs of an image with itself are left out" : "");
  absl::StrAppendFormat(&out, "%-8s %8s", "metric", "ours");
  for (const ReferenceRow& row : kPaperReferenceRows) absl::StrAppendFormat(&out, "  %18s", row.label);
  out += "\n";
  for (const TableRow& table_row : kTableRows) {
    absl::StrAppendFormat(&out, "%-8s %8s", table_row.label, Number(Metric(result, table_row.metric)));
    for (const ReferenceRow& row : kPaperReferenceRows) {
      absl::StrAppendFormat(&out, "  %18s", Number(row.*table_row.reference));
    }
    out += "\n";
  }
  absl::StrAppendFormat(&out, "reference columns: %s\n\n", kPaperCitation);
  absl::StrAppendFormat(&out, "diversity among generations: pixels %s, DINO %s, CLIP %s\n",
                        Number(Metric(result, kMetricDiversityPixels)),
                        Number(Metric(result, kMetricDiversityDino)),
                        Number(Metric(result, kMetricDiversityClip)));
  absl::StrAppendFormat(&out, "denoising loss: train %s, held-out %s\n",
                        Number(Metric(result, kMetricTrainLoss)),
                        Number(Metric(result, kMetricHeldoutLoss)));
  if (!result.skipped.empty()) {
    out += "\nskipped:\n";
    for (const auto& [metric, why] : result.skipped) {
      absl::StrAppendFormat(&out, "  %-17s %s\n", metric, why);
    }
  }
  if (!result.warnings.empty()) {
    out += "\nwarnings:\n";
    for (const std::string& warning : result.warnings) absl::StrAppend(&out, "  ", warning, "\n");
  }
  return out;
}

absl::Status WriteEvaluationJson(const std::string& path, const EvaluationResult& result) {
  return WriteFileAtomically(path, EvaluationToJson(result).dump(kJsonIndent) + "\n");
}

}  // namespace likeness::eval
