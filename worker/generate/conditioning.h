// Prompts to the UNet's conditioning: both text encoders, the negative prompt, and SDXL's
// size micro-conditioning, for classifier-free guidance.
#ifndef LIKENESS_WORKER_GENERATE_CONDITIONING_H_
#define LIKENESS_WORKER_GENERATE_CONDITIONING_H_

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/generate/denoise.h"
#include "worker/model/sdxl/sdxl_models.h"
#include "worker/model/text/sdxl_conditioning.h"
#include "worker/text/clip_tokenizer.h"

namespace likeness::generate {

struct PromptTokenIds {
  torch::Tensor ids_1;  // int64 [B, 77], encoder 1 (padded with <|endoftext|>)
  torch::Tensor ids_2;  // int64 [B, 77], encoder 2 (padded with id 0)
  bool truncated = false;  // some prompt was longer than 77 tokens and was cut
};

// Prompts -> both encoders' ids. SDXL's two tokenizers share CLIP's vocabulary and differ only
// in padding, so the default uses one ClipTokenizer; textual-inversion embeddings substitute a
// tokenizer that knows their added tokens.
using PromptTokenizer =
    std::function<absl::StatusOr<PromptTokenIds>(const std::vector<std::string>& prompts)>;

PromptTokenizer MakeClipPromptTokenizer(std::shared_ptr<const text::ClipTokenizer> tokenizer);

struct SizeConditioning {
  model::SdxlImageSize original;
  model::SdxlCropTopLeft crop;
  model::SdxlImageSize target;
};

struct PromptConditioning {
  Conditioning cond;    // [1, ...]
  Conditioning uncond;  // [1, ...]; undefined tensors when not requested
  bool truncated = false;
};

// SDXL's conditioning for `prompt` and, when `with_negative`, for `negative`: an empty negative
// is all zeros (diffusers' force_zeros_for_empty_prompt, SDXL's setting) unless
// `encode_empty_negative`. Runs without autograd on the encoders' device and dtype.
absl::StatusOr<PromptConditioning> EncodePrompt(model::SdxlModels& models,
                                                const PromptTokenizer& tokenizer,
                                                const std::string& prompt,
                                                const std::string& negative, bool with_negative,
                                                bool encode_empty_negative,
                                                const SizeConditioning& size);

// Each tensor of `c` repeated to `rows` rows.
Conditioning RepeatRows(const Conditioning& c, int64_t rows);

}  // namespace likeness::generate

#endif  // LIKENESS_WORKER_GENERATE_CONDITIONING_H_
