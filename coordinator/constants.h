// Every knob of the coordinator, in one place (STYLE.md §6). Flags in coordinator_main.cc
// override the ones an operator may need to change; the rest are fixed for a reason given here.
#ifndef LIKENESS_COORDINATOR_CONSTANTS_H_
#define LIKENESS_COORDINATOR_CONSTANTS_H_

#include <cstdint>

namespace likeness::coordinator {

// --- Network and security ---
// Loopback unless told otherwise: a coordinator hands out work and accepts artifact paths, so
// exposing it must be a decision (--listen=0.0.0.0:50051 plus a token and TLS).
inline constexpr char kDefaultListenAddress[] = "127.0.0.1:50051";
// Environment variable holding the bearer token when no --token_file is given.
inline constexpr char kTokenEnvVar[] = "LIKENESS_TOKEN";
// Metadata key and scheme of the bearer token (RFC 6750).
inline constexpr char kAuthMetadataKey[] = "authorization";
inline constexpr char kBearerPrefix[] = "Bearer ";
// Tokens shorter than this are refused at startup: a guessable token is no token.
inline constexpr int kMinTokenLength = 16;
// Largest gRPC message either way. A sweep spec or a job list is small; 16 MiB leaves room for
// ListJobs over a 10k-job sweep while keeping one bad client from costing much memory.
inline constexpr int kMaxMessageBytes = 16 << 20;

// ListJobs pages: a 10k-job sweep in one answer would pass kMaxMessageBytes.
inline constexpr int kDefaultJobPageSize = 500;
inline constexpr int kMaxJobPageSize = 2'000;

// --- Leases and heartbeats (protocol: coordinator_state.h) ---
inline constexpr int64_t kDefaultLeaseTimeoutMs = 60'000;
// Workers heartbeat three times per lease timeout, so one lost heartbeat never costs a lease.
inline constexpr int64_t kDefaultHeartbeatIntervalMs = kDefaultLeaseTimeoutMs / 3;
// How often the coordinator looks for expired leases; bounds how late an expiry is noticed.
inline constexpr int64_t kLeaseScanIntervalMs = 250;
// What Lease answers when nothing fits: the worker asks again after this long.
inline constexpr int64_t kDefaultLeaseRetryAfterMs = 1'000;

// --- Retries ---
// Infrastructure failures (lost worker, node error) a job may suffer before it fails for good.
inline constexpr int kDefaultMaxInfrastructureRetries = 5;

// --- Expansion limits: a typo in a sweep file must not enqueue a million jobs ---
inline constexpr int kMaxSweepPoints = 10'000;
inline constexpr int kMaxAxisValues = 1'000;
// A step axis shares one training run only if that needs at most this many checkpoints
// (every gcd(steps) steps up to max(steps)); beyond it separate runs cost less disk.
inline constexpr int kMaxSharedCheckpoints = 64;

// --- Store ---
// Progress reports are journaled at most this often per job (a new checkpoint always is):
// a lost report costs a progress bar update, a journaled one costs an fsync.
inline constexpr int64_t kProgressJournalIntervalMs = 10'000;
// SQLite waits this long for a lock before SQLITE_BUSY (only one coordinator should run).
inline constexpr int kSqliteBusyTimeoutMs = 5'000;

// --- Watch ---
// A Watch stream wakes at least this often to notice a cancelled client.
inline constexpr int64_t kWatchPollMs = 500;

}  // namespace likeness::coordinator

#endif  // LIKENESS_COORDINATOR_CONSTANTS_H_
