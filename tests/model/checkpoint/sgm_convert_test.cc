// ConvertSingleFile / ToSingleFile on every golden single-file case (README section 5): every
// key_map entry bit for bit, the counts, configs, and the errors for missing and unknown tensors.
#include "worker/model/checkpoint/sgm_convert.h"

#include <torch/torch.h>

#include <map>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "common/safetensors/safetensors_file.h"
#include "gtest/gtest.h"
#include "tests/model/checkpoint/test_util.h"
#include "tests/test_data.h"

namespace likeness::model::checkpoint {
namespace {

using testing::BitEqual;
using testing::ComponentOf;
using testing::IsErrorNaming;
using testing::RefsOf;
using testing::SingleFileCase;

StateDict ReadAll(const SingleFileCase& c) {
  auto file = safetensors::SafetensorsFile::Open(c.path);
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return {};
  auto sd = ReadStateDict(**file);
  EXPECT_TRUE(sd.ok()) << sd.status();
  return sd.ok() ? *sd : StateDict();
}

// The first single-file key of `component` whose name contains every one of `parts`.
std::string FirstKey(const StateDict& sgm, Component component,
                     std::initializer_list<const char*> parts) {
  for (const auto& [name, tensor] : sgm) {
    if (ComponentOf(name) != component) continue;
    bool all = true;
    for (const char* part : parts) all = all && absl::StrContains(name, part);
    if (all) return name;
  }
  ADD_FAILURE() << "no key of " << ComponentName(component) << " with the given parts";
  return "";
}

class SingleFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cases_ = testing::SingleFileCases();
    ASSERT_FALSE(cases_.empty()) << "no golden sidecar of class " << testing::kSingleFileClass
                                 << " in " << likeness::testing::GoldenDir();
  }
  std::vector<SingleFileCase> cases_;
};

TEST_F(SingleFileTest, EveryKeyMapEntryConvertsToItsGoldenTensorBitForBit) {
  for (const SingleFileCase& c : cases_) {
    SCOPED_TRACE(c.name);
    auto converted = LoadSingleFile(c.path, c.sidecar.at("config"));
    ASSERT_TRUE(converted.ok()) << converted.status();
    std::map<Component, size_t> refs_per_component;
    for (const auto& [sgm_name, refs] : c.sidecar.at("key_map").items()) {
      const std::optional<Component> component = ComponentOf(sgm_name);
      ASSERT_TRUE(component.has_value()) << sgm_name;
      const StateDict& weights = converted->Weights(*component);
      for (const std::string& ref : RefsOf(refs)) {
        ++refs_per_component[*component];
        const std::string name = testing::DiffusersNameOf(*component, ref);
        auto it = weights.find(name);
        ASSERT_NE(it, weights.end())
            << sgm_name << " -> " << ref << ": no converted tensor '" << name << "'";
        EXPECT_TRUE(BitEqual(it->second, testing::GoldenTensor(ref))) << sgm_name << " -> " << ref;
      }
    }
    // Nothing converted beyond what the key_map names, and nothing left over.
    for (Component component : kAllComponents) {
      EXPECT_EQ(converted->Weights(component).size(), refs_per_component[component])
          << ComponentName(component);
    }
    EXPECT_TRUE(converted->unknown.empty()) << converted->unknown.front();
    EXPECT_TRUE(converted->ignored.empty());
    EXPECT_TRUE(converted->absent.empty());
  }
}

TEST_F(SingleFileTest, KeysOutsideKeyOpsArePlainCopies) {
  for (const SingleFileCase& c : cases_) {
    SCOPED_TRACE(c.name);
    const StateDict sgm = ReadAll(c);
    const nlohmann::json& ops = c.sidecar.at("key_ops");
    for (const auto& [sgm_name, refs] : c.sidecar.at("key_map").items()) {
      if (ops.contains(sgm_name)) continue;
      ASSERT_TRUE(refs.is_string()) << sgm_name;
      EXPECT_TRUE(BitEqual(sgm.at(sgm_name), testing::GoldenTensor(refs.get<std::string>())))
          << sgm_name;
    }
  }
}

TEST_F(SingleFileTest, CountsPerPrefixMatchKeyCounts) {
  for (const SingleFileCase& c : cases_) {
    SCOPED_TRACE(c.name);
    const StateDict sgm = ReadAll(c);
    const nlohmann::json& counts = c.sidecar.at("key_counts");
    size_t listed_total = 0;
    for (const auto& [prefix, count] : counts.items()) {
      if (prefix == "total") continue;
      size_t n = 0;
      for (const auto& [name, tensor] : sgm) n += absl::StartsWith(name, prefix) ? 1 : 0;
      EXPECT_EQ(n, count.get<size_t>()) << prefix;
      listed_total += n;
    }
    EXPECT_EQ(sgm.size(), counts.at("total").get<size_t>());
    EXPECT_EQ(listed_total, sgm.size());
    EXPECT_EQ(c.sidecar.at("key_map").size(), sgm.size());
  }
}

TEST_F(SingleFileTest, ConfigsWithTheSidecarOverrideEqualTheSidecarConfigs) {
  for (const SingleFileCase& c : cases_) {
    SCOPED_TRACE(c.name);
    auto converted = LoadSingleFile(c.path, c.sidecar.at("config"));
    ASSERT_TRUE(converted.ok()) << converted.status();
    for (Component component : kAllComponents) {
      const std::string name(ComponentName(component));
      // Equal as whole objects: detection writes exactly the fields diffusers/transformers write.
      EXPECT_EQ(converted->Config(component), c.sidecar.at("config").at(name))
          << name << "\n got: " << converted->Config(component).dump();
    }
  }
}

TEST_F(SingleFileTest, ConversionIsZeroCopy) {
  for (const SingleFileCase& c : cases_) {
    SCOPED_TRACE(c.name);
    const StateDict sgm = ReadAll(c);
    auto converted = ConvertSingleFile(sgm, c.name, c.sidecar.at("config"));
    ASSERT_TRUE(converted.ok()) << converted.status();
    // Every converted tensor points into the storage of the single-file tensor it came from:
    // copies, splits (narrows), the 1x1 reshape and the transpose are all views.
    for (const auto& [sgm_name, refs] : c.sidecar.at("key_map").items()) {
      const Component component = *ComponentOf(sgm_name);
      const torch::Tensor& source = sgm.at(sgm_name);
      const char* begin = static_cast<const char*>(source.data_ptr());
      const char* end = begin + source.numel() * source.element_size();
      for (const std::string& ref : RefsOf(refs)) {
        const torch::Tensor& t =
            converted->Weights(component).at(testing::DiffusersNameOf(component, ref));
        const char* p = static_cast<const char*>(t.data_ptr());
        EXPECT_TRUE(p >= begin && p < end) << sgm_name << " -> " << ref;
      }
    }
  }
}

TEST_F(SingleFileTest, KeepsTheFileDtype) {
  for (const SingleFileCase& c : cases_) {
    SCOPED_TRACE(c.name);
    StateDict sgm = ReadAll(c);
    for (auto& [name, tensor] : sgm) tensor = tensor.to(torch::kHalf);
    nlohmann::json override_config = c.sidecar.at("config");
    override_config["text_encoder"].erase(
        "torch_dtype");  // So the config reports the weights' dtype.
    auto converted = ConvertSingleFile(sgm, c.name, override_config);
    ASSERT_TRUE(converted.ok()) << converted.status();
    for (Component component : kAllComponents) {
      for (const auto& [name, tensor] : converted->Weights(component)) {
        EXPECT_EQ(tensor.scalar_type(), torch::kHalf) << name;
      }
    }
    EXPECT_EQ(converted->text_encoder_config.at("torch_dtype"), "float16");
  }
}

TEST_F(SingleFileTest, MissingTensorsAreNamed) {
  for (const SingleFileCase& c : cases_) {
    SCOPED_TRACE(c.name);
    StateDict sgm = ReadAll(c);
    const std::vector<std::string> removed = {
        FirstKey(sgm, Component::kUnet, {"output_blocks.", "out_layers.3.weight"}),
        FirstKey(sgm, Component::kVae, {"decoder.up.", "conv1.weight"}),
        FirstKey(sgm, Component::kTextEncoder, {"mlp.fc2.bias"}),
        FirstKey(sgm, Component::kTextEncoder2, {"attn.in_proj_weight"}),
    };
    for (const std::string& name : removed) sgm.erase(name);
    std::vector<std::string> subjects = removed;
    subjects.push_back(c.name);
    EXPECT_TRUE(IsErrorNaming(ConvertSingleFile(sgm, c.name, c.sidecar.at("config")).status(),
                              absl::StatusCode::kInvalidArgument, subjects));
  }
}

TEST_F(SingleFileTest, ExtraTensorsAreReportedAsUnknownOrIgnored) {
  for (const SingleFileCase& c : cases_) {
    SCOPED_TRACE(c.name);
    StateDict sgm = ReadAll(c);
    const torch::Tensor any = torch::zeros({1});
    const std::set<std::string> unknown = {"model.diffusion_model.input_blocks.1.0.extra.weight",
                                           "first_stage_model.encoder.mystery",
                                           "not_a_component.weight"};
    const std::set<std::string> ignored = {
        "conditioner.embedders.1.model.logit_scale",
        "conditioner.embedders.0.transformer.text_model.embeddings.position_ids", "denoiser.sigmas",
        "first_stage_model.loss.logvar"};
    for (const auto& name : unknown) sgm[name] = any;
    for (const auto& name : ignored) sgm[name] = any;
    auto converted = ConvertSingleFile(sgm, c.name, c.sidecar.at("config"));
    ASSERT_TRUE(converted.ok()) << converted.status();
    EXPECT_EQ(std::set<std::string>(converted->unknown.begin(), converted->unknown.end()), unknown);
    EXPECT_EQ(std::set<std::string>(converted->ignored.begin(), converted->ignored.end()), ignored);
  }
}

TEST_F(SingleFileTest, RoundTripsThroughToSingleFile) {
  for (const SingleFileCase& c : cases_) {
    SCOPED_TRACE(c.name);
    const StateDict sgm = ReadAll(c);
    auto converted = ConvertSingleFile(sgm, c.name, c.sidecar.at("config"));
    ASSERT_TRUE(converted.ok()) << converted.status();
    auto back = ToSingleFile(*converted, c.name);
    ASSERT_TRUE(back.ok()) << back.status();
    ASSERT_EQ(back->size(), sgm.size());
    for (const auto& [name, tensor] : sgm) {
      auto it = back->find(name);
      ASSERT_NE(it, back->end()) << name;
      EXPECT_TRUE(BitEqual(it->second, tensor)) << name;
    }
  }
}

TEST_F(SingleFileTest, AUnetOnlyFileLeavesTheOtherComponentsAbsent) {
  for (const SingleFileCase& c : cases_) {
    SCOPED_TRACE(c.name);
    StateDict unet_only;
    for (const auto& [name, tensor] : ReadAll(c)) {
      if (ComponentOf(name) == Component::kUnet) unet_only[name] = tensor;
    }
    auto converted = ConvertSingleFile(unet_only, c.name, c.sidecar.at("config"));
    ASSERT_TRUE(converted.ok()) << converted.status();
    EXPECT_EQ(converted->absent,
              (std::vector<std::string>{"vae", "text_encoder", "text_encoder_2"}));
    EXPECT_TRUE(converted->vae.empty());
    EXPECT_TRUE(converted->vae_config.is_null());
    EXPECT_FALSE(converted->unet.empty());
  }
}

TEST_F(SingleFileTest, AFileWithoutUnetIsRejected) {
  for (const SingleFileCase& c : cases_) {
    StateDict vae_only;
    for (const auto& [name, tensor] : ReadAll(c)) {
      if (ComponentOf(name) == Component::kVae) vae_only[name] = tensor;
    }
    EXPECT_TRUE(IsErrorNaming(ConvertSingleFile(vae_only, c.name).status(),
                              absl::StatusCode::kInvalidArgument,
                              {c.name, "model.diffusion_model."}));
  }
}

TEST_F(SingleFileTest, AFusedTensorOfTheWrongShapeIsNamed) {
  for (const SingleFileCase& c : cases_) {
    StateDict sgm = ReadAll(c);
    const std::string name = FirstKey(sgm, Component::kTextEncoder2, {"attn.in_proj_weight"});
    sgm[name] = sgm[name].narrow(0, 0, sgm[name].size(0) - 1);  // [3H - 1, H]: no thirds
    EXPECT_TRUE(IsErrorNaming(ConvertSingleFile(sgm, c.name, c.sidecar.at("config")).status(),
                              absl::StatusCode::kInvalidArgument, {c.name, name}));
  }
}

TEST_F(SingleFileTest, WithoutOverrideUndeterminedHeadsAreAFailedPrecondition) {
  for (const SingleFileCase& c : cases_) {
    SCOPED_TRACE(c.name);
    auto converted = LoadSingleFile(c.path);
    if (converted.ok()) continue;  // A data set whose sizes follow SDXL's head conventions.
    EXPECT_TRUE(IsErrorNaming(converted.status(), absl::StatusCode::kFailedPrecondition, {c.path}));
    EXPECT_TRUE(absl::StrContains(converted.status().message(), "attention_head_dim") ||
                absl::StrContains(converted.status().message(), "num_attention_heads"))
        << converted.status();
  }
}

TEST_F(SingleFileTest, AnOverrideThatContradictsTheWeightsIsRejected) {
  for (const SingleFileCase& c : cases_) {
    nlohmann::json override_config = c.sidecar.at("config");
    override_config["vae"]["latent_channels"] =
        override_config["vae"]["latent_channels"].get<int>() + 1;
    EXPECT_TRUE(IsErrorNaming(LoadSingleFile(c.path, override_config).status(),
                              absl::StatusCode::kInvalidArgument, {"latent_channels", "vae"}));
    nlohmann::json unknown_component = c.sidecar.at("config");
    unknown_component["refiner"] = nlohmann::json::object();
    EXPECT_TRUE(IsErrorNaming(LoadSingleFile(c.path, unknown_component).status(),
                              absl::StatusCode::kInvalidArgument, {"refiner"}));
  }
}

}  // namespace
}  // namespace likeness::model::checkpoint
