// An EvaluationResult as JSON (what evaluate jobs store and the leaderboard reads) and as the
// table `likeness evaluate` prints, with the DreamBooth paper's numbers beside ours.
//
// JSON layout ("format": kEvaluationFormat):
//   {
//     "format": "likeness.evaluation/1",
//     "real": {"dir": ..., "images": N, "files": [...]},
//     "generated": {"dir": ..., "images": M},
//     "same_set": false,              // true: self-pairs left out (the paper's real-image row)
//     "prompts": {"identifier": "sks", "class": "dog"},
//     "metrics": {"dino": 0.71, "clip_i": ..., "clip_t": ..., "diversity_pixels": ..., ...},
//     "skipped": {"clip_t": "why", ...},  // every metric not in "metrics"
//     "reference": {"source": ..., "real_images": {"dino": 0.774, "clip_i": 0.885}, ...},
//     "models": {"clip": {...}, "dino": {...}},
//     "images": [{"file", "prompt", "prompt_source", "evaluation_prompt", "dino", "clip_i",
//                 "clip_t"}, ...],         // absent values are omitted
//     "warnings": [...]
//   }
#ifndef LIKENESS_WORKER_EVAL_EVALUATION_REPORT_H_
#define LIKENESS_WORKER_EVAL_EVALUATION_REPORT_H_

#include <string>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "worker/eval/evaluator.h"

namespace likeness::eval {

inline constexpr char kEvaluationFormat[] = "likeness.evaluation/1";

nlohmann::json EvaluationToJson(const EvaluationResult& result);

// The metrics table, the reference rows, what was skipped and the warnings, for a terminal.
std::string FormatEvaluationTable(const EvaluationResult& result);

// EvaluationToJson, indented, written atomically (common/atomic_file.h).
absl::Status WriteEvaluationJson(const std::string& path, const EvaluationResult& result);

}  // namespace likeness::eval

#endif  // LIKENESS_WORKER_EVAL_EVALUATION_REPORT_H_
