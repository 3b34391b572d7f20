#include "worker/generate/conditioning.h"

#include "absl/strings/str_cat.h"

namespace likeness::generate {
namespace {

torch::Tensor IdsTensor(const std::vector<std::vector<int>>& rows) {
  const int64_t n = rows.empty() ? 0 : static_cast<int64_t>(rows[0].size());
  torch::Tensor ids = torch::empty({static_cast<int64_t>(rows.size()), n}, torch::kInt64);
  auto accessor = ids.accessor<int64_t, 2>();
  for (size_t b = 0; b < rows.size(); ++b) {
    for (int64_t j = 0; j < n; ++j) accessor[b][j] = rows[b][j];
  }
  return ids;
}

}  // namespace

PromptTokenizer MakeClipPromptTokenizer(std::shared_ptr<const text::ClipTokenizer> tokenizer) {
  return [tokenizer](const std::vector<std::string>& prompts) -> absl::StatusOr<PromptTokenIds> {
    std::vector<std::vector<int>> rows_1, rows_2;
    PromptTokenIds out;
    for (const std::string& prompt : prompts) {
      rows_1.push_back(tokenizer->Tokenize(prompt, text::PadStyle::kEndOfText));
      rows_2.push_back(tokenizer->Tokenize(prompt, text::PadStyle::kZero));
      // Encode stops at nothing, so compare lengths: more than 75 BPE ids were cut.
      if (tokenizer->Encode(prompt).size() + 2 > static_cast<size_t>(text::kMaxLength)) {
        out.truncated = true;
      }
    }
    out.ids_1 = IdsTensor(rows_1);
    out.ids_2 = IdsTensor(rows_2);
    return out;
  };
}

absl::StatusOr<PromptConditioning> EncodePrompt(model::SdxlModels& models,
                                                const PromptTokenizer& tokenizer,
                                                const std::string& prompt,
                                                const std::string& negative, bool with_negative,
                                                bool encode_empty_negative,
                                                const SizeConditioning& size) {
  const bool zero_negative = with_negative && negative.empty() && !encode_empty_negative;
  std::vector<std::string> texts = {prompt};
  if (with_negative && !zero_negative) texts.push_back(negative);
  absl::StatusOr<PromptTokenIds> ids = tokenizer(texts);
  if (!ids.ok()) return ids.status();
  PromptConditioning out;
  out.truncated = ids->truncated;
  try {
    torch::NoGradGuard no_grad;
    const model::SdxlPromptEmbeds embeds =
        model::EncodeSdxlPrompt(models.text_encoder, models.text_encoder_2, ids->ids_1, ids->ids_2);
    const torch::Tensor time_ids =
        model::SdxlTimeIds(size.original, size.crop, size.target).unsqueeze(0);
    out.cond = {embeds.prompt_embeds.narrow(0, 0, 1), embeds.pooled_prompt_embeds.narrow(0, 0, 1),
                time_ids};
    if (with_negative) {
      if (zero_negative) {
        out.uncond = {torch::zeros_like(out.cond.prompt_embeds),
                      torch::zeros_like(out.cond.pooled), time_ids};
      } else {
        out.uncond = {embeds.prompt_embeds.narrow(0, 1, 1),
                      embeds.pooled_prompt_embeds.narrow(0, 1, 1), time_ids};
      }
    }
  } catch (const c10::Error& error) {
    return absl::InternalError(
        absl::StrCat("encoding the prompt: ", error.what_without_backtrace()));
  }
  return out;
}

Conditioning RepeatRows(const Conditioning& c, int64_t rows) {
  auto repeat = [rows](const torch::Tensor& t) {
    std::vector<int64_t> times(t.dim(), 1);
    times[0] = rows;
    return t.repeat(times);
  };
  return {repeat(c.prompt_embeds), repeat(c.pooled), repeat(c.time_ids)};
}

}  // namespace likeness::generate
