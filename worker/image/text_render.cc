#include "worker/image/text_render.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <fstream>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#ifdef LIKENESS_HAVE_FREETYPE
#include <ft2build.h>
#include FT_FREETYPE_H

#include "common/utf8.h"
#endif

namespace likeness::image {
namespace {

bool IsSeparator(char32_t c) { return c == U' ' || c == U'\t' || c == U'\r'; }

bool IsReadableFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return file.good();
}

// The longest prefix of `word` (at least one code point) no wider than `max_width`. Widths grow
// with length except for kerning, which moves them by a pixel or two, so bisection is safe.
size_t FittingPrefix(std::u32string_view word, int max_width, const MeasureTextFn& measure) {
  size_t lo = 1, hi = word.size();
  while (lo < hi) {
    const size_t mid = (lo + hi + 1) / 2;
    if (measure(word.substr(0, mid)) <= max_width) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

void WrapParagraph(std::u32string_view paragraph, int max_width, const MeasureTextFn& measure,
                   std::vector<std::u32string>& lines) {
  std::u32string line;
  size_t at = 0;
  while (at < paragraph.size()) {
    while (at < paragraph.size() && IsSeparator(paragraph[at])) ++at;
    size_t end = at;
    while (end < paragraph.size() && !IsSeparator(paragraph[end])) ++end;
    if (end == at) break;
    std::u32string_view word = paragraph.substr(at, end - at);
    at = end;
    if (!line.empty()) {
      std::u32string candidate = line + U' ';
      candidate.append(word);
      if (max_width <= 0 || measure(candidate) <= max_width) {
        line = std::move(candidate);
        continue;
      }
      lines.push_back(std::move(line));
      line.clear();
    }
    // A word on a fresh line: cut it while it is still too wide on its own.
    while (max_width > 0 && word.size() > 1 && measure(word) > max_width) {
      const size_t cut = FittingPrefix(word, max_width, measure);
      lines.emplace_back(word.substr(0, cut));
      word.remove_prefix(cut);
    }
    line.assign(word);
  }
  lines.push_back(std::move(line));
}

// Drops trailing separators of `line`.
void TrimEnd(std::u32string& line) {
  while (!line.empty() && IsSeparator(line.back())) line.pop_back();
}

// Shortens `line` from its end until `line + ellipsis` fits, then appends the ellipsis.
std::u32string WithEllipsis(std::u32string line, int max_width, const MeasureTextFn& measure,
                            std::u32string_view ellipsis) {
  for (;;) {
    TrimEnd(line);
    std::u32string candidate = line;
    candidate.append(ellipsis);
    if (line.empty() || max_width <= 0 || measure(candidate) <= max_width) return candidate;
    line.pop_back();
  }
}

// Validates what DrawLine writes into.
absl::Status CheckDrawable(const Image& image) {
  if (image.bit_depth != 8 || image.channels < 1 || image.channels > 4 || image.width < 0 ||
      image.height < 0 || image.pixels.size() != image.SizeBytes()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "text is drawn on 8-bit images of 1-4 channels; got ", image.width, "x", image.height, ", ",
        image.channels, " channels, ", image.bit_depth, " bit, ", image.pixels.size(), " bytes"));
  }
  return absl::OkStatus();
}

}  // namespace

std::u32string DecodeUtf8(absl::string_view utf8) {
  std::u32string out;
  out.reserve(utf8.size());
  size_t i = 0;
  const size_t n = utf8.size();
  while (i < n) {
    const auto b0 = static_cast<uint8_t>(utf8[i]);
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    }
    // Sequence length and the valid range of the second byte per lead byte (Unicode table
    // 3-7): the narrowed ranges rule out overlong forms, surrogates and values past U+10FFFF.
    int length = 0;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      length = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      length = 3;
      if (b0 == 0xE0) lo = 0xA0;
      if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      length = 4;
      if (b0 == 0xF0) lo = 0x90;
      if (b0 == 0xF4) hi = 0x8F;
    }
    if (length == 0) {
      out.push_back(kReplacementCharacter);
      ++i;
      continue;
    }
    char32_t code_point = b0 & (0xFF >> (length + 1));
    size_t j = i + 1;
    bool valid = true;
    for (int k = 1; k < length; ++k, ++j) {
      const auto b = j < n ? static_cast<uint8_t>(utf8[j]) : 0;
      const uint8_t min = k == 1 ? lo : 0x80, max = k == 1 ? hi : 0xBF;
      if (j >= n || b < min || b > max) {
        valid = false;
        break;
      }
      code_point = (code_point << 6) | (b & 0x3F);
    }
    // WHATWG's rule: a broken sequence becomes one U+FFFD covering the bytes that were valid
    // so far, and decoding resumes at the byte that broke it.
    out.push_back(valid ? code_point : kReplacementCharacter);
    i = j;
  }
  return out;
}

std::string EncodeUtf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) AppendUtf8(c, out);
  return out;
}

std::vector<std::u32string> WrapText(std::u32string_view text, int max_width, int max_lines,
                                     const MeasureTextFn& measure, std::u32string_view ellipsis) {
  std::vector<std::u32string> lines;
  size_t start = 0;
  for (;;) {
    const size_t newline = text.find(U'\n', start);
    WrapParagraph(
        text.substr(start, newline == std::u32string_view::npos ? text.npos : newline - start),
        max_width, measure, lines);
    if (newline == std::u32string_view::npos) break;
    start = newline + 1;
  }
  // A trailing newline (or a blank label) would otherwise add empty lines to a header.
  while (lines.size() > 1 && lines.back().empty()) lines.pop_back();
  if (max_lines > 0 && static_cast<int>(lines.size()) > max_lines) {
    lines.resize(max_lines);
    lines.back() = WithEllipsis(std::move(lines.back()), max_width, measure, ellipsis);
  }
  return lines;
}

absl::StatusOr<std::string> FindFontFile() {
  if (const char* env = std::getenv(kFontEnv); env != nullptr && *env != '\0') {
    if (IsReadableFile(env)) return std::string(env);
    return absl::NotFoundError(
        absl::StrCat(kFontEnv, "=", env, " is not a readable file; point it at a .ttf or .otf"));
  }
  std::vector<std::string> tried;
#ifdef LIKENESS_BUILD_FONT_FILE
  tried.push_back(LIKENESS_BUILD_FONT_FILE);
#endif
  for (const char* path : kFontSearchPaths) tried.push_back(path);
  for (const std::string& path : tried) {
    if (IsReadableFile(path)) return path;
  }
  return absl::NotFoundError(absl::StrCat("no font found (tried ", absl::StrJoin(tried, ", "),
                                          "); install fonts-dejavu-core or set ", kFontEnv));
}

#ifdef LIKENESS_HAVE_FREETYPE

namespace {

// FreeType's own messages, built the way fterrors.h documents; Debian's build leaves
// FT_Error_String disabled.
const char* FreeTypeErrorText(FT_Error error) {
  // clang-format off
#undef FTERRORS_H_
#define FT_ERRORDEF(e, v, s) case e: return s;
#define FT_ERROR_START_LIST switch (error) {
#define FT_ERROR_END_LIST default: return nullptr; }
  // clang-format on
#include FT_ERRORS_H
}

std::string FreeTypeMessage(FT_Error error) {
  const char* text = FreeTypeErrorText(error);
  return text != nullptr ? absl::StrCat(text, " (FreeType error ", error, ")")
                         : absl::StrCat("FreeType error ", error);
}

// Rec. 601 luma weights in thousandths, the ones Pillow's "L" conversion uses: text drawn on a
// gray image gets the gray a viewer would see for the requested colour.
constexpr int kLumaR = 299;
constexpr int kLumaG = 587;
constexpr int kLumaB = 114;

// Control characters have no ink and no advance; '\n' is handled by WrapText, not here.
bool IsControl(char32_t c) { return c < 0x20 || c == 0x7F; }

// Blends `color` at `coverage` (0-255) over the pixel at (x, y), which the caller has clipped.
void BlendPixel(Image& image, int x, int y, Rgb color, int coverage) {
  if (coverage <= 0) return;
  uint8_t* pixel = &image.pixels[static_cast<size_t>(y) * image.RowBytes() +
                                 static_cast<size_t>(x) * image.channels];
  const int color_channels = image.channels >= 3 ? 3 : 1;
  const int target[3] = {
      color_channels == 3 ? color.r
                          : (color.r * kLumaR + color.g * kLumaG + color.b * kLumaB + 500) / 1000,
      color.g, color.b};
  const float a = static_cast<float>(coverage) / 255.0f;
  if (!image.HasAlpha()) {
    for (int c = 0; c < color_channels; ++c) {
      pixel[c] = static_cast<uint8_t>(std::lround(pixel[c] + (target[c] - pixel[c]) * a));
    }
    return;
  }
  // Straight-alpha "over": the text is the source, the pixel the destination.
  uint8_t& alpha_byte = pixel[image.channels - 1];
  const float dst_a = static_cast<float>(alpha_byte) / 255.0f;
  const float out_a = a + dst_a * (1.0f - a);
  for (int c = 0; c < color_channels; ++c) {
    const float value = (target[c] * a + pixel[c] * dst_a * (1.0f - a)) / out_a;
    pixel[c] = static_cast<uint8_t>(std::lround(std::clamp(value, 0.0f, 255.0f)));
  }
  alpha_byte = static_cast<uint8_t>(std::lround(out_a * 255.0f));
}

// 26.6 fixed point, FreeType's unit for metrics and advances.
constexpr int kFixedOne = 64;
int FixedCeil(FT_Pos value) { return static_cast<int>((value + kFixedOne - 1) / kFixedOne); }
int FixedRound(FT_Pos value) {
  return static_cast<int>(std::floor((value + kFixedOne / 2) / static_cast<double>(kFixedOne)));
}

struct Glyph {
  FT_Pos advance = 0;  // 26.6
  int left = 0;        // bitmap's left edge from the pen
  int top = 0;         // bitmap's top edge above the baseline
  int width = 0;
  int rows = 0;
  std::vector<uint8_t> coverage;  // width x rows, 0-255
};

}  // namespace

struct TextRenderer::Impl {
  FT_Library library = nullptr;
  FT_Face face = nullptr;
  std::string path;
  int pixel_size = 0;
  int ascent = 0;
  int descent = 0;
  int line_height = 0;
  std::u32string ellipsis;
  mutable std::unordered_map<FT_UInt, Glyph> glyphs;

  ~Impl() {
    if (face != nullptr) FT_Done_Face(face);
    if (library != nullptr) FT_Done_FreeType(library);
  }

  // Light hinting: snaps to the pixel grid vertically only, which keeps DejaVu's shapes and
  // widths (full hinting distorts them at label sizes); FT_LOAD_RENDER gives 8-bit coverage.
  static constexpr FT_Int32 kLoadFlags = FT_LOAD_RENDER | FT_LOAD_TARGET_LIGHT;

  // The rendered glyph, or an empty one if FreeType refuses it (a broken glyph in an otherwise
  // good font draws nothing rather than failing a whole grid).
  const Glyph& GetGlyph(FT_UInt index) const {
    auto found = glyphs.find(index);
    if (found != glyphs.end()) return found->second;
    Glyph glyph;
    if (FT_Load_Glyph(face, index, kLoadFlags) == 0) {
      const FT_GlyphSlot slot = face->glyph;
      const FT_Bitmap& bitmap = slot->bitmap;
      glyph.advance = slot->advance.x;
      glyph.left = slot->bitmap_left;
      glyph.top = slot->bitmap_top;
      if (bitmap.pixel_mode == FT_PIXEL_MODE_GRAY || bitmap.pixel_mode == FT_PIXEL_MODE_MONO) {
        glyph.width = static_cast<int>(bitmap.width);
        glyph.rows = static_cast<int>(bitmap.rows);
        glyph.coverage.resize(static_cast<size_t>(glyph.width) * glyph.rows);
        const int stride = std::abs(bitmap.pitch);
        for (int y = 0; y < glyph.rows; ++y) {
          // A negative pitch means the rows are stored bottom-up.
          const uint8_t* row =
              bitmap.buffer +
              static_cast<ptrdiff_t>(bitmap.pitch > 0 ? y : glyph.rows - 1 - y) * stride;
          for (int x = 0; x < glyph.width; ++x) {
            const uint8_t value = bitmap.pixel_mode == FT_PIXEL_MODE_GRAY
                                      ? row[x]
                                      : ((row[x >> 3] >> (7 - (x & 7))) & 1) * 255;
            glyph.coverage[static_cast<size_t>(y) * glyph.width + x] = value;
          }
        }
      }
    }
    return glyphs.emplace(index, std::move(glyph)).first->second;
  }

  // Calls visit(pen_x_pixels, glyph) for every drawable code point; returns the end pen (26.6).
  template <typename Visit>
  FT_Pos Layout(std::u32string_view text, Visit&& visit) const {
    const bool kerning = FT_HAS_KERNING(face);
    FT_Pos pen = 0;
    FT_UInt previous = 0;
    for (const char32_t c : text) {
      if (IsControl(c)) continue;
      // Index 0 is the face's .notdef glyph: drawing it marks a character the font lacks.
      const FT_UInt index = FT_Get_Char_Index(face, c);
      if (kerning && previous != 0 && index != 0) {
        FT_Vector delta;
        if (FT_Get_Kerning(face, previous, index, FT_KERNING_DEFAULT, &delta) == 0) {
          pen += delta.x;
        }
      }
      const Glyph& glyph = GetGlyph(index);
      visit(FixedRound(pen), glyph);
      pen += glyph.advance;
      previous = index;
    }
    return pen;
  }
};

absl::StatusOr<std::unique_ptr<TextRenderer>> TextRenderer::Create(int pixel_size,
                                                                   const std::string& font_path) {
  if (pixel_size < kMinFontPixels || pixel_size > kMaxFontPixels) {
    return absl::InvalidArgumentError(absl::StrCat("font size ", pixel_size, " px is outside [",
                                                   kMinFontPixels, ", ", kMaxFontPixels, "]"));
  }
  auto impl = std::make_unique<Impl>();
  if (font_path.empty()) {
    absl::StatusOr<std::string> found = FindFontFile();
    if (!found.ok()) return found.status();
    impl->path = *std::move(found);
  } else {
    if (!IsReadableFile(font_path)) {
      return absl::NotFoundError(absl::StrCat("font ", font_path, " is not a readable file"));
    }
    impl->path = font_path;
  }
  if (const FT_Error error = FT_Init_FreeType(&impl->library); error != 0) {
    impl->library = nullptr;
    return absl::InternalError(absl::StrCat("FT_Init_FreeType: ", FreeTypeMessage(error)));
  }
  if (const FT_Error error = FT_New_Face(impl->library, impl->path.c_str(), 0, &impl->face);
      error != 0) {
    impl->face = nullptr;
    return absl::DataLossError(
        absl::StrCat("font ", impl->path, " cannot be read: ", FreeTypeMessage(error)));
  }
  if (const FT_Error error = FT_Set_Pixel_Sizes(impl->face, 0, pixel_size); error != 0) {
    return absl::DataLossError(absl::StrCat("font ", impl->path, " has no ", pixel_size,
                                            " px size: ", FreeTypeMessage(error)));
  }
  const FT_Size_Metrics& metrics = impl->face->size->metrics;
  impl->pixel_size = pixel_size;
  impl->ascent = FixedCeil(metrics.ascender);
  impl->descent = FixedCeil(-metrics.descender);
  impl->line_height = std::max(FixedCeil(metrics.height), impl->ascent + impl->descent);
  impl->ellipsis = FT_Get_Char_Index(impl->face, kEllipsis) != 0 ? std::u32string(1, kEllipsis)
                                                                 : std::u32string(U"...");
  return std::unique_ptr<TextRenderer>(new TextRenderer(std::move(impl)));
}

int TextRenderer::MeasureWidth(std::u32string_view text) const {
  return FixedRound(impl_->Layout(text, [](int, const Glyph&) {}));
}

std::vector<std::u32string> TextRenderer::Wrap(std::u32string_view text, int max_width,
                                               int max_lines) const {
  return WrapText(
      text, max_width, max_lines, [this](std::u32string_view line) { return MeasureWidth(line); },
      impl_->ellipsis);
}

absl::Status TextRenderer::DrawLine(Image& image, int x, int y, std::u32string_view text,
                                    Rgb color) const {
  if (absl::Status status = CheckDrawable(image); !status.ok()) return status;
  const int baseline = y + impl_->ascent;
  impl_->Layout(text, [&](int pen_x, const Glyph& glyph) {
    const int left = x + pen_x + glyph.left, top = baseline - glyph.top;
    const int x0 = std::max(0, -left), x1 = std::min(glyph.width, image.width - left);
    const int y0 = std::max(0, -top), y1 = std::min(glyph.rows, image.height - top);
    for (int gy = y0; gy < y1; ++gy) {
      for (int gx = x0; gx < x1; ++gx) {
        BlendPixel(image, left + gx, top + gy, color,
                   glyph.coverage[static_cast<size_t>(gy) * glyph.width + gx]);
      }
    }
  });
  return absl::OkStatus();
}

bool FreeTypeCompiledIn() { return true; }

#else  // !LIKENESS_HAVE_FREETYPE

// No renderer can be made without FreeType, so the members below are never reached; they exist
// so callers compile and link the same way in both builds.
struct TextRenderer::Impl {
  std::string path;
  int pixel_size = 0;
  int ascent = 0;
  int descent = 0;
  int line_height = 0;
};

absl::StatusOr<std::unique_ptr<TextRenderer>> TextRenderer::Create(int, const std::string&) {
  return absl::UnimplementedError(
      "text rendering is off: Likeness was built without FreeType (install libfreetype-dev "
      "and reconfigure)");
}

int TextRenderer::MeasureWidth(std::u32string_view) const { return 0; }

std::vector<std::u32string> TextRenderer::Wrap(std::u32string_view text, int, int) const {
  return {std::u32string(text)};
}

absl::Status TextRenderer::DrawLine(Image& image, int, int, std::u32string_view, Rgb) const {
  return CheckDrawable(image);
}

bool FreeTypeCompiledIn() { return false; }

#endif  // LIKENESS_HAVE_FREETYPE

TextRenderer::TextRenderer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TextRenderer::~TextRenderer() = default;

const std::string& TextRenderer::font_path() const { return impl_->path; }
int TextRenderer::pixel_size() const { return impl_->pixel_size; }
int TextRenderer::ascent() const { return impl_->ascent; }
int TextRenderer::descent() const { return impl_->descent; }
int TextRenderer::line_height() const { return impl_->line_height; }

int TextRenderer::MeasureWidth(absl::string_view utf8) const {
  return MeasureWidth(DecodeUtf8(utf8));
}

}  // namespace likeness::image
