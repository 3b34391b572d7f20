// Sweep expansion: a SweepSpec -> validated points (subject x axis values), each with complete
// train/generate/evaluate configs. Pure: no I/O (image folders are checked by the worker that
// reads them, since the coordinator may not mount the shared filesystem).
//
// Strategies: GRID takes the cartesian product of the axes (the first axis varies slowest),
// RANDOM draws `random_count` points with `random_seed`, ZIP takes the i-th value of every axis.
// Then every point is repeated for every subject (subjects vary slowest).
//
// Every error names the field and the value:
//   "axes[1].field 'train.learning_rat': no such field ('learning_rat' is not a field of ...)"
#ifndef LIKENESS_COORDINATOR_SWEEP_EXPANSION_H_
#define LIKENESS_COORDINATOR_SWEEP_EXPANSION_H_

#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/sweep_point.h"
#include "protos/likeness.pb.h"

namespace likeness::coordinator {

// The identifier when neither the subject nor the train config names one (DreamBooth's).
inline constexpr char kDefaultIdentifier[] = "sks";

// Checks the spec and returns its points, or INVALID_ARGUMENT naming the first bad field.
absl::StatusOr<std::vector<SweepPoint>> ExpandSweep(const v1::SweepSpec& spec);

// The spec with defaults filled in (subject names, the sweep name); what the store keeps.
v1::SweepSpec NormalizeSweep(const v1::SweepSpec& spec);

}  // namespace likeness::coordinator

#endif  // LIKENESS_COORDINATOR_SWEEP_EXPANSION_H_
