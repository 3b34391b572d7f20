// The job DAG of a sweep: every point becomes train -> generate -> evaluate, with identical
// jobs shared between points. Pure: no I/O.
//
// Sharing:
//   * Points whose train configs are identical share one train job (an axis over a generate
//     or evaluate field trains once).
//   * When the learning-rate schedule does not depend on the total step count (constant, or
//     constant_with_warmup) and the method does not either (pivotal tuning splits its steps
//     by a fraction), points that differ only in train.steps share one run of max(steps)
//     steps that keeps a checkpoint every gcd(steps) steps; each point's generate job reads
//     the checkpoint of its own step count. Beyond kMaxSharedCheckpoints checkpoints the
//     lengths train separately.
//   * Generate and evaluate jobs are shared the same way when their inputs are identical.
//
// Order: each training run is followed by its generate and evaluate jobs, so FIFO within a
// priority finishes the points of one run (results early) before starting the next run.
//
// Job ids are "<sweep_id>.train-<n>", "<sweep_id>.generate-<n>", "<sweep_id>.evaluate-<n>";
// outputs go to <artifact_root>/<sweep_id>/<kind>-<n>.
#ifndef LIKENESS_COORDINATOR_JOB_GRAPH_H_
#define LIKENESS_COORDINATOR_JOB_GRAPH_H_

#include <string>
#include <vector>

#include "coordinator/sweep_point.h"
#include "protos/likeness.pb.h"

namespace likeness::coordinator {

// The trainer's checkpoint folder prefix (worker/train/checkpoint.h kCheckpointPrefix; repeated
// here because the coordinator does not link the trainer).
inline constexpr char kCheckpointDirPrefix[] = "step-";

// Whether a run of N steps passes through the same states as the first N steps of a longer
// run, so its intermediate checkpoints can stand in for shorter runs.
bool ScheduleIndependentOfTotalSteps(const v1::TrainConfig& train);

// The jobs of one sweep, in an order where every job follows its dependencies. States are
// QUEUED (no dependencies) or PENDING; ids, specs, priority and sequence are set.
std::vector<v1::Job> BuildJobGraph(const std::string& sweep_id, const v1::SweepSpec& spec,
                                   const std::vector<SweepPoint>& points,
                                   const std::string& artifact_root);

}  // namespace likeness::coordinator

#endif  // LIKENESS_COORDINATOR_JOB_GRAPH_H_
