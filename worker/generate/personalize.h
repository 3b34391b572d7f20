// LoRAs and textual-inversion embeddings of a generate config applied to a loaded pipeline:
// LoRAs attach as adapters (the base weights are never copied; merge_loras folds them in),
// embeddings add their tokens to both text encoders and the prompt tokenizer. Each LoRA is
// recorded with its A1111 hash for the images' parameters.
#ifndef LIKENESS_WORKER_GENERATE_PERSONALIZE_H_
#define LIKENESS_WORKER_GENERATE_PERSONALIZE_H_

#include "absl/status/status.h"
#include "protos/likeness.pb.h"
#include "worker/generate/pipeline.h"

namespace likeness::generate {

// A LoRA's strength when its config gives none.
inline constexpr double kDefaultLoraScale = 1.0;

// INVALID_ARGUMENT / NOT_FOUND naming the file at fault.
absl::Status ApplyPersonalization(const v1::GenerateConfig& config, Pipeline& pipeline);

}  // namespace likeness::generate

#endif  // LIKENESS_WORKER_GENERATE_PERSONALIZE_H_
