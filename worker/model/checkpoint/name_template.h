// Name templates for the rename table (sgm_rename_table.h): tensor names with index arithmetic
// in braces, so one table row describes every instance of a block:
//
//   "input_blocks.{i*(L+1)+j+1}.0"  with i = 1, j = 0, L = 2  ->  "input_blocks.4.0"
//
// An expression holds non-negative integers, the variables below, + - * and parentheses. The
// variables are bound by the table's domains (i level, j layer, k transformer block) and the
// detected structure (L layers per block, N levels, A = 1 when the up level has attention).
#ifndef LIKENESS_WORKER_MODEL_CHECKPOINT_NAME_TEMPLATE_H_
#define LIKENESS_WORKER_MODEL_CHECKPOINT_NAME_TEMPLATE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace likeness::model::checkpoint {

struct TemplateVars {
  int i = 0;  // level
  int j = 0;  // layer within the level (resnet / attention index)
  int k = 0;  // transformer block within an attention, or text-encoder layer
  int L = 0;  // layers per block (down path; the up path has L + 1)
  int N = 0;  // number of levels
  int A = 0;  // 1 when this up level has attention (its upsampler then sits at index 2, not 1)
};

// `name` with every {expression} replaced by its value. INTERNAL for a malformed template or a
// negative result: templates are the table's data, so a bad one is a bug here, not bad input.
absl::StatusOr<std::string> ExpandNameTemplate(absl::string_view name, const TemplateVars& vars);

}  // namespace likeness::model::checkpoint

#endif  // LIKENESS_WORKER_MODEL_CHECKPOINT_NAME_TEMPLATE_H_
