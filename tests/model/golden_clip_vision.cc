// Golden checker for transformers' CLIPVisionModelWithProjection (golden README section 6): the
// model is built from the sidecar's "config", loaded strictly from the file's weights and run on
// __input__.pixel_values with output_hidden_states. Every __output__ key is compared:
//   last_hidden_state, pooler_output, image_embeds, penultimate_hidden_state, hidden_states.<i>
//     from that forward;
//   preprocess.image_embeds from a forward on the stored preprocess.pixel_values;
//   preprocess.resized_uint8 and preprocess.pixel_values are CLIPImageProcessor's outputs, which
//     the preprocessing in worker/eval reproduces; this binary does not link it, so the
//     eval_preprocess test (tests/eval/preprocess_golden_test.cc) checks those two keys of every
//     golden file of this class, bit for bit.
// Any other key fails by name, so a new case of the same format is checked without code changes.
#include <iostream>
#include <map>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/model/golden_harness.h"
#include "worker/model/layers.h"
#include "worker/model/state_dict.h"
#include "worker/model/vision/clip_vision_model.h"
#include "worker/model/vision/vision_config.h"

namespace likeness::testing {
namespace {

using model::ClipVisionConfig;
using model::ClipVisionForwardOptions;
using model::ClipVisionOutput;

constexpr char kClipVisionClass[] = "transformers.CLIPVisionModelWithProjection";
constexpr char kOutputPrefix[] = "__output__.";
constexpr char kHiddenStatesPrefix[] = "hidden_states.";
constexpr char kPreprocessPixelValues[] = "preprocess.pixel_values";
constexpr char kPreprocessImageEmbeds[] = "preprocess.image_embeds";
// Checked by tests/eval/preprocess_golden_test.cc (see the file comment).
const std::set<std::string>& KeysCheckedByEvalPreprocessTest() {
  static const auto* keys =
      new std::set<std::string>{"preprocess.resized_uint8", kPreprocessPixelValues};
  return *keys;
}

// Prints max|diff| / max|ref| (the number the README's tolerance bounds), then checks it.
void CompareAndReport(const GoldenCase& c, const std::string& key, const torch::Tensor& actual) {
  const torch::Tensor expected = c.Output(key);
  if (actual.defined() && actual.sizes() == expected.sizes()) {
    const double max_ref = expected.abs().max().item<double>();
    const double max_diff =
        (actual.detach().to(torch::kFloat64) - expected.to(torch::kFloat64)).abs().max().item<double>();
    std::cout << "[ golden   ] " << c.name << " " << key << ": max|diff| " << max_diff
              << ", max|diff|/max|ref| " << (max_ref > 0 ? max_diff / max_ref : max_diff) << "\n";
  }
  ExpectGoldenClose(actual, expected, c.name + ": " + key);
}

void CheckClipVision(const GoldenCase& c) {
  absl::StatusOr<ClipVisionConfig> config =
      ClipVisionConfig::FromJson(c.sidecar.value("config", nlohmann::json::object()));
  ASSERT_TRUE(config.ok()) << c.name << ": " << config.status();
  absl::StatusOr<model::CLIPVisionModelWithProjection> clip = model::CreateClipVisionModel(*config);
  ASSERT_TRUE(clip.ok()) << clip.status();
  absl::StatusOr<model::StateDict> weights = model::ReadStateDict(*c.file);
  ASSERT_TRUE(weights.ok()) << weights.status();
  absl::StatusOr<model::LoadReport> report =
      model::LoadClipVisionStateDict(**clip, *weights, c.path);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->unexpected.empty())
      << c.name << ": tensors the model lacks: " << model::JoinNamesForError(report->unexpected);
  if (const auto w = c.sidecar.find("weights"); w != c.sidecar.end() && w->is_object()) {
    if (w->contains("count")) {
      EXPECT_EQ(report->loaded, w->at("count").get<int>()) << c.name;
    }
    if (w->contains("num_parameters")) {
      EXPECT_EQ(model::CountParameters(**clip), w->at("num_parameters").get<int64_t>()) << c.name;
    }
  }
  (*clip)->eval();
  torch::NoGradGuard no_grad;

  ClipVisionForwardOptions options;
  options.output_hidden_states = true;
  options.attention_backend = model::AttentionBackend::kReference;
  const ClipVisionOutput out = (*clip)(c.Input("pixel_values"), options);
  std::map<std::string, torch::Tensor> computed = {
      {"last_hidden_state", out.last_hidden_state},
      {"pooler_output", out.pooler_output},
      {"image_embeds", out.image_embeds},
      {"penultimate_hidden_state", out.penultimate_hidden_state}};
  for (size_t i = 0; i < out.hidden_states.size(); ++i) {
    computed[absl::StrCat(kHiddenStatesPrefix, i)] = out.hidden_states[i];
  }

  int checked = 0;
  for (const std::string& name : c.file->Names()) {
    if (!absl::StartsWith(name, kOutputPrefix)) continue;
    const std::string key = name.substr(sizeof(kOutputPrefix) - 1);
    if (KeysCheckedByEvalPreprocessTest().count(key) > 0) {
      std::cout << "[ golden   ] " << c.name << " " << key
                << ": checked by the eval_preprocess test (worker/eval preprocessing)\n";
      continue;
    }
    if (key == kPreprocessImageEmbeds) {
      CompareAndReport(c, key, (*clip)(c.Output(kPreprocessPixelValues), options).image_embeds);
    } else if (const auto it = computed.find(key); it != computed.end()) {
      CompareAndReport(c, key, it->second);
    } else {
      ADD_FAILURE() << c.name << ": output '" << key << "' has no check in golden_clip_vision.cc";
      continue;
    }
    ++checked;
  }
  EXPECT_GT(checked, 0) << c.name << " holds no " << kOutputPrefix << " tensors";
}

LIKENESS_REGISTER_GOLDEN(kClipVisionClass, CheckClipVision);

}  // namespace
}  // namespace likeness::testing
