// Helpers shared by the checkpoint tests: the golden single-file cases and their tensors under
// diffusers names, bit-exact comparison, JSON files and error checks.
#ifndef LIKENESS_TESTS_MODEL_CHECKPOINT_TEST_UTIL_H_
#define LIKENESS_TESTS_MODEL_CHECKPOINT_TEST_UTIL_H_

#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "worker/model/checkpoint/sgm_rename_table.h"
#include "worker/model/state_dict.h"

namespace likeness::model::checkpoint::testing {

// The class name golden sidecars give single-file SDXL checkpoints (README section 5).
inline constexpr char kSingleFileClass[] = "sgm.models.diffusion.DiffusionEngine";

struct SingleFileCase {
  std::string name;  // file stem
  std::string path;  // the .safetensors
  nlohmann::json sidecar;
};

// Every golden case whose sidecar class is kSingleFileClass, by name.
std::vector<SingleFileCase> SingleFileCases();

nlohmann::json ReadJson(const std::string& path);
void WriteJson(const std::string& path, const nlohmann::json& value);

// "<file stem>:<key>" -> that tensor of GoldenDir()/<stem>.safetensors (files opened once).
torch::Tensor GoldenTensor(const std::string& ref);

// The component whose single-file prefix `sgm_name` has.
std::optional<Component> ComponentOf(const std::string& sgm_name);

// The diffusers name a golden ref stands for inside `component`: its key, less the
// "<component>." prefix the text-encoder golden files put on their keys.
std::string DiffusersNameOf(Component component, const std::string& ref);

// The key_map's refs of one single-file key: one, or q, k, v for a concatenation.
std::vector<std::string> RefsOf(const nlohmann::json& key_map_value);

// The golden weights of each component under diffusers names, gathered through the key_map.
std::map<Component, StateDict> GoldenDiffusersWeights(const nlohmann::json& sidecar);

// Same dtype, shape and bytes.
::testing::AssertionResult BitEqual(const torch::Tensor& actual, const torch::Tensor& expected);

// `status` has `code` and its message contains every one of `subjects`.
::testing::AssertionResult IsErrorNaming(const absl::Status& status, absl::StatusCode code,
                                         const std::vector<std::string>& subjects);

}  // namespace likeness::model::checkpoint::testing

#endif  // LIKENESS_TESTS_MODEL_CHECKPOINT_TEST_UTIL_H_
