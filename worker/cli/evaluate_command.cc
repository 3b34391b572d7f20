// `likeness evaluate`: placeholder until it lands.
#include "worker/cli/commands.h"

namespace likeness::cli {

Command MakeEvaluateCommand() {
  Command command;
  command.name = "evaluate";
  command.summary = "(not implemented yet)";
  command.run = [](const Args&, std::ostream&, std::ostream& err) {
    err << "likeness evaluate: not implemented yet\n";
    return kExitFailure;
  };
  return command;
}

}  // namespace likeness::cli
