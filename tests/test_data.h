// Where tests find the shared data (DESIGN.md): an environment variable if set, else the
// default under ../shared/data beside the checkout. A test given such a variable checks every
// case in it. Missing data is a failure with the path named, never a silent pass.
#ifndef LIKENESS_TESTS_TEST_DATA_H_
#define LIKENESS_TESTS_TEST_DATA_H_

#include <cstdlib>
#include <string>

namespace likeness::testing {

inline constexpr char kGoldenDirEnv[] = "LIKENESS_GOLDEN_DIR";
inline constexpr char kTokenizerCasesEnv[] = "LIKENESS_TOKENIZER_CASES";
inline constexpr char kBpeVocabEnv[] = "LIKENESS_BPE_VOCAB";
inline constexpr char kDreamBenchDirEnv[] = "LIKENESS_DREAMBENCH_DIR";
inline constexpr char kSdxlShapesEnv[] = "LIKENESS_SDXL_SHAPES";

inline std::string DataPath(const char* env_var, const std::string& default_under_data) {
  if (const char* value = std::getenv(env_var); value != nullptr && *value != '\0') return value;
  return std::string(LIKENESS_DEFAULT_DATA_DIR) + "/" + default_under_data;
}

inline std::string GoldenDir() { return DataPath(kGoldenDirEnv, "golden"); }
inline std::string TokenizerCasesPath() { return DataPath(kTokenizerCasesEnv, "clip/tokenizer_cases.json"); }
inline std::string BpeVocabPath() { return DataPath(kBpeVocabEnv, "clip/bpe_simple_vocab_16e6.txt.gz"); }
inline std::string DreamBenchDir() { return DataPath(kDreamBenchDirEnv, "dreambench"); }
// SDXL base 1.0's state-dict names and shapes per component, as diffusers/transformers build them.
inline std::string SdxlShapesPath() {
  return DataPath(kSdxlShapesEnv, "sdxl/sdxl_base_state_dict_shapes.json");
}

// The first subject folder (by name) of the DreamBench-layout data set, or "" if none: tests
// that need one real subject use it, so any data set of the same layout works.
std::string FirstSubjectDir();

// A fresh empty folder under the build tree for one test's files.
std::string MakeTestTempDir(const std::string& name);

}  // namespace likeness::testing

#endif  // LIKENESS_TESTS_TEST_DATA_H_
