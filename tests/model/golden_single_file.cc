// Golden checker for single-file SDXL checkpoints (class sgm.models.diffusion.DiffusionEngine):
// the file is loaded through the rename table into the four modules, which must reproduce the
// outputs of the diffusers-named golden files it was made from (the sidecar's "sources").
// A second test goes the other way: it writes the diffusers-named golden weights in single-file
// naming with our writer and loads that back to the same outputs.
#include <filesystem>
#include <fstream>

#include "common/safetensors/writer.h"
#include "gtest/gtest.h"
#include "tests/model/golden_harness.h"
#include "tests/test_data.h"
#include "worker/model/checkpoint/checkpoint_kind.h"
#include "worker/model/checkpoint/sgm_convert.h"
#include "worker/model/sdxl/sdxl_models.h"
#include "worker/model/state_dict.h"
#include "worker/model/text/sdxl_conditioning.h"

namespace likeness::testing {
namespace {

namespace fs = std::filesystem;
using model::SdxlModels;

constexpr char kSingleFileClass[] = "sgm.models.diffusion.DiffusionEngine";
constexpr char kUNetClass[] = "diffusers.UNet2DConditionModel";
constexpr char kVaeClass[] = "diffusers.AutoencoderKL";

GoldenCase OpenCase(const std::string& file_name) {
  GoldenCase c;
  c.path = (fs::path(GoldenDir()) / file_name).string();
  c.name = fs::path(file_name).stem().string();
  std::ifstream sidecar(fs::path(c.path).replace_extension(".json"));
  c.sidecar = nlohmann::json::parse(sidecar, nullptr, /*allow_exceptions=*/false);
  auto file = safetensors::SafetensorsFile::Open(c.path);
  EXPECT_TRUE(file.ok()) << file.status();
  if (file.ok()) c.file = *file;
  return c;
}

// Runs the component that `source` checks and compares its stored outputs.
void ExpectReproduces(SdxlModels& models, const GoldenCase& source, const std::string& label) {
  torch::NoGradGuard no_grad;
  const nlohmann::json& cls = source.sidecar["class"];
  if (cls.is_string() && cls.get<std::string>() == kUNetClass) {
    torch::Tensor out = models.unet->forward(source.Input("sample"), source.Input("timestep"),
                                             source.Input("encoder_hidden_states"), source.Input("text_embeds"),
                                             source.Input("time_ids"));
    ExpectGoldenClose(out, source.Output("sample"), label + ": unet sample");
  } else if (cls.is_string() && cls.get<std::string>() == kVaeClass) {
    auto posterior = models.vae->Encode(source.Input("image"));
    ExpectGoldenClose(posterior.mean(), source.Output("latent_dist.mean"), label + ": vae latent mean");
    ExpectGoldenClose(posterior.logvar(), source.Output("latent_dist.logvar"), label + ": vae latent logvar");
    ExpectGoldenClose(models.vae->Decode(source.Input("latent")), source.Output("decoded"), label + ": vae decoded");
  } else if (cls.is_object()) {
    model::SdxlPromptEmbeds embeds =
        model::EncodeSdxlPrompt(models.text_encoder, models.text_encoder_2, source.Input("text_encoder.input_ids"),
                                source.Input("text_encoder_2.input_ids"));
    ExpectGoldenClose(embeds.prompt_embeds, source.Output("prompt_embeds"), label + ": prompt_embeds");
    ExpectGoldenClose(embeds.pooled_prompt_embeds, source.Output("pooled_prompt_embeds"),
                      label + ": pooled_prompt_embeds");
  } else {
    ADD_FAILURE() << label << ": source " << source.name << " has a class this checker does not know";
  }
}

void CheckSingleFile(const GoldenCase& c) {
  ASSERT_TRUE(c.sidecar.contains("sources")) << c.name << ": sidecar lacks 'sources'";
  model::SdxlLoadReport report;
  // Heads cannot be read from weights; the sidecar's configs say them (as a user's override would).
  absl::StatusOr<SdxlModels> models = model::LoadSdxlModels(c.path, {}, &report, c.sidecar["config"]);
  ASSERT_TRUE(models.ok()) << models.status();
  EXPECT_EQ(report.format, model::checkpoint::CheckpointKindName(model::checkpoint::CheckpointKind::kSingleFile));
  EXPECT_TRUE(report.unexpected.empty()) << model::JoinNamesForError(report.unexpected);
  for (const auto& [file_name, sha] : c.sidecar["sources"].items()) {
    ExpectReproduces(*models, OpenCase(file_name), c.name + " via " + file_name);
  }
}

LIKENESS_REGISTER_GOLDEN(kSingleFileClass, CheckSingleFile);

// The sidecar of the single-file case names its sources; they are the diffusers-named files.
TEST(SingleFileRoundTripTest, DiffusersWeightsWrittenInSingleFileNamingLoadToTheSameOutputs) {
  // A data set without a single-file case (e.g. schedulers only) has nothing to round-trip.
  if (!fs::exists(fs::path(GoldenDir()) / "sdxl_single_file_tiny.safetensors")) {
    GTEST_SKIP() << "no sdxl_single_file_tiny in " << GoldenDir();
  }
  const GoldenCase single = OpenCase("sdxl_single_file_tiny.safetensors");
  ASSERT_TRUE(single.file) << "no single-file golden case in " << GoldenDir();
  model::checkpoint::SdxlComponents components;
  std::vector<GoldenCase> sources;
  for (const auto& [file_name, sha] : single.sidecar["sources"].items()) {
    sources.push_back(OpenCase(file_name));
    const GoldenCase& s = sources.back();
    const nlohmann::json& cls = s.sidecar["class"];
    if (cls.is_string() && cls.get<std::string>() == kUNetClass) {
      components.unet = *model::ReadStateDict(*s.file);
    } else if (cls.is_string() && cls.get<std::string>() == kVaeClass) {
      components.vae = *model::ReadStateDict(*s.file);
    } else {
      components.text_encoder = *model::ReadStateDict(*s.file, "text_encoder.");
      components.text_encoder_2 = *model::ReadStateDict(*s.file, "text_encoder_2.");
    }
  }
  absl::StatusOr<model::StateDict> sgm = model::checkpoint::ToSingleFile(components, "golden sources");
  ASSERT_TRUE(sgm.ok()) << sgm.status();
  const std::string path = MakeTestTempDir("single_file_roundtrip") + "/tiny_sdxl.safetensors";
  ASSERT_TRUE(safetensors::WriteSafetensors(path, safetensors::NamedTensors(sgm->begin(), sgm->end())).ok());

  model::SdxlLoadReport report;
  absl::StatusOr<SdxlModels> models = model::LoadSdxlModels(path, {}, &report, single.sidecar["config"]);
  ASSERT_TRUE(models.ok()) << models.status();
  EXPECT_TRUE(report.unexpected.empty()) << model::JoinNamesForError(report.unexpected);
  for (const GoldenCase& s : sources) ExpectReproduces(*models, s, "round trip via " + s.name);
}

}  // namespace
}  // namespace likeness::testing
