// Shared fixtures of the trainer tests: a tiny subject folder of PNGs of several aspect
// ratios, the tiny golden SDXL bundle, and a TrainConfig that trains on them in seconds.
#ifndef LIKENESS_TESTS_TRAIN_TRAIN_TEST_UTIL_H_
#define LIKENESS_TESTS_TRAIN_TRAIN_TEST_UTIL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "protos/likeness.pb.h"
#include "worker/model/sdxl/sdxl_models.h"
#include "worker/text/clip_tokenizer.h"
#include "worker/train/trainer.h"

namespace likeness::testing {

// The tiny VAE halves, the tiny UNet downsamples twice: sides must be multiples of 8.
inline constexpr int kTinyResolution = 32;

// Writes `sizes` (width, height) as deterministic PNG photos 00.png, 01.png, ... into `dir`,
// and a caption file for the first one.
void WriteSubjectFolder(const std::string& dir, const std::vector<std::pair<int, int>>& sizes,
                        int pattern_seed);

std::string TinyModelPath();
std::string TinyModelConfigJson();

// A config that trains `method` on `subject_dir` into `output_dir` at kTinyResolution.
v1::TrainConfig TinyTrainConfig(v1::TrainMethod method, const std::string& subject_dir,
                                const std::string& output_dir);

// Loads a fresh copy of the tiny bundle and the CLIP tokenizer, and creates a trainer.
absl::StatusOr<std::unique_ptr<train::Trainer>> MakeTinyTrainer(
    const train::TrainSettings& settings, train::TrainHooks hooks = {},
    model::SdxlModels* models_out = nullptr);

// Deep copies of every parameter and buffer of the four models ("<component>.<name>").
std::map<std::string, torch::Tensor> SnapshotModels(model::SdxlModels& models);

}  // namespace likeness::testing

#endif  // LIKENESS_TESTS_TRAIN_TRAIN_TEST_UTIL_H_
