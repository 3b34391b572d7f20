#include "worker/embeddings/embedding_file.h"

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/safetensors/safetensors_file.h"
#include "common/safetensors/writer.h"
#include "common/status_macros.h"

namespace likeness::embeddings {
namespace {

constexpr char kSdxlFormHint[] =
    "an SDXL embedding holds 'clip_l' [n, 768] and 'clip_g' [n, 1280] (widths of the model's two "
    "text encoders)";

absl::Status RefusePickle(const std::string& path) {
  const std::string extension =
      absl::AsciiStrToLower(std::filesystem::path(path).extension().string());
  for (const char* pickle : kPickleExtensions) {
    if (extension == pickle) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": pickled embeddings (", extension,
          ") are not read: loading them runs Python's unpickler, and they are the Stable "
          "Diffusion 1.x format; ",
          kSdxlFormHint, " in a .safetensors file"));
    }
  }
  return absl::OkStatus();
}

// The SD 1.x key `name` is, or "".
std::string Sd1Key(const std::string& name) {
  for (const char* key : kSd1EmbeddingKeys) {
    if (name == key || absl::StartsWith(name, absl::StrCat(key, "."))) return key;
  }
  return "";
}

// `t` as float32 [n, dim] on the CPU: [dim] becomes [1, dim]. `what` names it in errors.
absl::StatusOr<torch::Tensor> AsVectors(const torch::Tensor& t, const std::string& what) {
  if (!t.is_floating_point()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " has dtype ",
                                                   std::string(c10::toString(t.scalar_type())),
                                                   "; embedding vectors are floating point"));
  }
  if (t.dim() != 1 && t.dim() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has shape ", ShapeString(t), "; want [n, dim] or [dim]"));
  }
  if (t.numel() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has shape ", ShapeString(t), ": no vectors"));
  }
  try {
    torch::Tensor v = t.dim() == 1 ? t.unsqueeze(0) : t;
    // A copy, so the vectors do not keep the file mapped.
    return v.to(torch::kCPU, torch::kFloat32, /*non_blocking=*/false, /*copy=*/true).contiguous();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what_without_backtrace()));
  }
}

absl::StatusOr<std::shared_ptr<safetensors::SafetensorsFile>> OpenEmbedding(
    const std::string& path) {
  LIKENESS_RETURN_IF_ERROR(RefusePickle(path));
  return safetensors::SafetensorsFile::Open(path);
}

}  // namespace

std::string ShapeString(const torch::Tensor& t) {
  return absl::StrCat("[", absl::StrJoin(t.sizes(), ", "), "]");
}

std::string TokenNameFromPath(const std::string& path) {
  return std::filesystem::path(path).stem().string();
}

absl::StatusOr<SdxlEmbeddingFile> ReadSdxlEmbedding(const std::string& path) {
  LIKENESS_ASSIGN_OR_RETURN(auto file, OpenEmbedding(path));
  const std::vector<std::string> names = file->Names();
  if (!file->Contains(kClipLKey) || !file->Contains(kClipGKey)) {
    for (const std::string& name : names) {
      const std::string sd1 = Sd1Key(name);
      if (sd1.empty()) continue;
      LIKENESS_ASSIGN_OR_RETURN(torch::Tensor t, file->Get(name));
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": not an SDXL embedding: it holds '", name, "' ", ShapeString(t),
          ", a Stable Diffusion 1.x textual inversion (one text encoder); ", kSdxlFormHint));
    }
    const bool has_one_half = file->Contains(kClipLKey) || file->Contains(kClipGKey);
    if (names.size() == 1 && !has_one_half) {
      LIKENESS_ASSIGN_OR_RETURN(torch::Tensor t, file->Get(names.front()));
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": not an SDXL embedding: it holds one tensor '", names.front(), "' ",
          ShapeString(t),
          ", the embedding of one text encoder (Stable Diffusion 1.x, or one file of a "
          "diffusers SDXL pair, which is loaded as a pair); ",
          kSdxlFormHint));
    }
    const std::string lacking =
        has_one_half ? absl::StrCat("'", file->Contains(kClipLKey) ? kClipGKey : kClipLKey, "'")
                     : absl::StrCat("'", kClipLKey, "' and '", kClipGKey, "'");
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": not an SDXL embedding: it lacks ", lacking, " (it holds ",
        names.empty() ? "no tensors" : absl::StrJoin(names, ", "), "); ", kSdxlFormHint));
  }

  SdxlEmbeddingFile out;
  LIKENESS_ASSIGN_OR_RETURN(torch::Tensor clip_l, file->Get(kClipLKey));
  LIKENESS_ASSIGN_OR_RETURN(torch::Tensor clip_g, file->Get(kClipGKey));
  LIKENESS_ASSIGN_OR_RETURN(out.vectors.clip_l,
                            AsVectors(clip_l, absl::StrCat(path, ": ", kClipLKey)));
  LIKENESS_ASSIGN_OR_RETURN(out.vectors.clip_g,
                            AsVectors(clip_g, absl::StrCat(path, ": ", kClipGKey)));
  if (out.vectors.clip_l.size(0) != out.vectors.clip_g.size(0)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", kClipLKey, " ", ShapeString(clip_l),
                                                   " and ", kClipGKey, " ", ShapeString(clip_g),
                                                   " hold different numbers of vectors"));
  }
  out.metadata = file->metadata();
  for (const std::string& name : names) {
    if (name != kClipLKey && name != kClipGKey) out.unexpected.push_back(name);
  }
  return out;
}

absl::Status WriteSdxlEmbedding(const std::string& path, const SdxlTokenVectors& vectors,
                                const std::map<std::string, std::string>& metadata) {
  const auto check = [&](const torch::Tensor& t, const char* key) -> absl::Status {
    if (!t.defined() || t.dim() != 2 || t.size(0) < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": ", key, " is ", t.defined() ? ShapeString(t) : "missing", "; want [n, dim]"));
    }
    return absl::OkStatus();
  };
  LIKENESS_RETURN_IF_ERROR(check(vectors.clip_l, kClipLKey));
  LIKENESS_RETURN_IF_ERROR(check(vectors.clip_g, kClipGKey));
  if (vectors.clip_l.size(0) != vectors.clip_g.size(0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", kClipLKey, " ", ShapeString(vectors.clip_l), " and ", kClipGKey,
                     " ", ShapeString(vectors.clip_g), " hold different numbers of vectors"));
  }
  safetensors::NamedTensors tensors;
  try {
    // float32 whatever the training dtype: A1111 and ComfyUI widen to float32 on load anyway,
    // and the file is a few kilobytes.
    tensors = {{kClipGKey, vectors.clip_g.detach().to(torch::kFloat32)},
               {kClipLKey, vectors.clip_l.detach().to(torch::kFloat32)}};
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what_without_backtrace()));
  }
  return safetensors::WriteSafetensors(path, tensors, metadata);
}

absl::StatusOr<EncoderEmbeddingFile> ReadEncoderEmbedding(const std::string& path) {
  LIKENESS_ASSIGN_OR_RETURN(auto file, OpenEmbedding(path));
  const std::vector<std::string> names = file->Names();
  if (file->Contains(kClipLKey) && file->Contains(kClipGKey)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": holds clip_l and clip_g: an SDXL embedding of both encoders, not one encoder's"));
  }
  if (names.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": holds ", names.size(), " tensors (", absl::StrJoin(names, ", "),
                     "); the embedding of one encoder holds one, named by its token"));
  }
  LIKENESS_ASSIGN_OR_RETURN(torch::Tensor t, file->Get(names.front()));
  if (const std::string sd1 = Sd1Key(names.front()); !sd1.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": not an SDXL embedding: it holds '", names.front(), "' ", ShapeString(t),
        ", a Stable Diffusion 1.x textual inversion; ", kSdxlFormHint));
  }
  EncoderEmbeddingFile out;
  out.token = names.front();
  LIKENESS_ASSIGN_OR_RETURN(out.vectors, AsVectors(t, absl::StrCat(path, ": '", out.token, "'")));
  return out;
}

}  // namespace likeness::embeddings
