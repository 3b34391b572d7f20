// The `likeness` subcommands. Each lives in its own <name>_command.cc; likeness_main.cc lists them.
#ifndef LIKENESS_WORKER_CLI_COMMANDS_H_
#define LIKENESS_WORKER_CLI_COMMANDS_H_

#include "worker/cli/command.h"

namespace likeness::cli {

Command MakeVersionCommand();
Command MakeTokenizeCommand();
Command MakePrepareCommand();
Command MakeInspectCommand();
Command MakeGenerateCommand();
Command MakeEvaluateCommand();
Command MakeTrainCommand();
// The coordinator's user service (sweep_commands.cc, library likeness_sweep_commands).
Command MakeSubmitCommand();
Command MakeStatusCommand();
Command MakeWatchCommand();
Command MakeResultsCommand();
Command MakeCancelCommand();

}  // namespace likeness::cli

#endif  // LIKENESS_WORKER_CLI_COMMANDS_H_
