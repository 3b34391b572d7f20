#include "worker/model/checkpoint/name_template.h"

#include <cctype>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace likeness::model::checkpoint {
namespace {

// Recursive descent over one expression:
//   expr   := term (('+' | '-') term)*
//   term   := factor ('*' factor)*
//   factor := digits | variable | '(' expr ')'
class ExpressionParser {
 public:
  ExpressionParser(absl::string_view text, const TemplateVars& vars) : text_(text), vars_(vars) {}

  absl::StatusOr<int> ParseAll() {
    LIKENESS_ASSIGN_OR_RETURN(int value, ParseExpr());
    if (pos_ != text_.size()) return Error("unexpected character");
    return value;
  }

 private:
  absl::StatusOr<int> ParseExpr() {
    LIKENESS_ASSIGN_OR_RETURN(int value, ParseTerm());
    while (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) {
      const char op = text_[pos_++];
      LIKENESS_ASSIGN_OR_RETURN(int rhs, ParseTerm());
      value = op == '+' ? value + rhs : value - rhs;
    }
    return value;
  }

  absl::StatusOr<int> ParseTerm() {
    LIKENESS_ASSIGN_OR_RETURN(int value, ParseFactor());
    while (pos_ < text_.size() && text_[pos_] == '*') {
      ++pos_;
      LIKENESS_ASSIGN_OR_RETURN(int rhs, ParseFactor());
      value *= rhs;
    }
    return value;
  }

  absl::StatusOr<int> ParseFactor() {
    if (pos_ >= text_.size()) return Error("expression ends early");
    const char c = text_[pos_];
    if (c == '(') {
      ++pos_;
      LIKENESS_ASSIGN_OR_RETURN(int value, ParseExpr());
      if (pos_ >= text_.size() || text_[pos_] != ')') return Error("missing ')'");
      ++pos_;
      return value;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) {
      int value = 0;
      while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
        value = value * 10 + (text_[pos_++] - '0');
      }
      return value;
    }
    ++pos_;
    switch (c) {
      case 'i':
        return vars_.i;
      case 'j':
        return vars_.j;
      case 'k':
        return vars_.k;
      case 'L':
        return vars_.L;
      case 'N':
        return vars_.N;
      case 'A':
        return vars_.A;
      default:
        return Error("unknown variable");
    }
  }

  absl::Status Error(absl::string_view what) const {
    return absl::InternalError(
        absl::StrCat("name template expression '", text_, "': ", what, " at position ", pos_));
  }

  absl::string_view text_;
  const TemplateVars& vars_;
  size_t pos_ = 0;
};

}  // namespace

absl::StatusOr<std::string> ExpandNameTemplate(absl::string_view name, const TemplateVars& vars) {
  std::string out;
  out.reserve(name.size());
  size_t pos = 0;
  while (pos < name.size()) {
    const size_t open = name.find('{', pos);
    if (open == absl::string_view::npos) {
      absl::StrAppend(&out, name.substr(pos));
      break;
    }
    const size_t close = name.find('}', open);
    if (close == absl::string_view::npos) {
      return absl::InternalError(absl::StrCat("name template '", name, "': '{' without '}'"));
    }
    absl::StrAppend(&out, name.substr(pos, open - pos));
    LIKENESS_ASSIGN_OR_RETURN(
        int value, ExpressionParser(name.substr(open + 1, close - open - 1), vars).ParseAll());
    if (value < 0) {
      return absl::InternalError(absl::StrCat("name template '", name, "' gives a negative index"));
    }
    absl::StrAppend(&out, value);
    pos = close + 1;
  }
  return out;
}

}  // namespace likeness::model::checkpoint
