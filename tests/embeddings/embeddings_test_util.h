// Shared pieces of the embeddings tests: the real CLIP vocabulary (LIKENESS_BPE_VOCAB) and the
// tiny SDXL text encoders of the golden set (LIKENESS_GOLDEN_DIR/text_encoders_tiny.*).
#ifndef LIKENESS_TESTS_EMBEDDINGS_EMBEDDINGS_TEST_UTIL_H_
#define LIKENESS_TESTS_EMBEDDINGS_EMBEDDINGS_TEST_UTIL_H_

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/model/text/clip_text_model.h"
#include "worker/text/clip_tokenizer.h"

namespace likeness::testing {

// The tokenizer of BpeVocabPath(), loaded once per binary; nullptr (with a test failure naming
// the file) when it cannot be loaded.
std::shared_ptr<const text::ClipTokenizer> ClipTokenizerOrFail();

struct TinyTextEncoders {
  model::CLIPTextModel encoder_1{nullptr};
  model::CLIPTextModelWithProjection encoder_2{nullptr};
  std::vector<std::string> prompts;  // the golden sidecar's prompts
  torch::Tensor input_ids_1;         // their ids for encoder 1, int64 [B, 77]
  torch::Tensor input_ids_2;         // and for encoder 2
};

// Fresh modules (so a test may change requires_grad), loaded strictly from the golden file, in
// eval mode. Errors name the file.
absl::StatusOr<TinyTextEncoders> LoadTinyTextEncoders();

// Ids as an int64 [1, N] tensor.
torch::Tensor IdsTensor(const std::vector<int>& ids);

}  // namespace likeness::testing

#endif  // LIKENESS_TESTS_EMBEDDINGS_EMBEDDINGS_TEST_UTIL_H_
