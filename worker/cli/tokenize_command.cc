// Placeholder until the tokenizer lands.
#include "worker/cli/commands.h"

namespace likeness::cli {

Command MakeTokenizeCommand() {
  Command command;
  command.name = "tokenize";
  command.summary = "Print the CLIP token ids of TEXT as JSON.";
  command.usage_args = "[--vocab PATH] [--encoder 1|2] TEXT...";
  command.run = [](const Args&, std::ostream&, std::ostream& err) {
    err << "tokenize: not built yet\n";
    return kExitFailure;
  };
  return command;
}

}  // namespace likeness::cli
