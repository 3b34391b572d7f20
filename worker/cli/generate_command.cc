// `likeness generate`: placeholder until it lands.
#include "worker/cli/commands.h"

namespace likeness::cli {

Command MakeGenerateCommand() {
  Command command;
  command.name = "generate";
  command.summary = "(not implemented yet)";
  command.run = [](const Args&, std::ostream&, std::ostream& err) {
    err << "likeness generate: not implemented yet\n";
    return kExitFailure;
  };
  return command;
}

}  // namespace likeness::cli
