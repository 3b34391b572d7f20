// Tiny encoder checkpoints for the evaluator's tests, written the way users have them
// (vision_checkpoint.h): a transformers folder with config.json + model.safetensors.
//
// The vision towers are the golden cases' (LIKENESS_GOLDEN_DIR; the first file of each class, so
// any golden set of the same format works): their weights are random, so the encoders run the
// real code paths but their embeddings mean nothing. The CLIP text tower has random weights of
// the same width, seeded, because no golden file pairs a text tower with a vision tower.
#ifndef LIKENESS_TESTS_EVAL_EVAL_FIXTURES_H_
#define LIKENESS_TESTS_EVAL_EVAL_FIXTURES_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "worker/model/state_dict.h"
#include "worker/model/text/clip_text_config.h"

namespace likeness::testing {

inline constexpr char kGoldenClipVisionClass[] = "transformers.CLIPVisionModelWithProjection";
inline constexpr char kGoldenViTClass[] = "transformers.ViTModel";
inline constexpr uint64_t kTinyTextTowerSeed = 20240611;

struct GoldenFile {
  std::string stem;
  std::string safetensors;  // path
  nlohmann::json sidecar;
};

// The golden files whose sidecar "class" is `class_name`, sorted by name. Missing data is an
// error naming the folder.
absl::StatusOr<std::vector<GoldenFile>> GoldenFilesOfClass(const std::string& class_name);

// A CLIP text tower config of the golden vision tower's width, with `projection_dim`, OpenAI's
// token ids and CLIP's full vocabulary (the tokenizer's ids must fit).
model::ClipTextConfig TinyClipTextConfig(int64_t hidden_size, int64_t projection_dim);

// The state dict of a CLIPTextModelWithProjection of `config`, random from `seed`.
model::StateDict RandomClipTextTower(const model::ClipTextConfig& config, uint64_t seed);

// `dir`/config.json + `dir`/model.safetensors of the first golden CLIPVisionModelWithProjection.
absl::StatusOr<std::string> WriteTinyClipVisionFolder(const std::string& dir);
// A full CLIPModel in `dir`: that vision tower, a random text tower (kTinyTextTowerSeed),
// logit_scale and the old persistent position_ids buffers; config.json has model_type "clip".
absl::StatusOr<std::string> WriteTinyFullClipFolder(const std::string& dir);
// `dir`/config.json + `dir`/model.safetensors of the first golden ViTModel (DINO settings).
absl::StatusOr<std::string> WriteTinyDinoFolder(const std::string& dir);

}  // namespace likeness::testing

#endif  // LIKENESS_TESTS_EVAL_EVAL_FIXTURES_H_
