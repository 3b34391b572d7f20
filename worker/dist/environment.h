// Who this process is in a data-parallel job, read from what the launcher put in the
// environment. Torch-free and MPI-free, so it is unit-tested alone.
//
// Sources, first match wins:
//   1. explicit values (the worker agent sets kRankEnv/kWorldSizeEnv/kLocalRankEnv when it
//      starts ranks itself);
//   2. Open MPI's mpirun: OMPI_COMM_WORLD_RANK / _SIZE / _LOCAL_RANK;
//   3. Slurm's srun: SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID;
//   4. none: one process, rank 0 of 1.
#ifndef LIKENESS_WORKER_DIST_ENVIRONMENT_H_
#define LIKENESS_WORKER_DIST_ENVIRONMENT_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"

namespace likeness::dist {

inline constexpr char kRankEnv[] = "LIKENESS_RANK";
inline constexpr char kWorldSizeEnv[] = "LIKENESS_WORLD_SIZE";
inline constexpr char kLocalRankEnv[] = "LIKENESS_LOCAL_RANK";
inline constexpr char kOmpiRankEnv[] = "OMPI_COMM_WORLD_RANK";
inline constexpr char kOmpiSizeEnv[] = "OMPI_COMM_WORLD_SIZE";
inline constexpr char kOmpiLocalRankEnv[] = "OMPI_COMM_WORLD_LOCAL_RANK";
inline constexpr char kSlurmRankEnv[] = "SLURM_PROCID";
inline constexpr char kSlurmSizeEnv[] = "SLURM_NTASKS";
inline constexpr char kSlurmLocalRankEnv[] = "SLURM_LOCALID";
// Which communicator to build: "auto" (default: NCCL when the build has it and the device is
// CUDA, else MPI when the world is larger than one), "mpi", "nccl" or "single".
inline constexpr char kBackendEnv[] = "LIKENESS_DIST_BACKEND";

struct DistEnvironment {
  int rank = 0;
  int size = 1;
  int local_rank = 0;
  std::string source = "none";  // "explicit", "openmpi", "slurm", "none"
  bool distributed() const { return size > 1; }
};

// Reads the variables through `getenv` (std::getenv in production). INVALID_ARGUMENT naming
// the variable when a value is not a number or rank >= size.
absl::StatusOr<DistEnvironment> ReadDistEnvironment(
    const std::function<const char*(const char*)>& getenv);
absl::StatusOr<DistEnvironment> ReadDistEnvironment();

}  // namespace likeness::dist

#endif  // LIKENESS_WORKER_DIST_ENVIRONMENT_H_
