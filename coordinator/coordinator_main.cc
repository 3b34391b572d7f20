// likeness-coordinator: expands sweeps into train -> generate -> evaluate jobs, leases them to
// workers and journals every change in SQLite; serves until SIGINT/SIGTERM.
#include <pthread.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "common/flags_usage.h"
#include "coordinator/auth.h"
#include "coordinator/constants.h"
#include "coordinator/coordinator.h"
#include "coordinator/server.h"

ABSL_FLAG(std::string, listen, likeness::coordinator::kDefaultListenAddress,
          "host:port the gRPC services listen on; port 0 picks a free one. Loopback by default: "
          "listen on 0.0.0.0 only with TLS");
ABSL_FLAG(std::string, state_dir, "runs/coordinator",
          "folder of the journal (journal.db) and of the generated token file");
ABSL_FLAG(std::string, journal, "", "SQLite journal path (default: STATE_DIR/journal.db)");
ABSL_FLAG(std::string, artifact_root, "runs/artifacts",
          "shared folder where jobs write their outputs; reported artifact paths must lie in it");
ABSL_FLAG(std::string, token_file, "",
          "file holding the bearer token every call must carry (default: $LIKENESS_TOKEN, else "
          "STATE_DIR/token, created with a random token when missing)");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain of this server (enables TLS)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA that client certificates must be signed by (enables mutual TLS)");
ABSL_FLAG(int64_t, lease_timeout_ms, likeness::coordinator::kDefaultLeaseTimeoutMs,
          "a lease not renewed by a heartbeat or report for this long ends and its job is requeued");
ABSL_FLAG(int64_t, heartbeat_interval_ms, likeness::coordinator::kDefaultHeartbeatIntervalMs,
          "how often workers are told to heartbeat");
ABSL_FLAG(int, max_message_bytes, likeness::coordinator::kMaxMessageBytes,
          "largest gRPC message accepted or sent");

namespace {

constexpr char kUsage[] =
    "likeness-coordinator: the cluster's coordinator. Expands sweeps into train -> generate ->\n"
    "evaluate jobs, leases them to workers that fit, requeues the jobs of workers that die and\n"
    "journals every change in SQLite, so a restart continues where it stopped.\n\n"
    "Usage: likeness-coordinator [--listen=HOST:PORT] [--state_dir=DIR] [--artifact_root=DIR]\n"
    "                            [--token_file=FILE] [--tls_cert=PEM --tls_key=PEM [--tls_client_ca=PEM]]";

// How long in-flight calls get to finish after SIGINT/SIGTERM.
constexpr std::chrono::seconds kShutdownGrace(5);

}  // namespace

int main(int argc, char** argv) {
  namespace lc = likeness::coordinator;
  likeness::ParseMainFlags(argc, argv, kUsage,
                           std::string("likeness-coordinator ") + LIKENESS_VERSION);
  // SIGINT/SIGTERM are blocked in every thread (gRPC's included, which inherit the mask) and
  // taken by one thread with sigwait, where calling Shutdown is safe; a signal handler could not.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const std::string state_dir = absl::GetFlag(FLAGS_state_dir);
  std::error_code error;
  std::filesystem::create_directories(state_dir, error);
  if (error) {
    std::cerr << "likeness-coordinator: --state_dir " << state_dir << ": " << error.message() << "\n";
    return 1;
  }
  absl::StatusOr<std::string> token = lc::ResolveServerToken(absl::GetFlag(FLAGS_token_file), state_dir);
  if (!token.ok()) {
    std::cerr << "likeness-coordinator: " << token.status().message() << "\n";
    return 1;
  }

  lc::SystemClock clock;
  lc::CoordinatorOptions options;
  options.journal_path = absl::GetFlag(FLAGS_journal).empty()
                             ? (std::filesystem::path(state_dir) / "journal.db").string()
                             : absl::GetFlag(FLAGS_journal);
  options.state.artifact_root = std::filesystem::absolute(absl::GetFlag(FLAGS_artifact_root)).string();
  options.state.lease_timeout_ms = absl::GetFlag(FLAGS_lease_timeout_ms);
  options.state.heartbeat_interval_ms = absl::GetFlag(FLAGS_heartbeat_interval_ms);
  if (options.state.lease_timeout_ms <= options.state.heartbeat_interval_ms) {
    std::cerr << "likeness-coordinator: --lease_timeout_ms must exceed --heartbeat_interval_ms\n";
    return 2;
  }
  auto coordinator = lc::Coordinator::Open(&clock, options);
  if (!coordinator.ok()) {
    std::cerr << "likeness-coordinator: " << coordinator.status().message() << "\n";
    return 1;
  }

  lc::ServerOptions server_options;
  server_options.listen = absl::GetFlag(FLAGS_listen);
  server_options.token = *token;
  server_options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  server_options.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  server_options.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  server_options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  server_options.version = LIKENESS_VERSION;
  auto server = lc::CoordinatorServer::Start(coordinator->get(), server_options);
  if (!server.ok()) {
    std::cerr << "likeness-coordinator: " << server.status().message() << "\n";
    return 1;
  }
  std::thread stopper([&server, &stop_signals] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    std::cout << "likeness-coordinator: signal " << signal << ", shutting down" << std::endl;
    (*server)->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
  });
  std::cout << "likeness-coordinator: journal " << options.journal_path << ", artifacts "
            << options.state.artifact_root << std::endl;
  std::cout << "likeness-coordinator listening on port " << (*server)->port() << std::endl;
  (*server)->Wait();
  stopper.join();
  return 0;
}
