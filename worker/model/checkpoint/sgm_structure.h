// The structure a component's tensor names reveal (levels, layers per block, where attention is
// and how deep), read from single-file (SGM) names or from diffusers names. The rename table
// (sgm_rename_table.h) is instantiated for it.
#ifndef LIKENESS_WORKER_MODEL_CHECKPOINT_SGM_STRUCTURE_H_
#define LIKENESS_WORKER_MODEL_CHECKPOINT_SGM_STRUCTURE_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "worker/model/checkpoint/sgm_rename_table.h"
#include "worker/model/state_dict.h"

namespace likeness::model::checkpoint {

// 1 + the largest n such that a name starts with `prefix` + n + "."; 0 when none does.
// CountIndexed(sd, "down_blocks.") is the number of down blocks.
int CountIndexed(const StateDict& state_dict, absl::string_view prefix);

// From names without the component prefix. INVALID_ARGUMENT (naming `source`) when the names
// do not form a structure the table knows, e.g. a UNet whose block indices do not divide into
// levels.
absl::StatusOr<Structure> DetectSgmStructure(Naming naming, const StateDict& sgm,
                                             absl::string_view source);
absl::StatusOr<Structure> DetectDiffusersStructure(Naming naming, const StateDict& diffusers,
                                                   absl::string_view source);

}  // namespace likeness::model::checkpoint

#endif  // LIKENESS_WORKER_MODEL_CHECKPOINT_SGM_STRUCTURE_H_
