// The settings a checkpoint's numbers depend on, recorded in the checkpoint so that a resume
// with other settings is refused instead of silently mixing two runs.
//
// Result-changing fields are everything that changes the bits of the trained weights: the
// method and its knobs, the data (folders, prompts, resolution, buckets, flips), the
// optimiser, schedule, loss and precision settings, the seed and the step count (it sets the
// LR schedule's length and pivotal tuning's switch step), and the base model's content key.
// Fields that only decide where files go or how often they are written (output_dir,
// cache_dir, checkpoint_every, checkpoints_to_keep, validation_*, resume,
// max_consecutive_nan_skips) and the device (a requeued job may land on another GPU; the
// arithmetic differs in the last bits but the run is the same run) may change across a resume.
#ifndef LIKENESS_WORKER_TRAIN_SETTINGS_FINGERPRINT_H_
#define LIKENESS_WORKER_TRAIN_SETTINGS_FINGERPRINT_H_

#include <string>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "worker/train/train_settings.h"

namespace likeness::train {

// {"field": value, ...} of the result-changing fields, named as in TrainConfig, plus
// "model_key" (ModelKey of the base model).
nlohmann::json ResultSettings(const TrainSettings& settings, const std::string& model_key);

// Lower-case hex sha256 of ResultSettings' canonical dump.
std::string SettingsHash(const nlohmann::json& result_settings);

// OK when `recorded` (a checkpoint's ResultSettings) equals `current`; otherwise
// FAILED_PRECONDITION naming every differing field with both values. A null `recorded` (a
// checkpoint written before fingerprints existed) is accepted.
absl::Status CheckSameSettings(const nlohmann::json& recorded, const nlohmann::json& current,
                               const std::string& checkpoint_dir);

}  // namespace likeness::train

#endif  // LIKENESS_WORKER_TRAIN_SETTINGS_FINGERPRINT_H_
