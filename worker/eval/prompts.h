// The prompt behind each generated image, for CLIP-T.
//
// Sources, first match wins per image:
//   1. --prompts FILE, in one of two formats:
//      a. JSON (the name ends in .json): an object {"<image file name>": "<prompt>", ...}; names
//         are relative to the generated folder;
//      b. text: one entry per line (UTF-8; blank lines and lines starting with '#' skipped),
//         either every line "<image file name><TAB><prompt>", or no line with a tab: then line k
//         is the prompt of the k-th generated image in file-name order, and the counts must
//         match. A file that mixes the two is an error naming the line.
//   2. The image's PNG "parameters" text chunk (AUTOMATIC1111's format, which `likeness
//      generate` writes: worker/generate/a1111_parameters.h reads it, <lora:...> tags removed);
//      text without A1111's closing "Steps:" line gives its lines up to the first that starts
//      with "Negative prompt:".
// An image with neither is scored without CLIP-T, and the report counts it.
//
// The prompt CLIP-T scores is the generation prompt with the subject's identifier token replaced
// by its class noun, as the DreamBooth paper evaluates ("a sks dog in the snow" is scored as "a
// dog in the snow"): an identifier directly followed by the class noun is removed, any other is
// replaced by the noun, and without a noun it is removed. The identifier matches as a whole word
// (not inside "asks"), case-insensitively, as CLIP's tokenizer lower-cases anyway.
#ifndef LIKENESS_WORKER_EVAL_PROMPTS_H_
#define LIKENESS_WORKER_EVAL_PROMPTS_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace likeness::eval {

// AUTOMATIC1111's PNG text keyword for the generation settings.
inline constexpr char kParametersKeyword[] = "parameters";
inline constexpr char kNegativePromptPrefix[] = "Negative prompt:";
inline constexpr char kSettingsLinePrefix[] = "Steps:";

struct PromptFile {
  std::string path;
  std::map<std::string, std::string> by_name;  // format a, or b with tabs
  std::vector<std::string> in_order;           // format b without tabs
};

// NOT_FOUND for a missing file, INVALID_ARGUMENT naming the file (and line) for a malformed one.
absl::StatusOr<PromptFile> ReadPromptFile(const std::string& path);

// The prompt of each of `image_names` (file names in the generated folder, in name order) from
// the file, nullopt where it has none. INVALID_ARGUMENT when an in-order file's line count is not
// the image count, or a mapping names an image that is not there.
absl::StatusOr<std::vector<std::optional<std::string>>> AssignPrompts(
    const PromptFile& file, const std::vector<std::string>& image_names);

// The prompt of an AUTOMATIC1111 "parameters" value; nullopt when it is empty.
std::optional<std::string> PromptFromParameters(absl::string_view parameters);

// The prompt CLIP-T scores (see the file comment). Empty identifier: `prompt` unchanged.
std::string EvaluationPrompt(absl::string_view prompt, absl::string_view identifier,
                             absl::string_view class_noun);

}  // namespace likeness::eval

#endif  // LIKENESS_WORKER_EVAL_PROMPTS_H_
