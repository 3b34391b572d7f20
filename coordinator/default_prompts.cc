#include "coordinator/default_prompts.h"

#include "absl/strings/str_replace.h"

namespace likeness::coordinator {
namespace {

// A subset of DreamBench's 25 object prompts: backgrounds, accessories and styles, so a sweep's
// contact sheet shows recontextualisation, property change and rendering style.
constexpr const char* kPrompts[] = {
    "a {subject} in the jungle",
    "a {subject} on the beach",
    "a {subject} in the snow",
    "a {subject} on top of a wooden floor",
    "a {subject} with a city in the background",
    "a {subject} on top of a purple rug in a forest",
    "a red {subject}",
    "a cube shaped {subject}",
};

}  // namespace

std::string FillSubject(const std::string& text, const std::string& subject) {
  return absl::StrReplaceAll(text, {{kSubjectPlaceholder, subject}});
}

std::vector<std::string> DefaultPrompts(const std::string& subject) {
  std::vector<std::string> prompts;
  for (const char* prompt : kPrompts) prompts.push_back(FillSubject(prompt, subject));
  return prompts;
}

}  // namespace likeness::coordinator
