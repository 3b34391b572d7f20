// `likeness tokenize`: the CLIP token ids of each TEXT, as the SDXL text encoders receive them.
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "worker/cli/commands.h"
#include "worker/cli/defaults.h"
#include "worker/text/clip_tokenizer.h"

namespace likeness::cli {
namespace {

// Without --vocab: $LIKENESS_BPE_VOCAB, else the shared data beside the checkout
// (kVocabEnv and kDefaultVocabPath in defaults.h, the same defaults the tests use).
constexpr char kDefaultEncoder[] = "1";
// Beyond CLIP's 77 positions the ids fit no encoder; the cap only keeps a typo from
// allocating gigabytes of padding.
constexpr long long kMaxMaxLength = 1 << 20;

int UsageError(std::ostream& err, const std::string& message) {
  err << "likeness tokenize: " << message << "\nRun 'likeness tokenize --help' for usage.\n";
  return kExitUsage;
}

std::string JsonArray(const std::vector<int>& ids) {
  return absl::StrCat("[", absl::StrJoin(ids, ","), "]");
}

int RunTokenize(const Args& args, std::ostream& out, std::ostream& err) {
  const std::string& encoder = args.Get("encoder");
  if (encoder != "1" && encoder != "2") {
    return UsageError(err, absl::StrCat("--encoder wants 1 or 2, got '", encoder, "'"));
  }
  const text::PadStyle pad = encoder == "1" ? text::PadStyle::kEndOfText : text::PadStyle::kZero;
  absl::StatusOr<long long> max_length = args.GetInt("max-length");
  if (!max_length.ok()) return UsageError(err, std::string(max_length.status().message()));
  if (*max_length < text::kMinLength || *max_length > kMaxMaxLength) {
    return UsageError(err, absl::StrCat("--max-length wants ", text::kMinLength, " to ",
                                        kMaxMaxLength, ", got ", *max_length));
  }
  const std::string vocab = VocabPath(args);
  absl::StatusOr<text::ClipTokenizer> tokenizer = text::ClipTokenizer::Load(vocab);
  if (!tokenizer.ok()) {
    err << "likeness tokenize: cannot load the vocabulary: " << tokenizer.status().message()
        << "\n";
    return kExitFailure;
  }
  const int length = static_cast<int>(*max_length);
  for (const std::string& text : args.positional()) {
    out << JsonArray(args.Switch("no-pad") ? tokenizer->EncodeTruncated(text, length)
                                           : tokenizer->Tokenize(text, pad, length))
        << "\n";
  }
  out.flush();
  return out ? kExitOk : kExitFailure;
}

}  // namespace

Command MakeTokenizeCommand() {
  Command command;
  command.name = "tokenize";
  command.summary = "Print the CLIP token ids of TEXT as JSON.";
  command.usage_args = "[--vocab PATH] [--encoder 1|2] [--max-length N] [--no-pad] TEXT...";
  command.description = absl::StrCat(
      "Tokenizes each TEXT as SDXL's text encoders receive it (OpenAI CLIP's BPE tokenizer) and\n"
      "prints one line per TEXT: a JSON array of ids, <|startoftext|> first and <|endoftext|>\n"
      "after at most N-2 text ids, padded to N ids unless --no-pad. Encoder 1 (CLIP ViT-L) pads\n"
      "with <|endoftext|> (49407), encoder 2 (OpenCLIP bigG) with '!' (id 0).\n"
      "\n"
      "The vocabulary is --vocab, else $",
      kVocabEnv, " if set, else\n", kDefaultVocabPath,
      " (relative to the working directory).\n"
      "Exit status: 0 ok, 1 the vocabulary could not be loaded, 2 bad command line.\n"
      "\n"
      "Example: likeness tokenize --encoder 2 --no-pad \"a photo of sks dog\"\n"
      "  [49406,320,1125,539,48136,1929,49407]");
  command.options = {
      VocabOption(),
      {"encoder", "1|2", "1: pad with <|endoftext|> (CLIP ViT-L); 2: pad with 0 (OpenCLIP bigG)",
       kDefaultEncoder},
      {"max-length", "N", "ids per TEXT: truncate (keeping <|endoftext|> last) and pad to N",
       std::to_string(text::kMaxLength)},
      {"no-pad", "", "truncate to N but do not pad", ""},
  };
  command.min_positional = 1;
  command.run = RunTokenize;
  return command;
}

}  // namespace likeness::cli
