#include "worker/model/text/sdxl_conditioning.h"

#include <array>

namespace likeness::model {

SdxlPromptEmbeds EncodeSdxlPrompt(CLIPTextModel& encoder_1, CLIPTextModelWithProjection& encoder_2,
                                  const torch::Tensor& ids_1, const torch::Tensor& ids_2) {
  TORCH_CHECK(ids_1.dim() == 2 && ids_1.sizes() == ids_2.sizes(),
              "EncodeSdxlPrompt: both token id tensors must be [B, N] of one shape, got ",
              ids_1.sizes(), " and ", ids_2.sizes());
  ClipTextForwardOptions penultimate_only;
  penultimate_only.stop_at_penultimate = true;
  const ClipTextOutput out_1 =
      encoder_1(ids_1.to(encoder_1->text_model->embeddings->token_embedding->weight.device()),
                penultimate_only);
  const ClipTextOutput out_2 =
      encoder_2(ids_2.to(encoder_2->text_model->embeddings->token_embedding->weight.device()));

  SdxlPromptEmbeds embeds;
  // [B, N, hidden_1] ++ [B, N, hidden_2] -> [B, N, hidden_1 + hidden_2]; diffusers casts to
  // encoder 2's dtype.
  const torch::Tensor& hidden_2 = out_2.penultimate_hidden_state;
  embeds.prompt_embeds = torch::cat(
      {out_1.penultimate_hidden_state.to(hidden_2.device(), hidden_2.scalar_type()), hidden_2}, -1);
  embeds.pooled_prompt_embeds = out_2.text_embeds;
  return embeds;
}

torch::Tensor SdxlTimeIds(SdxlImageSize original_size, SdxlCropTopLeft crop_top_left,
                          SdxlImageSize target_size) {
  const std::array<float, kSdxlTimeIdsSize> values = {
      static_cast<float>(original_size.height), static_cast<float>(original_size.width),
      static_cast<float>(crop_top_left.top),    static_cast<float>(crop_top_left.left),
      static_cast<float>(target_size.height),   static_cast<float>(target_size.width),
  };
  return torch::tensor(torch::ArrayRef<float>(values.data(), values.size()), torch::kFloat32);
}

}  // namespace likeness::model
