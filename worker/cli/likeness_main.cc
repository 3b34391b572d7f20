// `likeness`: the standalone command line. Runs without a cluster.
#include <iostream>
#include <string>
#include <vector>

#include "worker/cli/commands.h"

namespace {

constexpr char kAbout[] =
    "Likeness personalizes Stable Diffusion XL: fine-tune on 10-30 photos of a subject,\n"
    "generate it in new prompts, and run sweeps of both on a cluster.";

}  // namespace

int main(int argc, char** argv) {
  using namespace likeness::cli;
  const std::vector<Command> commands = {
      MakeCancelCommand(),
      MakeEvaluateCommand(),
      MakeGenerateCommand(),
      MakeInspectCommand(),
      MakePrepareCommand(),
      MakeResultsCommand(),
      MakeStatusCommand(),
      MakeSubmitCommand(),
      MakeTokenizeCommand(),
      MakeTrainCommand(),
      MakeVersionCommand(),
      MakeWatchCommand(),
  };
  return RunCommandLine(kAbout, commands, std::vector<std::string>(argv, argv + argc), std::cout,
                        std::cerr);
}
