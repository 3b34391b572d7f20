// SDXL's conditioning from its two text encoders, as diffusers' StableDiffusionXLPipeline
// (encode_prompt, _get_add_time_ids) computes it:
//
//   prompt_embeds        = cat(encoder 1 hidden_states[-2], encoder 2 hidden_states[-2], -1)
//                          [B, N, 768 + 1280]: the UNet's encoder_hidden_states
//   pooled_prompt_embeds = encoder 2 text_embeds [B, 1280]: the UNet's added text_embeds
//   time ids             = (original h, w, crop top, left, target h, w): the added time_ids
//
// Token ids come from the two tokenizers (worker/text/clip_tokenizer.h): encoder 1's padded with
// <|endoftext|>, encoder 2's with '!' (id 0). No attention mask is used.
#ifndef LIKENESS_WORKER_MODEL_TEXT_SDXL_CONDITIONING_H_
#define LIKENESS_WORKER_MODEL_TEXT_SDXL_CONDITIONING_H_

#include <torch/torch.h>

#include <cstdint>

#include "worker/model/text/clip_text_model.h"

namespace likeness::model {

// Number of micro-conditioning values per image (SDXL's time_ids).
inline constexpr int64_t kSdxlTimeIdsSize = 6;

struct SdxlPromptEmbeds {
  torch::Tensor prompt_embeds;         // [B, N, hidden_1 + hidden_2]
  torch::Tensor pooled_prompt_embeds;  // [B, projection_dim_2]
};

// ids_1, ids_2: int64 [B, N] for encoder 1 and 2 (moved to each encoder's device). Encoder 1 stops
// at its penultimate layer; encoder 2 runs in full for its pooled output. Gradients flow when
// enabled (text-encoder training); wrap in torch::NoGradGuard otherwise.
SdxlPromptEmbeds EncodeSdxlPrompt(CLIPTextModel& encoder_1, CLIPTextModelWithProjection& encoder_2,
                                  const torch::Tensor& ids_1, const torch::Tensor& ids_2);

struct SdxlImageSize {
  int64_t height = 0;
  int64_t width = 0;
};

struct SdxlCropTopLeft {
  int64_t top = 0;
  int64_t left = 0;
};

// float32 [6] = (original height, width, crop top, left, target height, width), diffusers'
// add_time_ids for one image. Stack one per batch row for the UNet's time_ids [B, 6].
torch::Tensor SdxlTimeIds(SdxlImageSize original_size, SdxlCropTopLeft crop_top_left,
                          SdxlImageSize target_size);

}  // namespace likeness::model

#endif  // LIKENESS_WORKER_MODEL_TEXT_SDXL_CONDITIONING_H_
