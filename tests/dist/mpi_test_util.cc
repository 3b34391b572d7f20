#include "tests/dist/mpi_test_util.h"

#include <cstring>
#include <memory>
#include <vector>

#include "tests/test_data.h"
#include "worker/dist/communicator_factory.h"
#include "worker/dist/environment.h"
#include "worker/dist/mpi_communicator.h"

namespace likeness::testing {
namespace {

// Longest path SharedTestDir sends.
constexpr int64_t kMaxPathBytes = 4096;

}  // namespace

dist::Communicator* TestCommunicator() {
  static dist::Communicator* comm = [] () -> dist::Communicator* {
    absl::StatusOr<dist::DistEnvironment> env = dist::ReadDistEnvironment();
    if (!env.ok() || !env->distributed() || !dist::HaveMpi()) return nullptr;
    dist::MpiOptions options;
    options.timeout = dist::CollectiveTimeoutFromEnvironment();
    absl::StatusOr<std::unique_ptr<dist::Communicator>> c = dist::CreateMpiCommunicator(*env, options);
    return c.ok() ? c->release() : nullptr;  // lives until exit, as MPI does
  }();
  return comm;
}

std::string SharedTestDir(dist::Communicator& comm, const std::string& name) {
  std::vector<torch::Tensor> bytes = {torch::zeros({kMaxPathBytes}, torch::kByte)};
  if (comm.rank() == 0) {
    const std::string dir = MakeTestTempDir(name);
    std::memcpy(bytes[0].data_ptr(), dir.data(), std::min<size_t>(dir.size(), kMaxPathBytes - 1));
  }
  if (!comm.Broadcast(bytes, 0, "test dir").ok()) return "";
  return std::string(static_cast<const char*>(bytes[0].data_ptr()));
}

}  // namespace likeness::testing
