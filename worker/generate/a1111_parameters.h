// The `parameters` PNG text chunk in AUTOMATIC1111's format, which A1111's "PNG Info" tab,
// ComfyUI and most image sites read back:
//
//   a photo of sks dog on the beach <lora:sks_dog:0.8>
//   Negative prompt: blurry
//   Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 5, Seed: 1234, Size: 1024x1024,
//   Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Lora hashes: "sks_dog: 1a2b3c4d5e6f",
//   Version: likeness 0.1.0
//
// (the last line is one line in the file). Line 1.. is the prompt (it may span lines), an
// optional "Negative prompt:" line, then one line of "Key: value" pairs separated by ", ";
// a value with a comma, colon or quote is written in double quotes with JSON escapes, as A1111's
// quote() does. LoRAs appear as <lora:NAME:SCALE> tags in the prompt, which is how A1111
// itself applies them when the text is sent back to txt2img.
#ifndef LIKENESS_WORKER_GENERATE_A1111_PARAMETERS_H_
#define LIKENESS_WORKER_GENERATE_A1111_PARAMETERS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace likeness::generate {

// The PNG tEXt keyword A1111 writes and reads.
inline constexpr char kA1111ParametersKey[] = "parameters";

struct A1111Parameters {
  std::string prompt;           // without LoRA tags
  std::string negative_prompt;  // empty: no "Negative prompt:" line
  struct Lora {
    std::string name;  // file stem
    double scale = 1.0;
    std::string hash;  // A1111's LoRA short hash; empty when unknown
  };
  std::vector<Lora> loras;
  // Every "Key: value" pair in order (Steps, Sampler, CFG scale, Seed, Size, Model hash, ...),
  // values unquoted. "Lora hashes" is derived from `loras` on format and parsed into it.
  std::vector<std::pair<std::string, std::string>> fields;

  // The value of `key`, or "" when absent.
  std::string Field(const std::string& key) const;
};

std::string FormatA1111Parameters(const A1111Parameters& parameters);

// The inverse of FormatA1111Parameters (also reads A1111's own files). INVALID_ARGUMENT when the
// text has no "Steps:" line, naming what it found instead.
absl::StatusOr<A1111Parameters> ParseA1111Parameters(const std::string& text);

// How A1111 writes a number: integral values without a decimal point ("7"), others shortest.
std::string A1111Number(double value);

}  // namespace likeness::generate

#endif  // LIKENESS_WORKER_GENERATE_A1111_PARAMETERS_H_
