// Textual inversion on SDXL: tokens added to both tokenizers and both text encoders at once.
//
// An SdxlTextualInversion is attached to the two text encoders of an SdxlModels (or to two
// encoders directly) and to their tokenizers. While it lives, each encoder's token_embedding
// carries its AddedRowsAdapter (added_rows_adapter.h); its destructor takes them off again. The
// encoders' parameters and state dicts stay the base model's.
//
// Generation (issue 5):
//   auto ti = LoadSdxlEmbeddings(models, tokenizer, tokenizer, {{"/emb/ohwx.safetensors", ""}});
//   SdxlPromptIds ids = (*ti)->Tokenize({"a photo of ohwx man"});
//   auto embeds = model::EncodeSdxlPrompt(models.text_encoder, models.text_encoder_2,
//                                         ids.ids_1, ids.ids_2);
//
// Training (issue 4, textual inversion and pivotal tuning):
//   1. Freeze the encoders (requires_grad false on their parameters) unless they also train.
//   2. AddTokenFromWord("ohwx", 4, "man", /*trainable=*/true).
//   3. Hand TrainableTensors() to the optimizer. Their order is FIXED and documented there, so
//      every rank of a data-parallel run reduces the same tensors in the same order.
//   4. Per step: Tokenize captions, EncodeSdxlPrompt, UNet loss, backward, reduce, step.
//   5. Save("ohwx", path) writes clip_l/clip_g as A1111/ComfyUI load them; SetVectors restores
//      a checkpoint in place (the optimizer keeps holding the same tensors).
//
// Added vectors are float32 leaves on the device of their encoder's token table (optimizer
// precision whatever the model dtype); the adapter casts them at lookup. Build the set after
// moving the models to their device. Not thread-safe for mutation; Tokenize and forward may run
// concurrently while no token is added or removed.
#ifndef LIKENESS_WORKER_EMBEDDINGS_TEXTUAL_INVERSION_H_
#define LIKENESS_WORKER_EMBEDDINGS_TEXTUAL_INVERSION_H_

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/embeddings/added_rows_adapter.h"
#include "worker/embeddings/added_vocabulary.h"
#include "worker/embeddings/embedding_file.h"
#include "worker/embeddings/prompt_tokenizer.h"
#include "worker/model/sdxl/sdxl_models.h"
#include "worker/model/text/clip_text_model.h"
#include "worker/text/clip_tokenizer.h"

namespace likeness::embeddings {

// How SDXL's two tokenizers pad (DESIGN.md): encoder 1 with <|endoftext|>, encoder 2 with '!'.
inline constexpr text::PadStyle kPadStyle1 = text::PadStyle::kEndOfText;
inline constexpr text::PadStyle kPadStyle2 = text::PadStyle::kZero;

struct SdxlPromptIds {
  torch::Tensor ids_1;  // int64 [B, 77] for text_encoder, CPU
  torch::Tensor ids_2;  // int64 [B, 77] for text_encoder_2, CPU
};

struct AddedTokenInfo {
  std::string name;
  int num_vectors = 0;
  bool trainable = false;
};

class SdxlTextualInversion {
 public:
  // FAILED_PRECONDITION when an encoder or tokenizer is missing, an encoder already carries an
  // embedding adapter (one set per model), or a tokenizer's vocabulary is larger than its
  // encoder's token table.
  static absl::StatusOr<std::unique_ptr<SdxlTextualInversion>> Attach(
      model::CLIPTextModel encoder_1, model::CLIPTextModelWithProjection encoder_2,
      std::shared_ptr<const text::ClipTokenizer> tokenizer_1,
      std::shared_ptr<const text::ClipTokenizer> tokenizer_2);
  static absl::StatusOr<std::unique_ptr<SdxlTextualInversion>> Attach(
      const model::SdxlModels& models, std::shared_ptr<const text::ClipTokenizer> tokenizer_1,
      std::shared_ptr<const text::ClipTokenizer> tokenizer_2);

  SdxlTextualInversion(const SdxlTextualInversion&) = delete;
  SdxlTextualInversion& operator=(const SdxlTextualInversion&) = delete;
  // Takes the adapters off the encoders (where they are still this set's).
  ~SdxlTextualInversion();

  // --- Tokens -----------------------------------------------------------------------------

  // Adds `name` with a copy of `vectors` (clip_l [n, hidden_1], clip_g [n, hidden_2]).
  // INVALID_ARGUMENT naming the tensor and both shapes when a width does not match its
  // encoder, for different n, non-finite values or a bad name (AddedVocabulary::Add);
  // ALREADY_EXISTS for a name already added.
  absl::Status AddToken(std::string_view name, const SdxlTokenVectors& vectors,
                        bool trainable = false);

  // Adds `name` with `num_vectors` vectors taken from `init_word`'s token embeddings in each
  // encoder, as AUTOMATIC1111's create_embedding does: the word's first T = min(tokens,
  // num_vectors) token ids, vector i = token floor(i * T / num_vectors). So one token fills all
  // vectors, "red car" over 4 vectors gives red red car car, and extra tokens are dropped. The
  // word may use tokens added before. INVALID_ARGUMENT when `init_word` has no tokens.
  absl::Status AddTokenFromWord(std::string_view name, int num_vectors, std::string_view init_word,
                                bool trainable = false);

  // NOT_FOUND when there is no such token. Later tokens' ids move down (ids are per call).
  absl::Status RemoveToken(std::string_view name);

  // In the order added (the order of ids and of TrainableTensors()).
  std::vector<AddedTokenInfo> ListTokens() const;

  // The live tensors of `name` (shared with the adapters, not copies). NOT_FOUND.
  absl::StatusOr<SdxlTokenVectors> Vectors(std::string_view name) const;

  // Copies `vectors` into `name`'s tensors in place (a checkpoint restore keeps the optimizer's
  // references valid). INVALID_ARGUMENT for other shapes; NOT_FOUND.
  absl::Status SetVectors(std::string_view name, const SdxlTokenVectors& vectors);

  // --- Files ------------------------------------------------------------------------------

  // Reads an SDXL embedding (embedding_file.h) and adds it under `token`, or under the file
  // stem when `token` is empty. Errors name the file.
  absl::Status LoadFile(const std::string& path, std::string_view token = "");
  // Reads a diffusers per-encoder pair (text_encoder's file, text_encoder_2's file) and adds it
  // under `token`, or the files' tensor name, which must then agree.
  absl::Status LoadDiffusersPair(const std::string& path_1, const std::string& path_2,
                                 std::string_view token = "");
  // Writes `name` as clip_l / clip_g (WriteSdxlEmbedding). NOT_FOUND for an unknown name.
  absl::Status Save(std::string_view name, const std::string& path,
                    const std::map<std::string, std::string>& metadata = {}) const;

  // --- Prompts ----------------------------------------------------------------------------

  // Both encoders' ids for a batch of prompts (kPadStyle1 / kPadStyle2, 77 each).
  SdxlPromptIds Tokenize(const std::vector<std::string>& prompts) const;
  const PromptTokenizer& tokenizer_1() const { return tokenizer_1_; }
  const PromptTokenizer& tokenizer_2() const { return tokenizer_2_; }

  // --- Training ---------------------------------------------------------------------------

  // Turns requires_grad of `name`'s tensors on or off. NOT_FOUND.
  absl::Status SetTrainable(std::string_view name, bool trainable);
  // The trainable leaves, in a FIXED order: tokens in the order added (ListTokens), and for
  // each its clip_l tensor, then its clip_g tensor. Removing a token removes its pair; adding
  // one appends a pair at the end. Each gets a gradient whenever an encoder ran with the set
  // attached (zeros for a token absent from the batch: all added rows take part in every
  // lookup), so every rank's bucketed all-reduce sees the same defined gradients.
  std::vector<torch::Tensor> TrainableTensors() const;
  // Names parallel to TrainableTensors(): "<name>.clip_l", "<name>.clip_g".
  std::vector<std::string> TrainableTensorNames() const;

 private:
  struct Entry {
    SdxlTokenVectors vectors;
    bool trainable = false;
  };

  SdxlTextualInversion(model::CLIPTextModel encoder_1, model::CLIPTextModelWithProjection encoder_2,
                       std::shared_ptr<AddedVocabulary> vocabulary, PromptTokenizer tokenizer_1,
                       PromptTokenizer tokenizer_2);

  // The encoders' token tables (holders share the module, so these may be changed through).
  model::Embedding table_1() const;
  model::Embedding table_2() const;
  absl::Status CheckVectors(std::string_view name, const SdxlTokenVectors& vectors) const;
  // Hands every token's tensors to the two adapters, in vocabulary order.
  void UpdateAdapters();

  model::CLIPTextModel encoder_1_;
  model::CLIPTextModelWithProjection encoder_2_;
  std::shared_ptr<AddedVocabulary> vocabulary_;
  std::vector<Entry> entries_;  // Parallel to vocabulary_->tokens().
  PromptTokenizer tokenizer_1_;
  PromptTokenizer tokenizer_2_;
  std::shared_ptr<AddedRowsAdapter> adapter_1_ = std::make_shared<AddedRowsAdapter>();
  std::shared_ptr<AddedRowsAdapter> adapter_2_ = std::make_shared<AddedRowsAdapter>();
};

// What the generation pipeline passes per --embedding.
struct EmbeddingFileSpec {
  std::string path;   // SDXL clip_l/clip_g .safetensors
  std::string token;  // empty: the file stem, as AUTOMATIC1111 names it
};

// Attaches a set to `models` and loads `files` in order. The first failure is returned and
// nothing stays attached.
absl::StatusOr<std::unique_ptr<SdxlTextualInversion>> LoadSdxlEmbeddings(
    const model::SdxlModels& models, std::shared_ptr<const text::ClipTokenizer> tokenizer_1,
    std::shared_ptr<const text::ClipTokenizer> tokenizer_2,
    const std::vector<EmbeddingFileSpec>& files);

}  // namespace likeness::embeddings

#endif  // LIKENESS_WORKER_EMBEDDINGS_TEXTUAL_INVERSION_H_
