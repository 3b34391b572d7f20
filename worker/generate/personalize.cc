#include "worker/generate/personalize.h"

#include <filesystem>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "worker/embeddings/textual_inversion.h"
#include "worker/generate/file_hash.h"
#include "worker/lora/lora_set.h"

namespace likeness::generate {
namespace {

// A1111 names a LoRA (and an embedding) by its file name without extension.
std::string Stem(const std::string& path) { return std::filesystem::path(path).stem().string(); }

absl::Status ApplyLoras(const v1::GenerateConfig& config, Pipeline& pipeline) {
  if (config.loras_size() == 0) return absl::OkStatus();
  auto set = std::make_shared<lora::LoraSet>(&pipeline.models());
  for (const v1::LoraRef& ref : config.loras()) {
    const std::string name = Stem(ref.path());
    lora::LoraLoadOptions options;
    options.scale = ref.has_scale() ? ref.scale() : kDefaultLoraScale;
    if (absl::Status s = set->Add(name, ref.path(), options); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("lora ", ref.path(), ": ", s.message()));
    }
    absl::StatusOr<std::string> hash = LoraShortHash(ref.path());
    if (!hash.ok()) return hash.status();
    pipeline.AddLoraRecord({name, options.scale, *hash});
  }
  if (config.merge_loras()) {
    if (absl::Status s = set->MergeAll(); !s.ok()) return s;
  }
  pipeline.Own(std::move(set));
  return absl::OkStatus();
}

absl::Status ApplyEmbeddings(const v1::GenerateConfig& config, Pipeline& pipeline) {
  if (config.embeddings_size() == 0) return absl::OkStatus();
  std::vector<embeddings::EmbeddingFileSpec> files;
  std::vector<std::string> hashes;
  for (const v1::EmbeddingRef& ref : config.embeddings()) {
    files.push_back({ref.path(), ref.token()});
    absl::StatusOr<std::string> hash = FileSha256(ref.path(), HashKind::kWholeFile);
    if (!hash.ok()) return hash.status();
    hashes.push_back(absl::StrCat(ref.token().empty() ? Stem(ref.path()) : ref.token(), ": ",
                                  hash->substr(0, kLoraShortHashDigits)));
  }
  absl::StatusOr<std::unique_ptr<embeddings::SdxlTextualInversion>> loaded =
      embeddings::LoadSdxlEmbeddings(pipeline.models(), pipeline.clip_tokenizer(),
                                     pipeline.clip_tokenizer(), files);
  if (!loaded.ok()) return loaded.status();
  std::shared_ptr<embeddings::SdxlTextualInversion> ti = std::move(*loaded);
  pipeline.SetPromptTokenizer(
      [ti](const std::vector<std::string>& prompts) -> absl::StatusOr<PromptTokenIds> {
        const embeddings::SdxlPromptIds ids = ti->Tokenize(prompts);
        PromptTokenIds out{ids.ids_1, ids.ids_2, false};
        for (const std::string& prompt : prompts) {
          if (ti->tokenizer_1().Encode(prompt).size() + 2 > static_cast<size_t>(text::kMaxLength)) {
            out.truncated = true;
          }
        }
        return out;
      });
  // A1111 writes "TI hashes" so model sites can link the embeddings an image used.
  pipeline.AddParameterField("TI hashes", absl::StrJoin(hashes, ", "));
  pipeline.Own(std::move(ti));
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyPersonalization(const v1::GenerateConfig& config, Pipeline& pipeline) {
  if (absl::Status s = ApplyLoras(config, pipeline); !s.ok()) return s;
  return ApplyEmbeddings(config, pipeline);
}

}  // namespace likeness::generate
