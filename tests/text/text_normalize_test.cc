// The clean-up steps against what CPython does (expected values taken from Python 3.11).
#include "worker/text/text_normalize.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/text/tokenizer_cases.h"
#include "worker/text/byte_encoder.h"
#include "worker/text/html_unescape.h"

namespace likeness::testing {
namespace {

using ::testing::ElementsAre;
using text::BasicClean;
using text::HtmlUnescape;
using text::PreTokenize;
using text::PythonLower;
using text::WhitespaceClean;

TEST(HtmlUnescapeTest, MatchesPythonHtmlUnescape) {
  struct Case {
    const char* input;
    const char* python;  // html.unescape(input)
  };
  const Case cases[] = {
      {"&amp;amp;", "&amp;"},
      {"&#39;", "'"},
      {"&eacute", "\u00e9"},  // A legacy name: no ';' needed.
      {"&eacute;", "\u00e9"},
      {"&#x1F600;", "\U0001F600"},
      {"&#128;", "\u20ac"},  // 0x80-0x9F are read as Windows-1252.
      {"&#x9f;", "\u0178"},
      {"&notit;", "\u00acit;"},  // The longest known prefix.
      {"&ampere", "&ere"},
      {"&#65B", "AB"},  // The ';' is optional.
      {"&#0;", "\ufffd"},
      {"&#x110000;", "\ufffd"},
      {"&#xD800;", "\ufffd"},
      {"&#99999999999999999999;", "\ufffd"},
      {"&#1;", ""},  // Controls and noncharacters are dropped.
      {"&#11;", ""},
      {"&#xFDD0;", ""},
      {"&#13;", "\r"},
      {"&#x0000041;", "A"},
      {"&#", "&#"},
      {"&#x;", "&#x;"},
      {"&;", "&;"},
      {"&", "&"},
      {"a&b", "a&b"},
      {"&AMP", "&"},
      {"&Amp;", "&Amp;"},  // Names are case-sensitive.
      {"&lt&gt", "<>"},
      {"&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;", "&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;"},
      {"&amp\u00e9", "&\u00e9"},
      {"&NotNestedGreaterGreater;", "\u2aa2\u0338"},  // Two code points.
      {"&fjlig;", "fj"},
      {"&lt\n;", "<\n;"},
      {"no references", "no references"},
  };
  for (const Case& c : cases) EXPECT_EQ(HtmlUnescape(c.input), c.python) << "input: " << c.input;
}

TEST(HtmlUnescapeTest, BasicCleanUnescapesTwiceThenStrips) {
  EXPECT_EQ(BasicClean("&amp;amp;"), "&");
  EXPECT_EQ(BasicClean("&amp;amp;amp;"), "&amp;") << "only two passes";
  EXPECT_EQ(BasicClean("  &lt;b&gt;\t"), "<b>");
  EXPECT_EQ(BasicClean("&nbsp;x&nbsp;"), "x") << "an unescaped NBSP is stripped too";
  const auto& tokenizer = SharedTokenizer();
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ(tokenizer->Encode("fish &amp;amp; chips"), tokenizer->Encode("fish & chips"));
  EXPECT_EQ(tokenizer->Encode("it&#39;s"), tokenizer->Encode("it's"));
  EXPECT_EQ(tokenizer->Encode("caf&eacute"), tokenizer->Encode("caf\u00e9"));
  EXPECT_EQ(tokenizer->Encode("&#x1F600;"), tokenizer->Encode("\U0001F600"));
  EXPECT_EQ(tokenizer->Encode("&#128;"), tokenizer->Encode("\u20ac"));
}

TEST(TextNormalizeTest, PythonWhitespaceIsExactlyStrIsspace) {
  // [c for c in range(0x110000) if chr(c).isspace()] in Python 3.11.
  const std::vector<char32_t> python = {
      0x9,    0xa,    0xb,    0xc,    0xd,    0x1c,   0x1d,   0x1e,   0x1f,   0x20,
      0x85,   0xa0,   0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006,
      0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000};
  std::vector<char32_t> ours;
  for (char32_t c = 0; c <= 0x10FFFF; ++c) {
    if (text::IsPythonWhitespace(c)) ours.push_back(c);
  }
  EXPECT_EQ(ours, python);
}

TEST(TextNormalizeTest, WhiteSpaceIsTheRegexModulesBackslashS) {
  // [c for c in range(0x110000) if regex.match(r'\s', chr(c))]: Unicode White_Space.
  const std::vector<char32_t> regex_module = {
      0x9,    0xa,    0xb,    0xc,    0xd,    0x20,   0x85,   0xa0,   0x1680,
      0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008,
      0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000};
  std::vector<char32_t> ours;
  for (char32_t c = 0; c <= 0x10FFFF; ++c) {
    if (text::IsUnicodeWhiteSpace(c)) ours.push_back(c);
  }
  EXPECT_EQ(ours, regex_module);
}

TEST(TextNormalizeTest, WhitespaceCollapsesEveryKind) {
  EXPECT_EQ(WhitespaceClean("a\tb\u00a0c  d\n\ne\u3000f\u2028g\v\u0085h "), "a b c d e f g h");
  // U+001F is stripped at the ends (str.strip) but not collapsed inside (regex \s).
  EXPECT_EQ(WhitespaceClean("\x1f x\x1fy \x1f"), "x\x1fy");
  EXPECT_THAT(PreTokenize("x\x1fy"), ElementsAre("x", "\x1f", "y"));
  EXPECT_EQ(WhitespaceClean("\u00a0\t lead and trail \u2003"), "lead and trail");
  EXPECT_EQ(WhitespaceClean("zero\u200bwidth"), "zero\u200bwidth") << "U+200B is not whitespace";
  EXPECT_EQ(WhitespaceClean(" \t\n"), "");
  const auto& tokenizer = SharedTokenizer();
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ(tokenizer->Encode("a\tphoto\u00a0of\n\na   cat"),
            tokenizer->Encode("a photo of a cat"));
  EXPECT_EQ(tokenizer->Encode("\u00a0\t"), std::vector<int>{});
}

TEST(TextNormalizeTest, LowerCaseIsPythonStrLower) {
  EXPECT_EQ(PythonLower("A Photo OF"), "a photo of");
  EXPECT_EQ(PythonLower("\u0130stanbul"), "i\u0307stanbul") << "one code point becomes two";
  EXPECT_EQ(PythonLower("\u03a3\u0391\u03a3 \u0391\u03a3."), "\u03c3\u03b1\u03c2 \u03b1\u03c2.")
      << "final sigma";
  EXPECT_EQ(PythonLower("\u01c5"), "\u01c6");
  EXPECT_EQ(PythonLower("\u1e9e"), "\u00df");
}

TEST(TextNormalizeTest, PreTokenizeSplitsLikeClip) {
  EXPECT_THAT(PreTokenize("a cat's toy isn't here, we'll see"),
              ElementsAre("a", "cat", "'s", "toy", "isn", "'t", "here", ",", "we", "'ll", "see"));
  EXPECT_THAT(PreTokenize("seed=42, cfg 7.5"),
              ElementsAre("seed", "=", "4", "2", ",", "cfg", "7", ".", "5"));
  EXPECT_THAT(PreTokenize("<|startoftext|>hi<|endoftext|>"),
              ElementsAre("<|startoftext|>", "hi", "<|endoftext|>"));
  EXPECT_THAT(PreTokenize("((close-up))"), ElementsAre("((", "close", "-", "up", "))"));
  EXPECT_THAT(PreTokenize("\u65e5\u672c\u8a9e \u0663\u0664"),
              ElementsAre("\u65e5\u672c\u8a9e", "\u0663", "\u0664"));
  EXPECT_THAT(PreTokenize(""), ElementsAre());
}

TEST(ByteEncoderTest, MatchesBytesToUnicode) {
  EXPECT_EQ(text::ByteToCodePoint('!'), U'!');
  EXPECT_EQ(text::ByteToCodePoint(' '), 0x120u);  // 'Ġ'
  EXPECT_EQ(text::ByteToCodePoint(0), 0x100u);
  EXPECT_EQ(text::ByteToCodePoint(0xAD), 0x143u);  // The soft hyphen is not printable.
  EXPECT_EQ(text::ByteToUtf8(' '), "\u0120");
  EXPECT_EQ(text::ByteVocabularyOrder()[0], '!');
  EXPECT_EQ(text::ByteVocabularyOrder()[188], 0) << "the 188 printable bytes come first";
  for (int b = 0; b < text::kByteCount; ++b) {
    EXPECT_EQ(text::CodePointToByte(text::ByteToCodePoint(static_cast<uint8_t>(b))), b);
  }
  EXPECT_EQ(text::CodePointToByte(U' '), -1);
  EXPECT_EQ(text::CodePointToByte(0x144), -1);
}

}  // namespace
}  // namespace likeness::testing
