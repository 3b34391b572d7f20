// Defaults the `likeness` subcommands share, each with the environment variable that overrides it.
#ifndef LIKENESS_WORKER_CLI_DEFAULTS_H_
#define LIKENESS_WORKER_CLI_DEFAULTS_H_

#include <cstdlib>
#include <string>

namespace likeness::cli {

// The CLIP BPE vocabulary both SDXL tokenizers use. The default is the shared data folder
// beside a checkout, so commands work from the project root with no flags.
inline constexpr char kVocabEnv[] = "LIKENESS_BPE_VOCAB";
inline constexpr char kDefaultVocabPath[] = "../shared/data/clip/bpe_simple_vocab_16e6.txt.gz";

inline std::string DefaultVocabPath() {
  const char* value = std::getenv(kVocabEnv);
  return value != nullptr && *value != '\0' ? value : kDefaultVocabPath;
}

}  // namespace likeness::cli

#endif  // LIKENESS_WORKER_CLI_DEFAULTS_H_
