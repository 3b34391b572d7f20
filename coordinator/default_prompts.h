// DreamBench-style evaluation prompts (Ruiz et al. 2023, the object prompt list), used when a
// sweep's generate config names no prompts. "{subject}" becomes "<identifier> <class>".
#ifndef LIKENESS_COORDINATOR_DEFAULT_PROMPTS_H_
#define LIKENESS_COORDINATOR_DEFAULT_PROMPTS_H_

#include <string>
#include <vector>

namespace likeness::coordinator {

inline constexpr char kSubjectPlaceholder[] = "{subject}";
// The instance prompt when the train config sets none.
inline constexpr char kDefaultInstancePrompt[] = "a photo of {subject}";

// The prompts with "{subject}" replaced by `subject` ("sks dog").
std::vector<std::string> DefaultPrompts(const std::string& subject);

// `text` with every "{subject}" replaced by `subject`.
std::string FillSubject(const std::string& text, const std::string& subject);

}  // namespace likeness::coordinator

#endif  // LIKENESS_COORDINATOR_DEFAULT_PROMPTS_H_
