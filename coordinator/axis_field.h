// Sweep axes name a field of the train/generate/evaluate configs by its dotted path
// ("train.learning_rate"). This file resolves such a path, lists an axis's values as text and
// writes one value into a point's configs, validating it exactly as a YAML config would be.
#ifndef LIKENESS_COORDINATOR_AXIS_FIELD_H_
#define LIKENESS_COORDINATOR_AXIS_FIELD_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/constants.h"
#include "coordinator/sweep_point.h"
#include "google/protobuf/descriptor.h"
#include "protos/likeness.pb.h"

namespace likeness::coordinator {

// The config messages an axis path may start with.
inline constexpr char kTrainRoot[] = "train";
inline constexpr char kGenerateRoot[] = "generate";
inline constexpr char kEvaluateRoot[] = "evaluate";

// Checks that `path` names a singular numeric, enum, bool or string field. `where` prefixes
// errors: "axes[1].field 'train.learning_rat': no such field of TrainConfig".
absl::StatusOr<const google::protobuf::FieldDescriptor*> ResolveAxisField(
    const std::string& path, const std::string& where);

// Whether `field` takes numbers (a range axis needs one).
bool IsNumericField(const google::protobuf::FieldDescriptor& field);
bool IsIntegerField(const google::protobuf::FieldDescriptor& field);

// The grid values of `axis` as text: its `values`, or `num` points over [min, max].
absl::StatusOr<std::vector<std::string>> AxisGridValues(const v1::SweepAxis& axis,
                                                       const google::protobuf::FieldDescriptor& field,
                                                       const std::string& where);

// `num` points over [axis.min, axis.max] (checked by AxisGridValues).
absl::StatusOr<std::vector<std::string>> RangeGridValues(const v1::SweepAxis& axis,
                                                        const google::protobuf::FieldDescriptor& field,
                                                        const std::string& where);

// One random value of `axis`: a uniform choice of its `values`, or a uniform (log-uniform with
// log_scale) draw from [min, max]. Uses only the engine's raw output, so a seed gives the same
// sweep on every platform (std distributions differ between standard libraries).
std::string AxisRandomValue(const v1::SweepAxis& axis,
                            const google::protobuf::FieldDescriptor& field, std::mt19937_64* rng);

// Sets the field `path` of `point` to `text`; errors name `where` and the value.
absl::Status SetAxisValue(const std::string& path, const std::string& text,
                          const std::string& where, SweepPoint* point);

// Shortest text that reads back as the same double ("0.0001", "1e-05").
std::string FormatDouble(double value);

}  // namespace likeness::coordinator

#endif  // LIKENESS_COORDINATOR_AXIS_FIELD_H_
