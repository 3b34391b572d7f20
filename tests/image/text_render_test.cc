// Text for grids: UTF-8 decoding and wrapping hold in every build; glyph drawing needs FreeType
// and a font and skips, saying which is missing, without them.
#include "worker/image/text_render.h"

#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_data.h"

namespace likeness::image {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// 10 px per code point: wrapping results can be worked out by hand.
int FixedWidth(std::u32string_view text) { return static_cast<int>(text.size()) * 10; }

std::vector<std::string> Wrapped(const std::string& utf8, int max_width, int max_lines = 0,
                                 const std::u32string& ellipsis = U"\u2026") {
  std::vector<std::string> out;
  for (const auto& line : WrapText(DecodeUtf8(utf8), max_width, max_lines, FixedWidth, ellipsis)) {
    out.push_back(EncodeUtf8(line));
  }
  return out;
}

// Sets an environment variable for one scope and restores what was there.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(Utf8Test, DecodesEveryLength) {
  EXPECT_EQ(DecodeUtf8("Schöne Grüße"), U"Schöne Grüße");
  EXPECT_EQ(DecodeUtf8("日本語"), U"日本語");
  EXPECT_EQ(DecodeUtf8("\xF0\x9F\x98\x80"), U"\U0001F600");
  EXPECT_EQ(DecodeUtf8(""), U"");
  for (const char* text : {"Schöne Grüße", "日本語 and \xF0\x9F\x98\x80", "plain"}) {
    EXPECT_EQ(EncodeUtf8(DecodeUtf8(text)), text);
  }
}

TEST(Utf8Test, MalformedBytesBecomeReplacementCharacters) {
  const std::u32string fffd(1, kReplacementCharacter);
  EXPECT_EQ(DecodeUtf8(std::string("a\xFF") + "b"), U"a" + fffd + U"b");
  EXPECT_EQ(DecodeUtf8("\x80"), fffd);            // lone continuation byte
  EXPECT_EQ(DecodeUtf8("ab\xC3"), U"ab" + fffd);  // truncated at the end
  EXPECT_EQ(DecodeUtf8(std::string("\xE6\x97") + "x"),
            fffd + U"x");                                     // truncated: one U+FFFD, then x
  EXPECT_EQ(DecodeUtf8("\xC0\xAF"), fffd + fffd);             // overlong '/'
  EXPECT_EQ(DecodeUtf8("\xE0\x80\x80"), fffd + fffd + fffd);  // overlong NUL
  EXPECT_EQ(DecodeUtf8("\xED\xA0\x80"), fffd + fffd + fffd);  // a surrogate
  EXPECT_EQ(DecodeUtf8("\xF4\x90\x80\x80"), std::u32string(4, kReplacementCharacter));
  EXPECT_EQ(EncodeUtf8(std::u32string(1, char32_t{0xD800})), "\xEF\xBF\xBD");
}

TEST(WrapTextTest, BreaksAtSpacesGreedily) {
  EXPECT_THAT(Wrapped("aaa bbb ccc", 70), ElementsAre("aaa bbb", "ccc"));
  EXPECT_THAT(Wrapped("aaa bbb ccc", 110), ElementsAre("aaa bbb ccc"));
  EXPECT_THAT(Wrapped("  aaa    bbb  ", 200), ElementsAre("aaa bbb"));
  EXPECT_THAT(Wrapped("aaa\tbbb", 30), ElementsAre("aaa", "bbb"));
  EXPECT_THAT(Wrapped("", 50), ElementsAre(""));
}

TEST(WrapTextTest, NewlinesAlwaysBreak) {
  EXPECT_THAT(Wrapped("steps=20\nlr=1e-4", 500), ElementsAre("steps=20", "lr=1e-4"));
  EXPECT_THAT(Wrapped("a\n\nb", 500), ElementsAre("a", "", "b"));
  EXPECT_THAT(Wrapped("a\n", 500), ElementsAre("a"));
  EXPECT_THAT(Wrapped("a\r\nb", 500), ElementsAre("a", "b"));
  // No width limit: only newlines break.
  EXPECT_THAT(Wrapped("a very long line\nb", 0), ElementsAre("a very long line", "b"));
}

TEST(WrapTextTest, HardBreaksWordsWiderThanTheLine) {
  EXPECT_THAT(Wrapped("abcdefghijklmnop", 50), ElementsAre("abcde", "fghij", "klmno", "p"));
  // The long word starts a fresh line rather than filling the short one.
  EXPECT_THAT(Wrapped("ab abcdefghij cd", 50), ElementsAre("ab", "abcde", "fghij", "cd"));
  // Narrower than one character: one code point a line, and it still ends.
  EXPECT_THAT(Wrapped("abc", 5), ElementsAre("a", "b", "c"));
  // Code points, not bytes: "ü" is never split.
  EXPECT_THAT(Wrapped("üüüü", 20), ElementsAre("üü", "üü"));
}

TEST(WrapTextTest, EllipsisAfterMaxLines) {
  EXPECT_THAT(Wrapped("one two three four five", 90), ElementsAre("one two", "three", "four five"));
  EXPECT_THAT(Wrapped("one two three four five", 90, 2), ElementsAre("one two", "three…"));
  EXPECT_THAT(Wrapped("one two three four five", 90, 1), ElementsAre("one two…"));
  // "one two…" is 80 px; at 70 a character goes, and the space before the ellipsis too.
  EXPECT_THAT(Wrapped("one two three", 70, 1), ElementsAre("one tw…"));
  EXPECT_THAT(Wrapped("one t three", 50, 1), ElementsAre("one…"));
  EXPECT_THAT(Wrapped("one two three", 70, 1, U"..."), ElementsAre("one..."));
  EXPECT_THAT(Wrapped("short", 90, 1), ElementsAre("short"));
}

TEST(WrapTextTest, LinesFitAndKeepEveryWordOnRandomText) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::u32string text;
    const int length = std::uniform_int_distribution<int>(0, 80)(rng);
    for (int i = 0; i < length; ++i) {
      const int pick = std::uniform_int_distribution<int>(0, 9)(rng);
      text.push_back(pick < 2 ? U' ' : pick == 2 ? U'\u00E4' : static_cast<char32_t>(U'a' + pick));
    }
    const int max_width = std::uniform_int_distribution<int>(10, 150)(rng);
    const auto lines = WrapText(text, max_width, 0, FixedWidth);
    std::u32string joined, expected;
    for (const auto& line : lines) {
      EXPECT_LE(FixedWidth(line), max_width) << EncodeUtf8(text) << " at " << max_width;
      for (char32_t c : line) joined += c == U' ' ? U"" : std::u32string(1, c);
    }
    for (char32_t c : text) expected += c == U' ' ? U"" : std::u32string(1, c);
    EXPECT_EQ(joined, expected) << EncodeUtf8(text);
  }
}

TEST(FontLookupTest, EnvironmentVariableWinsAndATypoIsAnError) {
  {
    ScopedEnv env(kFontEnv, "/nonexistent/NoSuchFont.ttf");
    absl::StatusOr<std::string> font = FindFontFile();
    EXPECT_EQ(font.status().code(), absl::StatusCode::kNotFound);
    EXPECT_THAT(font.status().message(), HasSubstr("LIKENESS_FONT=/nonexistent/NoSuchFont.ttf"));
  }
  const std::string dir = testing::MakeTestTempDir("font_lookup");
  const std::string path = dir + "/custom.ttf";
  std::ofstream(path) << "not really a font";
  ScopedEnv env(kFontEnv, path);
  absl::StatusOr<std::string> font = FindFontFile();
  ASSERT_TRUE(font.ok()) << font.status();
  EXPECT_EQ(*font, path);
}

// A renderer at `pixel_size`, or the reason there is none (no FreeType, no font).
absl::StatusOr<std::unique_ptr<TextRenderer>> RendererOrReason(int pixel_size) {
  return TextRenderer::Create(pixel_size);
}

#define LIKENESS_RENDERER_OR_SKIP(var, size)                                           \
  absl::StatusOr<std::unique_ptr<TextRenderer>> var##_or = RendererOrReason(size);     \
  if (!var##_or.ok()) GTEST_SKIP() << "no text rendering here: " << var##_or.status(); \
  const TextRenderer& var = **var##_or

int CountInk(const Image& image, uint8_t background) {
  int ink = 0;
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      for (int c = 0; c < image.channels; ++c) {
        if (image.Sample(x, y, c) != background) {
          ++ink;
          break;
        }
      }
    }
  }
  return ink;
}

TEST(TextRendererTest, WithoutFreeTypeCreateSaysSo) {
  if (FreeTypeCompiledIn()) GTEST_SKIP() << "built with FreeType";
  absl::StatusOr<std::unique_ptr<TextRenderer>> renderer = TextRenderer::Create(16);
  EXPECT_EQ(renderer.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(renderer.status().message(), HasSubstr("FreeType"));
}

TEST(TextRendererTest, RefusesBadSizesAndFiles) {
  if (!FreeTypeCompiledIn()) GTEST_SKIP() << "built without FreeType";
  EXPECT_EQ(TextRenderer::Create(kMinFontPixels - 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TextRenderer::Create(kMaxFontPixels + 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TextRenderer::Create(16, "/nonexistent/font.ttf").status().code(),
            absl::StatusCode::kNotFound);
  const std::string path = testing::MakeTestTempDir("bad_font") + "/garbage.ttf";
  std::ofstream(path) << "this is not a TrueType file at all";
  absl::StatusOr<std::unique_ptr<TextRenderer>> bad = TextRenderer::Create(16, path);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(bad.status().message(), HasSubstr("garbage.ttf"));
  EXPECT_THAT(bad.status().message(), HasSubstr("unknown file format"));
}

TEST(TextRendererTest, MetricsAndWidths) {
  LIKENESS_RENDERER_OR_SKIP(font, 20);
  EXPECT_EQ(font.pixel_size(), 20);
  EXPECT_GT(font.ascent(), 10);
  EXPECT_GT(font.descent(), 0);
  EXPECT_GE(font.line_height(), font.ascent() + font.descent());
  EXPECT_LE(font.line_height(), 2 * 20);
  EXPECT_EQ(font.MeasureWidth(U""), 0);
  EXPECT_LT(font.MeasureWidth(U"iiii"), font.MeasureWidth(U"WWWW"));
  EXPECT_LT(font.MeasureWidth(U"lr"), font.MeasureWidth(U"lr=1e-4"));
  EXPECT_EQ(font.MeasureWidth(absl::string_view("Grüße")), font.MeasureWidth(U"Grüße"));
  // Control characters take no space.
  EXPECT_EQ(font.MeasureWidth(U"a\tb"), font.MeasureWidth(U"ab"));
  // Characters DejaVu lacks all draw as .notdef, so they share its width.
  EXPECT_EQ(font.MeasureWidth(U"日"), font.MeasureWidth(U"\uE000"));
  EXPECT_GT(font.MeasureWidth(U"日"), 0);
}

TEST(TextRendererTest, WrapsToRealWidths) {
  LIKENESS_RENDERER_OR_SKIP(font, 18);
  const std::u32string text =
      U"a photo of sks dog wearing a superhero costume, flying over Grüße city, "
      U"Pneumonoultramicroscopicsilicovolcanoconiosis";
  for (const int max_width : {60, 120, 300}) {
    const auto lines = font.Wrap(text, max_width, 0);
    EXPECT_GT(lines.size(), 1u);
    for (const auto& line : lines) EXPECT_LE(font.MeasureWidth(line), max_width);
  }
  const auto cut = font.Wrap(text, 120, 2);
  ASSERT_EQ(cut.size(), 2u);
  EXPECT_EQ(cut[1].back(), kEllipsis);
  EXPECT_LE(font.MeasureWidth(cut[1]), 120);
}

TEST(TextRendererTest, DrawsInkWhereTheTextIs) {
  LIKENESS_RENDERER_OR_SKIP(font, 24);
  Image image = MakeImage(200, 60, 3);
  std::fill(image.pixels.begin(), image.pixels.end(), 255);
  const int x = 10, y = 12;
  ASSERT_TRUE(font.DrawLine(image, x, y, U"Hello", {0, 0, 0}).ok());
  const int width = font.MeasureWidth(U"Hello");
  int ink = 0, darkest = 255;
  for (int py = 0; py < image.height; ++py) {
    for (int px = 0; px < image.width; ++px) {
      const int value = image.Sample(px, py, 0);
      if (value == 255) continue;
      ++ink;
      darkest = std::min(darkest, value);
      // Anti-aliased gray: every channel the same for black text on white.
      EXPECT_EQ(image.Sample(px, py, 1), value);
      EXPECT_GE(px, x - 2);
      EXPECT_LE(px, x + width + 2);
      EXPECT_GE(py, y);
      EXPECT_LT(py, y + font.line_height());
    }
  }
  EXPECT_GT(ink, 100);
  EXPECT_LT(darkest, 32);  // stems are solid black
}

TEST(TextRendererTest, ClipsAtTheImageEdge) {
  LIKENESS_RENDERER_OR_SKIP(font, 24);
  Image image = MakeImage(30, 10, 3);
  ASSERT_TRUE(font.DrawLine(image, -15, -8, U"Clipped text", {255, 255, 255}).ok());
  ASSERT_TRUE(font.DrawLine(image, 25, 5, U"WWW", {255, 255, 255}).ok());
  EXPECT_GT(CountInk(image, 0), 0);
}

TEST(TextRendererTest, CompositesOverAlphaAndGray) {
  LIKENESS_RENDERER_OR_SKIP(font, 24);
  Image rgba = MakeImage(120, 40, 4);  // transparent black
  ASSERT_TRUE(font.DrawLine(rgba, 4, 4, U"Alpha", {200, 40, 10}).ok());
  int inked = 0;
  for (int y = 0; y < rgba.height; ++y) {
    for (int x = 0; x < rgba.width; ++x) {
      if (rgba.Sample(x, y, 3) == 0) continue;
      ++inked;
      // Over a transparent pixel, the colour is the text's whatever its coverage.
      EXPECT_EQ(rgba.Sample(x, y, 0), 200u);
      EXPECT_EQ(rgba.Sample(x, y, 1), 40u);
      EXPECT_EQ(rgba.Sample(x, y, 2), 10u);
    }
  }
  EXPECT_GT(inked, 50);

  Image gray = MakeImage(120, 40, 1);
  ASSERT_TRUE(font.DrawLine(gray, 4, 4, U"Gray", {255, 255, 255}).ok());
  EXPECT_GT(CountInk(gray, 0), 50);

  Image deep = MakeImage(10, 10, 3, 16);
  EXPECT_EQ(font.DrawLine(deep, 0, 0, U"x", {0, 0, 0}).code(), absl::StatusCode::kInvalidArgument);
}

TEST(TextRendererTest, UmlautsHaveGlyphsAndCjkFallsBackToNotdef) {
  LIKENESS_RENDERER_OR_SKIP(font, 32);
  auto draw = [&](const std::u32string& text) {
    Image image = MakeImage(240, 50, 3);
    EXPECT_TRUE(font.DrawLine(image, 2, 2, text, {255, 255, 255}).ok());
    return image;
  };
  // "ö" is "o" plus its dots: more ink, same advance.
  EXPECT_GT(CountInk(draw(U"ö"), 0), CountInk(draw(U"o"), 0));
  EXPECT_EQ(font.MeasureWidth(U"ö"), font.MeasureWidth(U"o"));
  EXPECT_GT(CountInk(draw(DecodeUtf8("Schöne Grüße")), 0), 200);
  // Characters the face lacks draw its .notdef box, all alike, and nothing crashes.
  EXPECT_EQ(draw(U"日").pixels, draw(U"語").pixels);
  EXPECT_GT(CountInk(draw(U"日本語"), 0), 0);
  EXPECT_GT(CountInk(draw(DecodeUtf8("bad \xFF\xFE bytes")), 0), 0);
}

}  // namespace
}  // namespace likeness::image
