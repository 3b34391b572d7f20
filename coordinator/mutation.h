// What one state change wrote: the journal (store.h) applies a Mutation in one transaction
// before the RPC that caused it answers, so an answered call is never lost.
#ifndef LIKENESS_COORDINATOR_MUTATION_H_
#define LIKENESS_COORDINATOR_MUTATION_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "protos/likeness.pb.h"

namespace likeness::coordinator {

// One row of the job_transitions table: every state change of every job, with its attempt.
struct Transition {
  std::string job_id;
  int32_t attempt = 0;
  v1::JobState from = v1::JOB_STATE_UNSPECIFIED;
  v1::JobState to = v1::JOB_STATE_UNSPECIFIED;
  std::string worker_id;
  std::string reason;
  int64_t time_ms = 0;
};

struct Mutation {
  // Snapshots to upsert, keyed by id so a job changed twice is written once.
  std::map<std::string, v1::Sweep> sweeps;
  std::map<std::string, v1::Job> jobs;
  std::map<std::string, v1::Worker> workers;
  std::vector<Transition> transitions;

  bool empty() const {
    return sweeps.empty() && jobs.empty() && workers.empty() && transitions.empty();
  }
};

}  // namespace likeness::coordinator

#endif  // LIKENESS_COORDINATOR_MUTATION_H_
