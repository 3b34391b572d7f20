// Shared pieces of the LoRA tests: a tiny SDXL bundle built from the golden configs
// (LIKENESS_GOLDEN_DIR: unet_tiny_sdxl.json, vae_tiny.json, text_encoders_tiny.json), randomly
// initialised, and fixed inputs for its UNet and text encoders.
#ifndef LIKENESS_TESTS_LORA_LORA_TEST_UTIL_H_
#define LIKENESS_TESTS_LORA_LORA_TEST_UTIL_H_

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/lora/lora_network.h"
#include "worker/model/sdxl/sdxl_models.h"

namespace likeness::testing {

// The golden configs of the tiny SDXL-topology models; errors name the file.
absl::StatusOr<model::SdxlConfigs> TinySdxlConfigs();

// Four tiny networks, float32 on the CPU, every parameter drawn from `seed`
// (model::InitializeRandomly), in eval mode.
absl::StatusOr<model::SdxlModels> TinySdxl(uint64_t seed = 7);

// Fixed inputs (drawn from `seed`) for the tiny models.
struct TinyInputs {
  torch::Tensor sample, timestep, encoder_hidden_states, text_embeds, time_ids;  // UNet
  torch::Tensor input_ids;                                                       // [B, 77]
};
TinyInputs MakeTinyInputs(uint64_t seed = 11);

// What the three LoRA-able networks compute on `inputs`: the UNet output and both encoders'
// last hidden states (text_encoder_2's text_embeds too), flattened and concatenated.
torch::Tensor RunTiny(model::SdxlModels& models, const TinyInputs& inputs);

// Fills every adapter's up (and down) with values drawn from `seed`, so the LoRA changes the
// output (fresh adapters have up = 0).
void RandomizeAdapters(lora::LoraNetwork& network, uint64_t seed, double std = 0.05);

// torch::equal with a readable failure.
bool BitIdentical(const torch::Tensor& a, const torch::Tensor& b);
// max |a - b|
double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace likeness::testing

#endif  // LIKENESS_TESTS_LORA_LORA_TEST_UTIL_H_
