// Golden checker for transformers' ViTModel with DINO settings (golden README section 7): built
// from the sidecar's "config" without a pooler (the sidecar's constructor_args must say
// add_pooling_layer=false), loaded strictly, run on __input__.pixel_values with
// output_hidden_states. Every __output__ key (last_hidden_state, cls_embedding,
// hidden_states.<i>) is compared; any other key fails by name.
//
// The same weights are then written under the original DINO names (the inverse of every row of
// dino_rename_table.h, q/k/v fused back into one qkv tensor), loaded through the rename table
// and must give the same outputs bit for bit: that checks the table against real names and
// shapes.
#include <iostream>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "tests/model/golden_harness.h"
#include "worker/model/layers.h"
#include "worker/model/state_dict.h"
#include "worker/model/vision/dino_rename_table.h"
#include "worker/model/vision/vision_config.h"
#include "worker/model/vision/vit_model.h"

namespace likeness::testing {
namespace {

using model::ViTConfig;

constexpr char kViTModelClass[] = "transformers.ViTModel";
constexpr char kOutputPrefix[] = "__output__.";
constexpr char kHiddenStatesPrefix[] = "hidden_states.";

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

std::map<std::string, torch::Tensor> Outputs(model::ViTModel& vit, const torch::Tensor& pixels) {
  model::ViTForwardOptions options;
  options.output_hidden_states = true;
  options.attention_backend = model::AttentionBackend::kReference;
  const model::ViTModelOutput out = vit(pixels, options);
  std::map<std::string, torch::Tensor> computed = {{"last_hidden_state", out.last_hidden_state},
                                                   {"cls_embedding", out.cls_embedding}};
  for (size_t i = 0; i < out.hidden_states.size(); ++i) {
    computed[absl::StrCat(kHiddenStatesPrefix, i)] = out.hidden_states[i];
  }
  return computed;
}

// The inverse of the rename table for a model of `layers` layers: transformers -> original names.
model::StateDict ToOriginalDinoNames(const model::StateDict& weights, int64_t layers) {
  model::StateDict original;
  for (const model::DinoRenameRow& row : model::DinoRenameTable()) {
    const bool per_layer = absl::StrContains(row.original, "{i}");
    for (int64_t i = 0; i < (per_layer ? layers : 1); ++i) {
      const auto expand = [&](const char* t) {
        return absl::StrReplaceAll(t, {{"{i}", absl::StrCat(i)}});
      };
      if (row.op == model::DinoTensorOp::kCopy) {
        original[expand(row.original)] = weights.at(expand(row.transformers[0]));
      } else {
        original[expand(row.original)] =
            torch::cat({weights.at(expand(row.transformers[0])),
                        weights.at(expand(row.transformers[1])),
                        weights.at(expand(row.transformers[2]))});
      }
    }
  }
  return original;
}

void CheckDinoVit(const GoldenCase& c) {
  if (const auto args = c.sidecar.find("constructor_args"); args != c.sidecar.end()) {
    ASSERT_FALSE(args->value("add_pooling_layer", true))
        << c.name << ": the reference has a pooler; ViTModel here is built without one";
  }
  absl::StatusOr<ViTConfig> config =
      ViTConfig::FromJson(c.sidecar.value("config", nlohmann::json::object()));
  ASSERT_TRUE(config.ok()) << c.name << ": " << config.status();
  absl::StatusOr<model::ViTModel> vit = model::CreateViTModel(*config);
  ASSERT_TRUE(vit.ok()) << vit.status();
  absl::StatusOr<model::StateDict> weights = model::ReadStateDict(*c.file);
  ASSERT_TRUE(weights.ok()) << weights.status();
  absl::StatusOr<model::LoadReport> report = model::LoadViTStateDict(**vit, *weights, c.path);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->unexpected.empty())
      << c.name << ": tensors the model lacks: " << model::JoinNamesForError(report->unexpected);
  if (const auto w = c.sidecar.find("weights"); w != c.sidecar.end() && w->is_object()) {
    if (w->contains("count")) {
      EXPECT_EQ(report->loaded, w->at("count").get<int>()) << c.name;
    }
    if (w->contains("num_parameters")) {
      EXPECT_EQ(model::CountParameters(**vit), w->at("num_parameters").get<int64_t>()) << c.name;
    }
  }
  (*vit)->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor pixels = c.Input("pixel_values");
  const std::map<std::string, torch::Tensor> computed = Outputs(*vit, pixels);

  int checked = 0;
  for (const std::string& name : c.file->Names()) {
    if (!absl::StartsWith(name, kOutputPrefix)) continue;
    const std::string key = name.substr(sizeof(kOutputPrefix) - 1);
    const auto it = computed.find(key);
    if (it == computed.end()) {
      ADD_FAILURE() << c.name << ": output '" << key << "' has no check in golden_dino_vit.cc";
      continue;
    }
    CompareAndReport(c, key, it->second);
    ++checked;
  }
  EXPECT_GT(checked, 0) << c.name << " holds no " << kOutputPrefix << " tensors";

  // The original DINO names, through the rename table, give the same model.
  const model::StateDict original = ToOriginalDinoNames(*weights, config->num_hidden_layers);
  ASSERT_TRUE(model::HasOriginalDinoNames(original));
  absl::StatusOr<model::DinoConversion> converted = model::ConvertOriginalDinoNames(original);
  ASSERT_TRUE(converted.ok()) << converted.status();
  absl::StatusOr<model::ViTModel> renamed = model::CreateViTModel(*config);
  ASSERT_TRUE(renamed.ok()) << renamed.status();
  absl::StatusOr<model::LoadReport> renamed_report =
      model::LoadViTStateDict(**renamed, converted->weights, c.path + " (original DINO names)");
  ASSERT_TRUE(renamed_report.ok()) << renamed_report.status();
  EXPECT_TRUE(renamed_report->unexpected.empty())
      << model::JoinNamesForError(renamed_report->unexpected);
  EXPECT_EQ(renamed_report->loaded, report->loaded);
  (*renamed)->eval();
  for (const auto& [key, tensor] : Outputs(*renamed, pixels)) {
    EXPECT_TRUE(torch::equal(tensor, computed.at(key)))
        << c.name << ": " << key << " differs when loaded from the original DINO names";
  }
}

LIKENESS_REGISTER_GOLDEN(kViTModelClass, CheckDinoVit);

}  // namespace
}  // namespace likeness::testing
