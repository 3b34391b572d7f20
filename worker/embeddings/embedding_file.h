// Textual-inversion embedding files for SDXL.
//
// The SDXL form, which AUTOMATIC1111 (create_embedding_from_data: both keys present = SDXL)
// and ComfyUI load, and which diffusers' pivotal-tuning scripts write:
//
//   <name>.safetensors   clip_l [n, hidden of text_encoder]    (768 for SDXL)
//                        clip_g [n, hidden of text_encoder_2]  (1280 for SDXL)
//
// The token is the file stem unless the user names one (A1111 uses the stem). Any dtype
// safetensors can hold is read and widened to float32 (A1111 does the same); files are written
// in float32, atomically (common/safetensors/writer.h).
//
// The diffusers per-encoder form (textual_inversion_sdxl.py writes one file per encoder):
//
//   learned_embeds.safetensors     <token> [n, 768] (or [768] for one vector)
//   learned_embeds_2.safetensors   <token> [n, 1280]
//
// Refused with a message that says why: Stable Diffusion 1.x embeddings ("emb_params",
// "string_to_param" - one encoder only, 768 wide), and pickled .pt/.bin files, which cannot be
// read without running Python's unpickler.
#ifndef LIKENESS_WORKER_EMBEDDINGS_EMBEDDING_FILE_H_
#define LIKENESS_WORKER_EMBEDDINGS_EMBEDDING_FILE_H_

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace likeness::embeddings {

// Tensor names of the SDXL form: one per text encoder.
inline constexpr char kClipLKey[] = "clip_l";  // text_encoder (OpenAI CLIP ViT-L)
inline constexpr char kClipGKey[] = "clip_g";  // text_encoder_2 (OpenCLIP ViT-bigG)
// Tensor names (or name prefixes) that mark a Stable Diffusion 1.x embedding: the
// "safetensors" export of A1111's dict, and its .pt dict flattened.
inline constexpr const char* kSd1EmbeddingKeys[] = {"emb_params", "string_to_param"};
// Extensions of torch.save files, refused before opening.
inline constexpr const char* kPickleExtensions[] = {".pt", ".pth", ".bin", ".ckpt"};

// One token's vectors for SDXL's two text encoders.
struct SdxlTokenVectors {
  torch::Tensor clip_l;  // [n, hidden of text_encoder]
  torch::Tensor clip_g;  // [n, hidden of text_encoder_2]
  int64_t num_vectors() const { return clip_l.defined() ? clip_l.size(0) : 0; }
};

struct SdxlEmbeddingFile {
  SdxlTokenVectors vectors;                     // float32, CPU
  std::map<std::string, std::string> metadata;  // the file's __metadata__
  std::vector<std::string> unexpected;          // other tensors in the file, not used
};

// Reads the SDXL form. Errors name the file: NOT_FOUND when it is missing; INVALID_ARGUMENT for
// a pickle, an SD 1.x or single-encoder embedding, a missing clip_l/clip_g, a tensor that is
// not [n, dim] or [dim] floating point, or clip_l and clip_g with different n. Widths are not
// checked here (they depend on the model): SdxlTextualInversion::AddToken checks them.
absl::StatusOr<SdxlEmbeddingFile> ReadSdxlEmbedding(const std::string& path);

// Writes clip_l and clip_g (float32; any device) and `metadata`, atomically.
// INVALID_ARGUMENT for vectors that are not [n, dim] with the same n.
absl::Status WriteSdxlEmbedding(const std::string& path, const SdxlTokenVectors& vectors,
                                const std::map<std::string, std::string>& metadata = {});

struct EncoderEmbeddingFile {
  std::string token;      // the file's one tensor name
  torch::Tensor vectors;  // [n, dim], float32, CPU
};

// Reads one file of the diffusers per-encoder form: exactly one tensor, [n, dim] or [dim].
absl::StatusOr<EncoderEmbeddingFile> ReadEncoderEmbedding(const std::string& path);

// The token AUTOMATIC1111 would give `path`: its file name without the extension.
std::string TokenNameFromPath(const std::string& path);

// "[2, 768]" for messages.
std::string ShapeString(const torch::Tensor& t);

}  // namespace likeness::embeddings

#endif  // LIKENESS_WORKER_EMBEDDINGS_EMBEDDING_FILE_H_
