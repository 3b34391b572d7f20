#include <ostream>

#include "kernels/kernels_info.h"
#include "kernels/nccl_info.h"
#include "worker/cli/commands.h"

namespace likeness::cli {

Command MakeVersionCommand() {
  Command command;
  command.name = "version";
  command.summary = "Print the version and what this build can use (CUDA, NCCL, MPI).";
  command.max_positional = 0;
  command.run = [](const Args&, std::ostream& out, std::ostream&) {
    out << "likeness " << LIKENESS_VERSION << "\n"
        << "cuda: " << (kernels::CompiledWithCuda() ? "compiled (" + kernels::CompiledCudaArchitectures() + ")" : "not compiled")
        << ", devices visible: " << kernels::CudaDeviceCount() << "\n"
        << "nccl: " << (kernels::NcclVersion().empty() ? "not linked" : "linked, version " + kernels::NcclVersion()) << "\n"
        << "mpi: " << (LIKENESS_HAVE_MPI ? "linked" : "not linked") << "\n";
    return kExitOk;
  };
  return command;
}

}  // namespace likeness::cli
