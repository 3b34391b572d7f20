#include "worker/embeddings/textual_inversion.h"

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace likeness::embeddings {
namespace {

absl::Status Prefixed(const absl::Status& status, std::string_view prefix) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(std::string(prefix), ": ", status.message()));
}

// A float32 copy of `t` on `device`, detached: a leaf the set owns.
torch::Tensor OwnedCopy(const torch::Tensor& t, const torch::Device& device, bool trainable) {
  torch::NoGradGuard no_grad;
  torch::Tensor copy = t.detach().to(device, torch::kFloat32, /*non_blocking=*/false,
                                     /*copy=*/true);
  copy.requires_grad_(trainable);
  return copy;
}

}  // namespace

SdxlTextualInversion::SdxlTextualInversion(model::CLIPTextModel encoder_1,
                                           model::CLIPTextModelWithProjection encoder_2,
                                           std::shared_ptr<AddedVocabulary> vocabulary,
                                           PromptTokenizer tokenizer_1, PromptTokenizer tokenizer_2)
    : encoder_1_(std::move(encoder_1)),
      encoder_2_(std::move(encoder_2)),
      vocabulary_(std::move(vocabulary)),
      tokenizer_1_(std::move(tokenizer_1)),
      tokenizer_2_(std::move(tokenizer_2)) {
  table_1()->adapter = adapter_1_;
  table_2()->adapter = adapter_2_;
}

SdxlTextualInversion::~SdxlTextualInversion() {
  if (table_1()->adapter == adapter_1_) table_1()->adapter.reset();
  if (table_2()->adapter == adapter_2_) table_2()->adapter.reset();
}

absl::StatusOr<std::unique_ptr<SdxlTextualInversion>> SdxlTextualInversion::Attach(
    model::CLIPTextModel encoder_1, model::CLIPTextModelWithProjection encoder_2,
    std::shared_ptr<const text::ClipTokenizer> tokenizer_1,
    std::shared_ptr<const text::ClipTokenizer> tokenizer_2) {
  if (encoder_1.is_empty() || encoder_2.is_empty()) {
    return absl::FailedPreconditionError("textual inversion needs both SDXL text encoders");
  }
  if (tokenizer_1 == nullptr || tokenizer_2 == nullptr) {
    return absl::FailedPreconditionError("textual inversion needs both SDXL tokenizers");
  }
  const struct {
    const char* name;
    model::Embedding table;
    const text::ClipTokenizer& tokenizer;
  } encoders[] = {
      {"text_encoder", encoder_1->text_model->embeddings->token_embedding, *tokenizer_1},
      {"text_encoder_2", encoder_2->text_model->embeddings->token_embedding, *tokenizer_2},
  };
  for (const auto& e : encoders) {
    if (e.table->adapter != nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(e.name,
                       "'s token embedding already has an adapter: one textual-inversion set per "
                       "model"));
    }
    if (e.tokenizer.vocab_size() > e.table->weight.size(0)) {
      return absl::FailedPreconditionError(absl::StrCat(e.name, " has ", e.table->weight.size(0),
                                                        " token embeddings but its tokenizer ",
                                                        e.tokenizer.vocab_size(), " ids"));
    }
  }
  auto vocabulary = std::make_shared<AddedVocabulary>();
  LIKENESS_ASSIGN_OR_RETURN(PromptTokenizer prompt_1,
                            PromptTokenizer::Create(tokenizer_1, vocabulary));
  // SDXL's two tokenizers share one vocabulary; given the same object twice, share its merge
  // table too rather than build a second one (~50 ms).
  absl::StatusOr<PromptTokenizer> prompt_2 =
      tokenizer_2 == tokenizer_1 ? absl::StatusOr<PromptTokenizer>(prompt_1)
                                 : PromptTokenizer::Create(std::move(tokenizer_2), vocabulary);
  if (!prompt_2.ok()) return prompt_2.status();
  return std::unique_ptr<SdxlTextualInversion>(
      new SdxlTextualInversion(std::move(encoder_1), std::move(encoder_2), std::move(vocabulary),
                               std::move(prompt_1), *std::move(prompt_2)));
}

absl::StatusOr<std::unique_ptr<SdxlTextualInversion>> SdxlTextualInversion::Attach(
    const model::SdxlModels& models, std::shared_ptr<const text::ClipTokenizer> tokenizer_1,
    std::shared_ptr<const text::ClipTokenizer> tokenizer_2) {
  return Attach(models.text_encoder, models.text_encoder_2, std::move(tokenizer_1),
                std::move(tokenizer_2));
}

model::Embedding SdxlTextualInversion::table_1() const {
  return encoder_1_->text_model->embeddings->token_embedding;
}

model::Embedding SdxlTextualInversion::table_2() const {
  return encoder_2_->text_model->embeddings->token_embedding;
}

absl::Status SdxlTextualInversion::CheckVectors(std::string_view name,
                                                const SdxlTokenVectors& vectors) const {
  const struct {
    const char* key;
    const torch::Tensor& t;
    const char* encoder;
    torch::Tensor table;
  } parts[] = {{kClipLKey, vectors.clip_l, "text_encoder", table_1()->weight},
               {kClipGKey, vectors.clip_g, "text_encoder_2", table_2()->weight}};
  for (const auto& p : parts) {
    const std::string what = absl::StrCat("embedding '", std::string(name), "': ", p.key);
    if (!p.t.defined()) return absl::InvalidArgumentError(absl::StrCat(what, " is missing"));
    const int64_t width = p.table.size(1);
    if (p.t.dim() != 2 || p.t.size(1) != width) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " has shape ", ShapeString(p.t), " but ", p.encoder, "'s token embedding is ",
          ShapeString(p.table), ": want [n, ", width, "] (an embedding made for another model?)"));
    }
    if (!p.t.is_floating_point()) {
      return absl::InvalidArgumentError(absl::StrCat(what, " has dtype ",
                                                     std::string(c10::toString(p.t.scalar_type())),
                                                     "; embedding vectors are floating point"));
    }
    try {
      if (!torch::isfinite(p.t.detach()).all().item<bool>()) {
        return absl::InvalidArgumentError(absl::StrCat(what, " holds NaN or infinite values"));
      }
    } catch (const c10::Error& e) {
      return absl::InternalError(absl::StrCat(what, ": ", e.what_without_backtrace()));
    }
  }
  if (vectors.clip_l.size(0) != vectors.clip_g.size(0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("embedding '", std::string(name), "': ", kClipLKey, " ",
                     ShapeString(vectors.clip_l), " and ", kClipGKey, " ",
                     ShapeString(vectors.clip_g), " hold different numbers of vectors"));
  }
  return absl::OkStatus();
}

absl::Status SdxlTextualInversion::AddToken(std::string_view name, const SdxlTokenVectors& vectors,
                                            bool trainable) {
  LIKENESS_RETURN_IF_ERROR(CheckVectors(name, vectors));
  Entry entry;
  entry.trainable = trainable;
  try {
    entry.vectors.clip_l = OwnedCopy(vectors.clip_l, table_1()->weight.device(), trainable);
    entry.vectors.clip_g = OwnedCopy(vectors.clip_g, table_2()->weight.device(), trainable);
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("embedding '", std::string(name), "': ", e.what_without_backtrace()));
  }
  LIKENESS_RETURN_IF_ERROR(vocabulary_->Add(name, static_cast<int>(entry.vectors.clip_l.size(0))));
  entries_.push_back(std::move(entry));
  UpdateAdapters();
  return absl::OkStatus();
}

absl::Status SdxlTextualInversion::AddTokenFromWord(std::string_view name, int num_vectors,
                                                    std::string_view init_word, bool trainable) {
  if (num_vectors < 1 || num_vectors > kMaxVectorsPerToken) {
    return absl::InvalidArgumentError(absl::StrCat("token '", std::string(name), "': ", num_vectors,
                                                   " vectors; want 1 to ", kMaxVectorsPerToken));
  }
  // [num_vectors, hidden]: the rows A1111's create_embedding picks (see the header).
  const auto init_rows = [&](const PromptTokenizer& tokenizer,
                             model::Embedding table) -> absl::StatusOr<torch::Tensor> {
    const std::vector<int> ids = tokenizer.Encode(init_word);
    if (ids.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("token '", std::string(name),
                                                     "': the init word '", std::string(init_word),
                                                     "' has no tokens"));
    }
    const int64_t used = std::min<int64_t>(static_cast<int64_t>(ids.size()), num_vectors);
    std::vector<int64_t> picked(static_cast<size_t>(num_vectors));
    for (int64_t i = 0; i < num_vectors; ++i) picked[i] = ids[i * used / num_vectors];
    try {
      torch::NoGradGuard no_grad;
      const torch::Tensor index = torch::tensor(picked, torch::kLong).to(table->weight.device());
      // Through the table's forward, so an init word may name an added token.
      return table->forward(index).detach();
    } catch (const c10::Error& e) {
      return absl::InternalError(
          absl::StrCat("token '", std::string(name), "': ", e.what_without_backtrace()));
    }
  };
  SdxlTokenVectors vectors;
  LIKENESS_ASSIGN_OR_RETURN(vectors.clip_l, init_rows(tokenizer_1_, table_1()));
  LIKENESS_ASSIGN_OR_RETURN(vectors.clip_g, init_rows(tokenizer_2_, table_2()));
  return AddToken(name, vectors, trainable);
}

absl::Status SdxlTextualInversion::RemoveToken(std::string_view name) {
  const int index = vocabulary_->IndexOf(name);
  LIKENESS_RETURN_IF_ERROR(vocabulary_->Remove(name));
  entries_.erase(entries_.begin() + index);
  UpdateAdapters();
  return absl::OkStatus();
}

std::vector<AddedTokenInfo> SdxlTextualInversion::ListTokens() const {
  std::vector<AddedTokenInfo> out;
  const std::vector<AddedToken>& tokens = vocabulary_->tokens();
  for (size_t i = 0; i < tokens.size(); ++i) {
    out.push_back(AddedTokenInfo{tokens[i].name, tokens[i].num_vectors, entries_[i].trainable});
  }
  return out;
}

absl::StatusOr<SdxlTokenVectors> SdxlTextualInversion::Vectors(std::string_view name) const {
  const int index = vocabulary_->IndexOf(name);
  if (index < 0)
    return absl::NotFoundError(absl::StrCat("no added token '", std::string(name), "'"));
  return entries_[index].vectors;
}

absl::Status SdxlTextualInversion::SetVectors(std::string_view name,
                                              const SdxlTokenVectors& vectors) {
  const int index = vocabulary_->IndexOf(name);
  if (index < 0)
    return absl::NotFoundError(absl::StrCat("no added token '", std::string(name), "'"));
  LIKENESS_RETURN_IF_ERROR(CheckVectors(name, vectors));
  Entry& entry = entries_[index];
  if (vectors.num_vectors() != entry.vectors.num_vectors()) {
    return absl::InvalidArgumentError(
        absl::StrCat("embedding '", std::string(name), "': ", vectors.num_vectors(),
                     " vectors given, the token has ", entry.vectors.num_vectors()));
  }
  try {
    torch::NoGradGuard no_grad;
    entry.vectors.clip_l.copy_(vectors.clip_l);
    entry.vectors.clip_g.copy_(vectors.clip_g);
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("embedding '", std::string(name), "': ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

absl::Status SdxlTextualInversion::LoadFile(const std::string& path, std::string_view token) {
  LIKENESS_ASSIGN_OR_RETURN(SdxlEmbeddingFile file, ReadSdxlEmbedding(path));
  const std::string name = token.empty() ? TokenNameFromPath(path) : std::string(token);
  return Prefixed(AddToken(name, file.vectors), path);
}

absl::Status SdxlTextualInversion::LoadDiffusersPair(const std::string& path_1,
                                                     const std::string& path_2,
                                                     std::string_view token) {
  LIKENESS_ASSIGN_OR_RETURN(EncoderEmbeddingFile file_1, ReadEncoderEmbedding(path_1));
  LIKENESS_ASSIGN_OR_RETURN(EncoderEmbeddingFile file_2, ReadEncoderEmbedding(path_2));
  if (token.empty() && file_1.token != file_2.token) {
    return absl::InvalidArgumentError(absl::StrCat(path_1, " holds token '", file_1.token, "' but ",
                                                   path_2, " holds '", file_2.token,
                                                   "': name the token"));
  }
  const std::string name = token.empty() ? file_1.token : std::string(token);
  return Prefixed(AddToken(name, SdxlTokenVectors{file_1.vectors, file_2.vectors}),
                  absl::StrCat(path_1, " + ", path_2));
}

absl::Status SdxlTextualInversion::Save(std::string_view name, const std::string& path,
                                        const std::map<std::string, std::string>& metadata) const {
  LIKENESS_ASSIGN_OR_RETURN(SdxlTokenVectors vectors, Vectors(name));
  return WriteSdxlEmbedding(path, vectors, metadata);
}

SdxlPromptIds SdxlTextualInversion::Tokenize(const std::vector<std::string>& prompts) const {
  const auto batch = static_cast<int64_t>(prompts.size());
  SdxlPromptIds out{torch::empty({batch, text::kMaxLength}, torch::kLong),
                    torch::empty({batch, text::kMaxLength}, torch::kLong)};
  auto ids_1 = out.ids_1.accessor<int64_t, 2>();
  auto ids_2 = out.ids_2.accessor<int64_t, 2>();
  for (int64_t b = 0; b < batch; ++b) {
    const std::vector<int> row_1 = tokenizer_1_.Tokenize(prompts[b], kPadStyle1);
    const std::vector<int> row_2 = tokenizer_2_.Tokenize(prompts[b], kPadStyle2);
    for (int64_t i = 0; i < text::kMaxLength; ++i) {
      ids_1[b][i] = row_1[i];
      ids_2[b][i] = row_2[i];
    }
  }
  return out;
}

absl::Status SdxlTextualInversion::SetTrainable(std::string_view name, bool trainable) {
  const int index = vocabulary_->IndexOf(name);
  if (index < 0)
    return absl::NotFoundError(absl::StrCat("no added token '", std::string(name), "'"));
  Entry& entry = entries_[index];
  entry.vectors.clip_l.requires_grad_(trainable);
  entry.vectors.clip_g.requires_grad_(trainable);
  entry.trainable = trainable;
  return absl::OkStatus();
}

std::vector<torch::Tensor> SdxlTextualInversion::TrainableTensors() const {
  std::vector<torch::Tensor> out;
  for (const Entry& entry : entries_) {
    if (!entry.trainable) continue;
    out.push_back(entry.vectors.clip_l);
    out.push_back(entry.vectors.clip_g);
  }
  return out;
}

std::vector<std::string> SdxlTextualInversion::TrainableTensorNames() const {
  std::vector<std::string> out;
  const std::vector<AddedToken>& tokens = vocabulary_->tokens();
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (!entries_[i].trainable) continue;
    out.push_back(absl::StrCat(tokens[i].name, ".", kClipLKey));
    out.push_back(absl::StrCat(tokens[i].name, ".", kClipGKey));
  }
  return out;
}

void SdxlTextualInversion::UpdateAdapters() {
  std::vector<torch::Tensor> rows_1, rows_2;
  for (const Entry& entry : entries_) {
    rows_1.push_back(entry.vectors.clip_l);
    rows_2.push_back(entry.vectors.clip_g);
  }
  adapter_1_->SetRows(std::move(rows_1));
  adapter_2_->SetRows(std::move(rows_2));
}

absl::StatusOr<std::unique_ptr<SdxlTextualInversion>> LoadSdxlEmbeddings(
    const model::SdxlModels& models, std::shared_ptr<const text::ClipTokenizer> tokenizer_1,
    std::shared_ptr<const text::ClipTokenizer> tokenizer_2,
    const std::vector<EmbeddingFileSpec>& files) {
  LIKENESS_ASSIGN_OR_RETURN(
      std::unique_ptr<SdxlTextualInversion> set,
      SdxlTextualInversion::Attach(models, std::move(tokenizer_1), std::move(tokenizer_2)));
  for (const EmbeddingFileSpec& file : files) {
    LIKENESS_RETURN_IF_ERROR(set->LoadFile(file.path, file.token));
  }
  return set;
}

}  // namespace likeness::embeddings
