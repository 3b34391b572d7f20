// Text for image grids: UTF-8 decoding, line wrapping to a width in pixels, and anti-aliased
// glyphs from FreeType blended onto an Image. Torch-free, like the rest of likeness_image.
//
// FreeType is optional at build time (worker/image/CMakeLists.txt defines
// LIKENESS_HAVE_FREETYPE when CMake finds it) and the font is optional at run time. Without
// either, TextRenderer::Create fails with a status that says which is missing, and callers that
// only decorate images (MakeImageGrid) carry on without text; FreeTypeCompiledIn() tells which
// case a test is in. The UTF-8 and wrapping functions work in every build.
//
// Font lookup (FindFontFile), first match wins:
//   1. $LIKENESS_FONT, when set and not empty; a path that is not a readable file is NOT_FOUND
//      rather than a silent fallback, so a typo shows;
//   2. the DejaVuSans.ttf CMake found at configure time under CMAKE_PREFIX_PATH (the GPU
//      machine unpacks fonts-dejavu-core under /opt/devdeps, not /usr);
//   3. kFontSearchPaths, Debian's fonts-dejavu-core path first.
#ifndef LIKENESS_WORKER_IMAGE_TEXT_RENDER_H_
#define LIKENESS_WORKER_IMAGE_TEXT_RENDER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "worker/image/image.h"

namespace likeness::image {

// Overrides the font file; any TrueType/OpenType face FreeType reads will do.
inline constexpr char kFontEnv[] = "LIKENESS_FONT";
// Debian and Ubuntu's fonts-dejavu-core. DejaVu Sans covers Latin, Greek and Cyrillic, so
// German and French labels render; CJK does not (those characters draw as the .notdef box).
inline constexpr char kDefaultFontPath[] = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
// Where other distributions put the same face: Fedora, Arch, older Red Hat, a local install.
inline constexpr const char* kFontSearchPaths[] = {
    kDefaultFontPath,
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/local/share/fonts/DejaVuSans.ttf",
};

// Glyph sizes outside this range are refused: below 4 px nothing is legible, above 512 px a
// single glyph bitmap passes 256 KiB and no label needs it.
inline constexpr int kMinFontPixels = 4;
inline constexpr int kMaxFontPixels = 512;

// Drawn where a line was cut after the last allowed line (U+2026; "..." if the font lacks it).
inline constexpr char32_t kEllipsis = U'\u2026';
inline constexpr std::u32string_view kEllipsisText(&kEllipsis, 1);
// What a malformed UTF-8 sequence decodes to, as every browser does.
inline constexpr char32_t kReplacementCharacter = U'\uFFFD';

struct Rgb {
  uint8_t r = 0;
  uint8_t g = 0;
  uint8_t b = 0;
};

// True when this build links FreeType (LIKENESS_HAVE_FREETYPE).
bool FreeTypeCompiledIn();

// The font file per the lookup order above, or NOT_FOUND naming every path tried.
absl::StatusOr<std::string> FindFontFile();

// Code points of `utf8`. A malformed sequence (a stray continuation byte, a truncated or
// overlong sequence, a surrogate, a value above U+10FFFF) becomes U+FFFD, one per maximal
// invalid prefix as WHATWG's decoder does, and decoding resumes at the byte that broke it; so a
// label from a bad file still shows everything that was valid. Never fails.
std::u32string DecodeUtf8(absl::string_view utf8);
std::string EncodeUtf8(std::u32string_view text);

// Width in pixels of one line of text.
using MeasureTextFn = std::function<int(std::u32string_view)>;

// Breaks `text` into lines no wider than `max_width` (<= 0: no limit, only '\n' breaks) as
// `measure` counts:
//   - '\n' always ends a line (blank lines between are kept, trailing ones dropped); runs of
//     spaces, tabs and '\r' separate words and are not kept at line ends;
//   - a word wider than `max_width` on its own is cut between code points, as late as fits
//     (at least one code point per line, so the result always ends);
//   - if more than `max_lines` lines result (0 = no limit), the last one kept ends in
//     `ellipsis`, with code points dropped from its end until it fits.
// Pure logic over `measure`, so it is the same with a real font and with the width estimate
// MakeImageGrid uses when there is none.
std::vector<std::u32string> WrapText(std::u32string_view text, int max_width, int max_lines,
                                     const MeasureTextFn& measure,
                                     std::u32string_view ellipsis = kEllipsisText);

// One face at one pixel size, with a cache of rendered glyphs. Not thread-safe (FreeType faces
// are not, and the cache is filled by const methods): give each thread its own renderer.
class TextRenderer {
 public:
  // Loads `font_path` ("" = FindFontFile()) at `pixel_size` pixels per em.
  //   UNIMPLEMENTED     built without FreeType,
  //   NOT_FOUND         no font file (see FindFontFile),
  //   INVALID_ARGUMENT  pixel_size outside [kMinFontPixels, kMaxFontPixels],
  //   DATA_LOSS         the file is not a font FreeType can read (its error code is included).
  static absl::StatusOr<std::unique_ptr<TextRenderer>> Create(int pixel_size,
                                                              const std::string& font_path = "");
  ~TextRenderer();
  TextRenderer(const TextRenderer&) = delete;
  TextRenderer& operator=(const TextRenderer&) = delete;

  const std::string& font_path() const;
  int pixel_size() const;
  // Pixels from the top of a line box to the baseline, and from the baseline to its bottom.
  int ascent() const;
  int descent() const;
  // Distance between baselines of consecutive lines (at least ascent + descent).
  int line_height() const;

  // Advance width of one line in pixels, kerning included. Characters the face lacks count as
  // its .notdef glyph; control characters (below U+0020, U+007F) take no space.
  int MeasureWidth(std::u32string_view text) const;
  int MeasureWidth(absl::string_view utf8) const;

  // WrapText with this face's widths and the ellipsis it can draw.
  std::vector<std::u32string> Wrap(std::u32string_view text, int max_width, int max_lines) const;

  // Draws one line with the top of its line box at y and its pen starting at x, clipped to the
  // image. Glyph coverage blends `color` over the pixels; with alpha (2 or 4 channels) the text
  // is composited "over" them. INVALID_ARGUMENT for 16-bit images or malformed shapes.
  absl::Status DrawLine(Image& image, int x, int y, std::u32string_view text, Rgb color) const;

 private:
  struct Impl;
  explicit TextRenderer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace likeness::image

#endif  // LIKENESS_WORKER_IMAGE_TEXT_RENDER_H_
