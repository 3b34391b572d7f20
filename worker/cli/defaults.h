// Defaults the `likeness` subcommands share, each with the environment variable that overrides it.
#ifndef LIKENESS_WORKER_CLI_DEFAULTS_H_
#define LIKENESS_WORKER_CLI_DEFAULTS_H_

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "worker/cli/command.h"

namespace likeness::cli {

// The CLIP BPE vocabulary both SDXL tokenizers use. The default is the shared data folder
// beside a checkout, so commands work from the project root with no flags.
inline constexpr char kVocabEnv[] = "LIKENESS_BPE_VOCAB";
inline constexpr char kDefaultVocabPath[] = "../shared/data/clip/bpe_simple_vocab_16e6.txt.gz";

inline std::string DefaultVocabPath() {
  const char* value = std::getenv(kVocabEnv);
  return value != nullptr && *value != '\0' ? value : kDefaultVocabPath;
}

// The --vocab option every command that tokenizes shares; read it with VocabPath(args).
inline Option VocabOption() {
  return {"vocab", "PATH",
          absl::StrCat("CLIP's bpe_simple_vocab_16e6.txt.gz, or a diffusers tokenizer folder "
                       "(vocab.json + merges.txt); default: $",
                       kVocabEnv, ", else ", kDefaultVocabPath),
          ""};
}

inline std::string VocabPath(const Args& args) {
  return args.Given("vocab") ? args.Get("vocab") : DefaultVocabPath();
}

}  // namespace likeness::cli

#endif  // LIKENESS_WORKER_CLI_DEFAULTS_H_
