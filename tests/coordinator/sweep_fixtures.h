// Sweep specs the coordinator tests share, written as users write them (YAML).
#ifndef LIKENESS_TESTS_COORDINATOR_SWEEP_FIXTURES_H_
#define LIKENESS_TESTS_COORDINATOR_SWEEP_FIXTURES_H_

#include <string>

#include "common/config/proto_yaml.h"
#include "gtest/gtest.h"
#include "protos/likeness.pb.h"

namespace likeness::coordinator::testing {

inline v1::SweepSpec ParseSweep(const std::string& yaml) {
  v1::SweepSpec spec;
  const absl::Status status = config::MergeYamlIntoProto(yaml, "sweep.yaml", &spec);
  EXPECT_TRUE(status.ok()) << status;
  return spec;
}

// Two step counts x two learning rates of a LoRA on one subject: the quickstart's shape.
inline constexpr char kTwoByTwo[] = R"yaml(
name: dog-lora
base_model: /models/tiny-sdxl
subjects: [{name: dog, image_dir: /data/dog, identifier: sks, class_name: dog}]
train: {method: lora, lr_scheduler: constant, lora_rank: 4}
generate: {sampler: euler, steps: 4, images_per_prompt: 1, prompts: ["a {subject} on the beach"]}
evaluate: {metrics: [clip_i]}
axes:
  - {field: train.steps, values: [2, 4]}
  - {field: train.learning_rate, values: [1e-4, 2e-4]}
)yaml";

}  // namespace likeness::coordinator::testing

#endif  // LIKENESS_TESTS_COORDINATOR_SWEEP_FIXTURES_H_
