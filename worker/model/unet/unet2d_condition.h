// UNet2DConditionModel: SDXL's denoiser, with diffusers' module tree and state-dict names
// (`down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight`), so a diffusers `unet/`
// folder loads with LoadStateDict and no renaming. Every size comes from UNetConfig.
//
// forward, step by step (diffusers' UNet2DConditionModel.forward):
//   1. temb = time_embedding(sinusoid(timestep)), the sinusoid computed in float32, then cast to
//      the sample's dtype;
//   2. text_time: emb = temb + add_embedding(cat(text_embeds, sinusoid(time_ids).reshape(B, -1)));
//   3. conv_in, the down blocks (collecting skips), the mid block, the up blocks (consuming them);
//   4. conv_norm_out, SiLU, conv_out.
// Parameters are created uninitialised (layers.h): load weights or call InitializeRandomly.
#ifndef LIKENESS_WORKER_MODEL_UNET_UNET2D_CONDITION_H_
#define LIKENESS_WORKER_MODEL_UNET_UNET2D_CONDITION_H_

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/model/layers.h"
#include "worker/model/unet/embeddings.h"
#include "worker/model/unet/unet_blocks.h"
#include "worker/model/unet/unet_config.h"

namespace likeness::model::unet {

struct UNetInputs {
  torch::Tensor sample;                 // [B, in_channels, H, W], the model's float dtype
  torch::Tensor timestep;               // [B], [1] or a scalar; any numeric dtype
  torch::Tensor encoder_hidden_states;  // [B, N, cross_attention_dim]
  torch::Tensor text_embeds;            // text_time only: [B, pooled]
  torch::Tensor time_ids;  // text_time only: [B, 6] (orig h, w, crop top, left, target h, w)
};

class UNet2DConditionModelImpl : public torch::nn::Module {
 public:
  // `config` must pass Validate() (use MakeUNet to get a Status instead of an exception).
  explicit UNet2DConditionModelImpl(const UNetConfig& config);

  // The noise (or v) prediction, [B, out_channels, H, W]. Throws c10::Error on bad inputs;
  // CheckInputs says what is wrong as a Status.
  torch::Tensor forward(const torch::Tensor& sample, const torch::Tensor& timestep,
                        const torch::Tensor& encoder_hidden_states,
                        const torch::Tensor& text_embeds = {}, const torch::Tensor& time_ids = {});
  torch::Tensor forward(const UNetInputs& inputs) {
    return forward(inputs.sample, inputs.timestep, inputs.encoder_hidden_states, inputs.text_embeds,
                   inputs.time_ids);
  }

  // INVALID_ARGUMENT naming the input and both shapes when an input does not fit the config.
  absl::Status CheckInputs(const UNetInputs& inputs) const;
  // CheckInputs, then forward; a c10::Error becomes INTERNAL with its message.
  absl::StatusOr<torch::Tensor> Run(const UNetInputs& inputs);

  // Recompute every ResnetBlock2D's and BasicTransformerBlock's activations in backward instead
  // of keeping them (activation_checkpoint.h): less memory for about one more forward pass.
  void SetGradientCheckpointing(bool enabled);
  bool gradient_checkpointing() const { return gradient_checkpointing_; }

  const UNetConfig& config() const { return config_; }

  Conv2d conv_in{nullptr}, conv_out{nullptr};
  TimestepEmbedding time_embedding{nullptr},
      add_embedding{nullptr};                                      // add_embedding: text_time only
  torch::nn::ModuleList down_blocks{nullptr}, up_blocks{nullptr};  // DownBlockBase / UpBlockBase
  UNetMidBlock2DCrossAttn mid_block{nullptr};
  GroupNorm conv_norm_out{nullptr};

 private:
  torch::Tensor Embedding(const torch::Tensor& sample, const torch::Tensor& timestep,
                          const torch::Tensor& text_embeds, const torch::Tensor& time_ids);

  UNetConfig config_;
  bool gradient_checkpointing_ = false;
};
TORCH_MODULE(UNet2DConditionModel);

// Validates `config` and builds the model (parameters uninitialised, with the options of the
// innermost ScopedParameterOptions).
absl::StatusOr<UNet2DConditionModel> MakeUNet(const UNetConfig& config);

}  // namespace likeness::model::unet

#endif  // LIKENESS_WORKER_MODEL_UNET_UNET2D_CONDITION_H_
