// Labelled image grids ("contact sheets", AUTOMATIC1111's X/Y plot) for comparing generations
// across a sweep: one row per value of one axis (seed, learning rate), one column per value of
// another (prompt, step count), with the values as row and column headers and an optional title.
//
// Layout, outside in (every gap is GridOptions::padding):
//
//   +--------------------------------------------------+
//   |                      title                       |   wrapped to the grid's width
//   |            col label 0    col label 1   ...      |   wrapped to the cell width,
//   |  row label 0  [cell 0,0]   [cell 0,1]   ...      |   bottom-aligned over the cells
//   |  row label 1  [cell 1,0]   [cell 1,1]   ...      |
//   +--------------------------------------------------+
//
// Cells may differ in size: each is scaled (antialiased triangle filter, Pillow's "bilinear")
// to fit its slot keeping its aspect ratio, centred on the background. A cell that already fits
// its slot exactly is copied byte for byte. Alpha is composited over the background.
//
// Text is optional. Without FreeType in the build, or without a font at run time, the grid is
// still made, the same size, with its header space left blank, and GridResult::warnings says
// why. That is never an error: a report should not lose its images over a missing font.
//
// Thread-safe: each call loads its own face, so grids may be made on several threads at once.
#ifndef LIKENESS_WORKER_IMAGE_IMAGE_GRID_H_
#define LIKENESS_WORKER_IMAGE_IMAGE_GRID_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/image/image.h"
#include "worker/image/text_render.h"

namespace likeness::image {

// Pixels between cells, around the edge and between headers and cells.
inline constexpr int kDefaultGridPadding = 8;
inline constexpr int kMaxGridPadding = 4096;
// Label size when GridOptions::font_pixels is 0: (cell width + cell height) / 25, AUTOMATIC1111's
// rule (81 px on SDXL's 1024^2 cells, still legible when a 4x4 grid is shrunk to fit a screen),
// clamped so thumbnails keep readable labels and huge cells do not get banners.
inline constexpr int kAutoFontDivisor = 25;
inline constexpr int kMinAutoFontPixels = 12;
inline constexpr int kMaxAutoFontPixels = 96;
// The title is this much larger than the labels (in quarters: 5/4), when not set.
inline constexpr int kTitleFontQuarters = 5;
// Column labels wrap to at most this many lines (then "…"); the title to kDefaultTitleLines.
// Row labels use as many lines as fit beside their row.
inline constexpr int kDefaultMaxLabelLines = 3;
inline constexpr int kDefaultTitleLines = 2;
inline constexpr int kMaxLabelLines = 64;
// Auto row-label column: as wide as the widest label, but no wider than half a cell or this many
// ems, whichever is more, so long prompts wrap instead of pushing the cells off screen.
inline constexpr int kRowLabelMinEms = 8;
// Cell size when every cell is empty and no size is given (all jobs failed): a visible grid of
// placeholders is more useful in a report than an error.
inline constexpr int kEmptyGridCellSize = 256;
// The output is refused above this many pixels: 128 Mi pixels is 384 MiB of RGB. A 10x10 grid of
// SDXL's 1024^2 images with headers is about 106 Mi; far larger will not open in a viewer.
inline constexpr int64_t kMaxGridPixels = int64_t{128} << 20;

inline constexpr Rgb kDefaultGridBackground = {255, 255, 255};
inline constexpr Rgb kDefaultGridLabelColor = {0, 0, 0};
// An empty cell (a failed job): a light gray slot with a darker cross.
inline constexpr Rgb kDefaultEmptyCellColor = {232, 232, 232};
inline constexpr Rgb kDefaultEmptyMarkColor = {168, 168, 168};

struct GridOptions {
  // Slot size of every cell. Both 0 (the default): the largest cell's width and height. Set
  // both or neither.
  int cell_width = 0;
  int cell_height = 0;
  int padding = kDefaultGridPadding;
  // Label size in pixels; 0 = from the cell size (kAutoFontDivisor). Else in
  // [kMinFontPixels, kMaxFontPixels].
  int font_pixels = 0;
  // Title size in pixels; 0 = font_pixels * kTitleFontQuarters / 4.
  int title_font_pixels = 0;
  int max_label_lines = kDefaultMaxLabelLines;
  int title_lines = kDefaultTitleLines;
  // Width of the row-label column; 0 = auto (kRowLabelMinEms).
  int row_label_width = 0;
  Rgb background = kDefaultGridBackground;
  Rgb label_color = kDefaultGridLabelColor;
  Rgb empty_cell_color = kDefaultEmptyCellColor;
  Rgb empty_mark_color = kDefaultEmptyMarkColor;
  // "" = FindFontFile() (text_render.h: $LIKENESS_FONT, then DejaVu Sans).
  std::string font_path;
};

struct GridCell {
  // Not owned; must outlive MakeImageGrid. nullptr or a 0x0 image: an empty cell, drawn as a
  // placeholder (a failed or missing job). Any Image shape: 1-4 channels, 8 or 16 bit.
  const Image* image = nullptr;
  // Text drawn under the placeholder of an empty cell, e.g. "failed: CUDA out of memory".
  // Ignored for cells with an image.
  std::string note;
  // An empty cell left as plain background, no placeholder: pads the last row of a contact
  // sheet whose image count is not a multiple of the columns.
  bool blank = false;
};

struct GridSpec {
  std::vector<GridCell> cells;  // row-major; rows = cells.size() / columns
  int columns = 0;              // 0: column_labels.size()
  // None, or exactly one per row / column. UTF-8; '\n' forces a line break.
  std::vector<std::string> row_labels;
  std::vector<std::string> column_labels;
  std::string title;  // "" = no title line
};

struct GridRect {
  int x = 0;
  int y = 0;
  int width = 0;
  int height = 0;
};

struct GridResult {
  Image image;  // 8-bit RGB
  // The slot of each cell in `image`, row-major (for image maps in HTML reports and tests).
  std::vector<GridRect> cell_rects;
  // Why text was left out (no FreeType, no font) or sizes were guessed; empty when all is well.
  std::vector<std::string> warnings;
};

// The grid as described at the top of this file. INVALID_ARGUMENT, naming what is wrong, for:
// no cells; columns unknown or not dividing the cells into whole rows; a label count that does
// not match the rows or columns; a cell image of a malformed shape (naming its row and column);
// options out of range; an output above kMaxGridPixels. Missing text support is a warning.
absl::StatusOr<GridResult> MakeImageGrid(const GridSpec& spec, const GridOptions& options = {});

// Cells pointing at `images` in order; 0x0 images become empty cells.
std::vector<GridCell> GridCellsFrom(const std::vector<Image>& images);

}  // namespace likeness::image

#endif  // LIKENESS_WORKER_IMAGE_IMAGE_GRID_H_
