// One point of an expanded sweep: a subject and the three configs with every axis applied.
#ifndef LIKENESS_COORDINATOR_SWEEP_POINT_H_
#define LIKENESS_COORDINATOR_SWEEP_POINT_H_

#include <vector>

#include "protos/likeness.pb.h"

namespace likeness::coordinator {

struct SweepPoint {
  int subject_index = 0;
  v1::TrainConfig train;
  v1::GenerateConfig generate;
  v1::EvaluateConfig evaluate;
  std::vector<v1::AxisValue> values;  // one per axis, in axis order
};

}  // namespace likeness::coordinator

#endif  // LIKENESS_COORDINATOR_SWEEP_POINT_H_
