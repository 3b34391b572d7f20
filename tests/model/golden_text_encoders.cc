// Golden checker for SDXL's two text encoders (golden README section 3): the sidecar's
// "class" object names the components, {"text_encoder": "transformers.CLIPTextModel",
// "text_encoder_2": "transformers.CLIPTextModelWithProjection"}. Each component is built from
// sidecar["config"][component], loaded strictly from the "<component>." tensors, and run on
// __input__.<component>.input_ids. Every __output__ key the sidecar lists is compared; a key
// this checker cannot map to a computed tensor fails the test by name, so a new case of the
// same format (more layers, more outputs) is checked without code changes or silent gaps.
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/model/golden_harness.h"
#include "worker/model/state_dict.h"
#include "worker/model/text/clip_text_config.h"
#include "worker/model/text/clip_text_model.h"
#include "worker/model/text/sdxl_conditioning.h"

namespace likeness::testing {
namespace {

using model::ClipTextConfig;
using model::ClipTextForwardOptions;
using model::ClipTextOutput;

constexpr char kClipTextModelClass[] = "transformers.CLIPTextModel";
constexpr char kClipTextModelWithProjectionClass[] = "transformers.CLIPTextModelWithProjection";
constexpr char kOutputPrefix[] = "__output__.";
constexpr char kInputIdsKey[] = "input_ids";

// Every output name a component's forward can produce, as the sidecar spells it (README §3).
void AddComponentOutputs(const std::string& component, const ClipTextOutput& out,
                         std::map<std::string, torch::Tensor>& computed) {
  const std::string prefix = component + ".";
  computed[prefix + "last_hidden_state"] = out.last_hidden_state;
  computed[prefix + "penultimate_hidden_state"] = out.penultimate_hidden_state;
  computed[prefix + "pooler_output"] = out.pooler_output;
  computed[prefix + "pooled_pre_projection"] = out.pooler_output;
  if (out.text_embeds.defined()) computed[prefix + "text_embeds"] = out.text_embeds;
  for (size_t i = 0; i < out.hidden_states.size(); ++i) {
    computed[absl::StrCat(prefix, "hidden_states.", i)] = out.hidden_states[i];
  }
}

// Builds `model` from sidecar["config"][component] and loads the "<component>." weights strictly.
// Returns false (with failures recorded) when it cannot.
template <typename Model>
bool BuildAndLoad(const GoldenCase& c, const std::string& component, Model& module) {
  const auto configs = c.sidecar.find("config");
  if (configs == c.sidecar.end() || !configs->contains(component)) {
    ADD_FAILURE() << c.name << ": sidecar has no config." << component;
    return false;
  }
  absl::StatusOr<ClipTextConfig> config = ClipTextConfig::FromJson(configs->at(component));
  if (!config.ok()) {
    ADD_FAILURE() << c.name << ": config." << component << ": " << config.status();
    return false;
  }
  module = Model(*config);
  absl::StatusOr<model::StateDict> weights = model::ReadStateDict(*c.file, component + ".");
  if (!weights.ok()) {
    ADD_FAILURE() << weights.status();
    return false;
  }
  absl::StatusOr<model::LoadReport> report =
      model::LoadClipTextStateDict(*module, *weights, absl::StrCat(c.path, " (", component, ".)"));
  if (!report.ok()) {
    ADD_FAILURE() << report.status();
    return false;
  }
  EXPECT_TRUE(report->unexpected.empty())
      << c.name << ": tensors under '" << component << ".' that " << component
      << " does not have: " << model::JoinNamesForError(report->unexpected);
  const auto count = c.sidecar.find("weights");
  if (count != c.sidecar.end() && count->contains("count") &&
      count->at("count").contains(component)) {
    EXPECT_EQ(report->loaded, count->at("count").at(component).get<int>())
        << c.name << ": weights of " << component;
  }
  return true;
}

void CheckTextEncoders(const GoldenCase& c) {
  // The components by class: encoder 1 is the CLIPTextModel, encoder 2 the one with projection.
  std::string name_1, name_2;
  for (const auto& [component, cls] : c.sidecar.at("class").items()) {
    if (cls == kClipTextModelClass) {
      name_1 = component;
    } else if (cls == kClipTextModelWithProjectionClass) {
      name_2 = component;
    } else {
      ADD_FAILURE() << c.name << ": component '" << component << "' has class " << cls
                    << ", no text encoder";
    }
  }
  ASSERT_FALSE(name_1.empty() || name_2.empty())
      << c.name << ": want one component of each text encoder class";

  model::CLIPTextModel encoder_1{nullptr};
  model::CLIPTextModelWithProjection encoder_2{nullptr};
  ASSERT_TRUE(BuildAndLoad(c, name_1, encoder_1));
  ASSERT_TRUE(BuildAndLoad(c, name_2, encoder_2));
  encoder_1->eval();
  encoder_2->eval();

  // A weight under neither prefix belongs to nothing this checker builds.
  for (const std::string& name : c.file->Names()) {
    if (absl::StartsWith(name, "__")) continue;
    EXPECT_TRUE(absl::StartsWith(name, name_1 + ".") || absl::StartsWith(name, name_2 + "."))
        << c.name << ": weight '" << name << "' belongs to no text encoder";
  }

  torch::NoGradGuard no_grad;
  const torch::Tensor ids_1 = c.Input(name_1 + "." + kInputIdsKey);
  const torch::Tensor ids_2 = c.Input(name_2 + "." + kInputIdsKey);
  ASSERT_TRUE(ids_1.defined() && ids_2.defined());
  ClipTextForwardOptions all_hidden_states;
  all_hidden_states.output_hidden_states = true;

  std::map<std::string, torch::Tensor> computed;
  AddComponentOutputs(name_1, encoder_1(ids_1, all_hidden_states), computed);
  AddComponentOutputs(name_2, encoder_2(ids_2, all_hidden_states), computed);
  // The pipeline's conditioning, which stops encoder 1 at its penultimate layer.
  const model::SdxlPromptEmbeds embeds =
      model::EncodeSdxlPrompt(encoder_1, encoder_2, ids_1, ids_2);
  computed["prompt_embeds"] = embeds.prompt_embeds;
  computed["pooled_prompt_embeds"] = embeds.pooled_prompt_embeds;

  int compared = 0;
  for (const auto& [key, info] : c.sidecar.at("tensors").items()) {
    if (!absl::StartsWith(key, kOutputPrefix)) continue;
    const std::string output = key.substr(std::string(kOutputPrefix).size());
    const auto it = computed.find(output);
    if (it == computed.end() || !it->second.defined()) {
      ADD_FAILURE() << c.name << ": no computed tensor for output '" << output << "'";
      continue;
    }
    ExpectGoldenClose(it->second, c.Output(output), c.name + ": " + output);
    ++compared;
  }
  EXPECT_GT(compared, 0) << c.name << ": the sidecar lists no __output__ tensors";
}

LIKENESS_REGISTER_GOLDEN(std::string(kClipTextModelClass) + "+" + kClipTextModelWithProjectionClass,
                         CheckTextEncoders);

}  // namespace
}  // namespace likeness::testing
