// The communicator of a test binary that ctest starts as `mpirun -np 2` (likeness_test
// MPI_RANKS): created once, kept for the process (MPI initializes once per process).
#ifndef LIKENESS_TESTS_DIST_MPI_TEST_UTIL_H_
#define LIKENESS_TESTS_DIST_MPI_TEST_UTIL_H_

#include <string>

#include "worker/dist/communicator.h"

namespace likeness::testing {

// The MPI communicator, or null when the process is not one of several MPI ranks (no
// mpirun): the caller then GTEST_SKIPs.
dist::Communicator* TestCommunicator();

// A folder every rank sees: rank 0 makes it fresh (MakeTestTempDir), the others get its path.
std::string SharedTestDir(dist::Communicator& comm, const std::string& name);

}  // namespace likeness::testing

#define LIKENESS_REQUIRE_MPI_RANKS(comm)                                          \
  ::likeness::dist::Communicator* comm = ::likeness::testing::TestCommunicator(); \
  if (comm == nullptr) GTEST_SKIP() << "needs mpirun -np 2 (ctest runs it so)"

#endif  // LIKENESS_TESTS_DIST_MPI_TEST_UTIL_H_
