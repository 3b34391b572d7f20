// The `golden` test: every <name>.safetensors + <name>.json pair in LIKENESS_GOLDEN_DIR is one
// test case. The sidecar's "class" picks the checker registered for it (a string as is; an
// object's component classes joined by '+'; no "class": the sidecar's "name"); a file whose class no
// checker handles yet is reported as skipped by name and class, never as passed. A new file of
// a known class is checked with no code change.
//
// A checker lives in its own golden_<component>.cc, compiled into the test binary (not a
// library, so static registration cannot be dropped by the linker):
//   LIKENESS_REGISTER_GOLDEN("AutoencoderKL", CheckVae);
#ifndef LIKENESS_TESTS_MODEL_GOLDEN_HARNESS_H_
#define LIKENESS_TESTS_MODEL_GOLDEN_HARNESS_H_

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>

#include "common/safetensors/safetensors_file.h"
#include "nlohmann/json.hpp"

namespace likeness::testing {

// The README's suggested bound in fp32: max|actual - expected| <= kGoldenRelTolerance * max|expected|.
inline constexpr double kGoldenRelTolerance = 1e-4;

struct GoldenCase {
  std::string name;          // file stem, "unet_tiny_sdxl"
  std::string path;          // the .safetensors
  nlohmann::json sidecar;    // the parsed .json
  std::shared_ptr<safetensors::SafetensorsFile> file;

  // __input__.<key> / __output__.<key>; a missing key fails the test with the file named.
  torch::Tensor Input(const std::string& key) const;
  torch::Tensor Output(const std::string& key) const;
  bool HasOutput(const std::string& key) const;
};

using GoldenChecker = std::function<void(const GoldenCase&)>;

bool RegisterGoldenChecker(const std::string& class_name, GoldenChecker checker);

#define LIKENESS_GOLDEN_CONCAT_INNER_(a, b) a##b
#define LIKENESS_GOLDEN_CONCAT_(a, b) LIKENESS_GOLDEN_CONCAT_INNER_(a, b)
#define LIKENESS_REGISTER_GOLDEN(class_name, checker)                                 \
  static const bool LIKENESS_GOLDEN_CONCAT_(likeness_golden_registered_, __LINE__) = \
      ::likeness::testing::RegisterGoldenChecker(class_name, checker)

// EXPECTs max|actual - expected| <= rel_tolerance * max|expected| (shapes equal), naming `what`
// and printing both numbers, so a failure says how far off it is.
void ExpectGoldenClose(const torch::Tensor& actual, const torch::Tensor& expected,
                       const std::string& what, double rel_tolerance = kGoldenRelTolerance);

}  // namespace likeness::testing

#endif  // LIKENESS_TESTS_MODEL_GOLDEN_HARNESS_H_
