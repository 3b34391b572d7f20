#include "worker/image/image_grid.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace likeness::image {
namespace {

// Text metrics when there is no font, so a grid without text keeps the shape it would have with
// it. DejaVu Sans averages about 0.55 em per character over labels like "lr=1e-4" and has a
// 1.164 em line height; the estimates err wide so the blank headers are never too small.
constexpr int kFallbackAdvanceTenthsEm = 6;
constexpr int kFallbackLineHeightTenthsEm = 12;

// The cross of an empty cell spans this fraction of the slot's shorter side; its strokes are
// 1/kEmptyMarkStrokeDivisor of the cross, at least one pixel.
constexpr double kEmptyMarkFraction = 0.3;
constexpr double kEmptyMarkStrokeDivisor = 10.0;

// Pillow's bilinear filter: a triangle of support 1, widened by the scale when shrinking, so a
// downscale averages every source pixel (no aliasing) and a 1:1 "resize" is the identity.
constexpr double kTriangleSupport = 1.0;

enum class Align { kStart, kCenter, kEnd };

// Measures and draws labels with a face, or only measures (estimates) when there is none.
class TextStyle {
 public:
  TextStyle(const TextRenderer* renderer, int font_pixels)
      : renderer_(renderer),
        line_height_(renderer != nullptr ? renderer->line_height()
                                         : (font_pixels * kFallbackLineHeightTenthsEm + 9) / 10),
        advance_(font_pixels * kFallbackAdvanceTenthsEm / 10.0) {}

  int line_height() const { return line_height_; }

  int Measure(std::u32string_view text) const {
    if (renderer_ != nullptr) return renderer_->MeasureWidth(text);
    int count = 0;
    for (const char32_t c : text) count += c >= 0x20 && c != 0x7F;
    return static_cast<int>(std::ceil(count * advance_));
  }

  std::vector<std::u32string> Wrap(const std::string& utf8, int max_width, int max_lines) const {
    const std::u32string text = DecodeUtf8(utf8);
    if (renderer_ != nullptr) return renderer_->Wrap(text, max_width, max_lines);
    return WrapText(text, max_width, max_lines,
                    [this](std::u32string_view line) { return Measure(line); });
  }

  // Widest line of `utf8` split only at '\n'.
  int NaturalWidth(const std::string& utf8) const {
    int widest = 0;
    for (const std::u32string& line : Wrap(utf8, 0, 0)) widest = std::max(widest, Measure(line));
    return widest;
  }

  // Draws `lines` inside `box`, aligned as asked; nothing when there is no face.
  absl::Status Draw(Image& image, const std::vector<std::u32string>& lines, const GridRect& box,
                    Align horizontal, Align vertical, Rgb color) const {
    if (renderer_ == nullptr) return absl::OkStatus();
    const int block = static_cast<int>(lines.size()) * line_height_;
    int y = box.y;
    if (vertical == Align::kCenter) y += (box.height - block) / 2;
    if (vertical == Align::kEnd) y += box.height - block;
    for (const std::u32string& line : lines) {
      int x = box.x;
      if (horizontal != Align::kStart) {
        const int slack = box.width - renderer_->MeasureWidth(line);
        x += horizontal == Align::kCenter ? slack / 2 : slack;
      }
      LIKENESS_RETURN_IF_ERROR(renderer_->DrawLine(image, x, y, line, color));
      y += line_height_;
    }
    return absl::OkStatus();
  }

 private:
  const TextRenderer* renderer_;
  int line_height_;
  double advance_;
};

bool IsEmpty(const GridCell& cell) {
  return cell.image == nullptr || (cell.image->width == 0 && cell.image->height == 0);
}

absl::Status CheckCellImage(const Image& image, int row, int column) {
  const bool shape_ok = image.width > 0 && image.height > 0 && image.channels >= 1 &&
                        image.channels <= 4 && (image.bit_depth == 8 || image.bit_depth == 16) &&
                        image.pixels.size() == image.SizeBytes();
  if (shape_ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("grid cell (row ", row, ", column ", column,
                   ") is not a valid image: ", image.width, "x", image.height, ", ", image.channels,
                   " channels, ", image.bit_depth, " bit, ", image.pixels.size(), " bytes"));
}

absl::Status CheckRange(const char* name, int value, int lo, int hi) {
  if (value >= lo && value <= hi) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("grid option ", name, " = ", value, " is outside [", lo, ", ", hi, "]"));
}

absl::Status CheckOptions(const GridOptions& options) {
  if ((options.cell_width == 0) != (options.cell_height == 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "grid cell size ", options.cell_width, "x", options.cell_height,
        ": set both cell_width and cell_height, or neither (the largest cell's size)"));
  }
  const int max_side = static_cast<int>(std::min<int64_t>(kMaxGridPixels, INT32_MAX));
  LIKENESS_RETURN_IF_ERROR(CheckRange("cell_width", options.cell_width, 0, max_side));
  LIKENESS_RETURN_IF_ERROR(CheckRange("cell_height", options.cell_height, 0, max_side));
  LIKENESS_RETURN_IF_ERROR(CheckRange("padding", options.padding, 0, kMaxGridPadding));
  if (options.font_pixels != 0) {
    LIKENESS_RETURN_IF_ERROR(
        CheckRange("font_pixels", options.font_pixels, kMinFontPixels, kMaxFontPixels));
  }
  if (options.title_font_pixels != 0) {
    LIKENESS_RETURN_IF_ERROR(
        CheckRange("title_font_pixels", options.title_font_pixels, kMinFontPixels, kMaxFontPixels));
  }
  LIKENESS_RETURN_IF_ERROR(
      CheckRange("max_label_lines", options.max_label_lines, 1, kMaxLabelLines));
  LIKENESS_RETURN_IF_ERROR(CheckRange("title_lines", options.title_lines, 1, kMaxLabelLines));
  return CheckRange("row_label_width", options.row_label_width, 0, max_side);
}

uint8_t* PixelAt(Image& image, int x, int y) {
  return &image.pixels[(static_cast<size_t>(y) * image.width + x) * 3];
}

void FillRect(Image& image, const GridRect& rect, Rgb color) {
  for (int y = rect.y; y < rect.y + rect.height; ++y) {
    for (int x = rect.x; x < rect.x + rect.width; ++x) {
      uint8_t* pixel = PixelAt(image, x, y);
      pixel[0] = color.r;
      pixel[1] = color.g;
      pixel[2] = color.b;
    }
  }
}

// `image` as RGB floats in [0, 255], [H, W, 3], alpha composited over `background`.
// Compositing before scaling is exact: both are linear, and the background is uniform.
template <typename Sample>
void ToRgbOverTyped(const Image& image, const float bg[3], float* out) {
  const float max_value = static_cast<float>(std::numeric_limits<Sample>::max());
  const int channels = image.channels;
  const bool gray = channels <= 2;
  const bool alpha = image.HasAlpha();
  const size_t count = static_cast<size_t>(image.PixelCount());
  Sample pixel[4];
  for (size_t p = 0; p < count; ++p, out += 3) {
    // memcpy: 16-bit samples are not necessarily aligned in the byte vector.
    std::memcpy(pixel, &image.pixels[p * channels * sizeof(Sample)], channels * sizeof(Sample));
    const float a = alpha ? pixel[channels - 1] / max_value : 1.0f;
    for (int c = 0; c < 3; ++c) {
      const float value = pixel[gray ? 0 : c] * (255.0f / max_value);
      out[c] = value * a + bg[c] * (1.0f - a);
    }
  }
}

std::vector<float> ToRgbOver(const Image& image, Rgb background) {
  const float bg[3] = {static_cast<float>(background.r), static_cast<float>(background.g),
                       static_cast<float>(background.b)};
  std::vector<float> rgb(static_cast<size_t>(image.PixelCount()) * 3);
  if (image.bit_depth == 16) {
    ToRgbOverTyped<uint16_t>(image, bg, rgb.data());
  } else {
    ToRgbOverTyped<uint8_t>(image, bg, rgb.data());
  }
  return rgb;
}

// For each output position along one axis: the first input index and the normalized weights.
struct Taps {
  int max_taps = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<float> weights;  // out_size x max_taps
};

Taps ComputeTaps(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = kTriangleSupport * filter_scale;
  Taps taps;
  taps.max_taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  taps.first.resize(out_size);
  taps.count.resize(out_size);
  taps.weights.assign(static_cast<size_t>(out_size) * taps.max_taps, 0.0f);
  for (int i = 0; i < out_size; ++i) {
    const double center = (i + 0.5) * scale;
    const int lo = std::max(0, static_cast<int>(center - support + 0.5));
    const int hi =
        std::min({in_size, static_cast<int>(center + support + 0.5), lo + taps.max_taps});
    float* w = &taps.weights[static_cast<size_t>(i) * taps.max_taps];
    double total = 0;
    for (int x = lo; x < hi; ++x) {
      const double t = std::abs((x - center + 0.5) / filter_scale);
      w[x - lo] = static_cast<float>(std::max(0.0, 1.0 - t));
      total += w[x - lo];
    }
    if (total > 0) {
      for (int k = 0; k < hi - lo; ++k) w[k] = static_cast<float>(w[k] / total);
    }
    taps.first[i] = lo;
    taps.count[i] = hi - lo;
  }
  return taps;
}

// [H, W, 3] -> [H, out_w, 3]
std::vector<float> ResizeRows(const std::vector<float>& in, int width, int height, int out_w) {
  const Taps taps = ComputeTaps(width, out_w);
  std::vector<float> out(static_cast<size_t>(out_w) * height * 3);
  for (int y = 0; y < height; ++y) {
    const float* row = &in[static_cast<size_t>(y) * width * 3];
    for (int x = 0; x < out_w; ++x) {
      const float* w = &taps.weights[static_cast<size_t>(x) * taps.max_taps];
      float sum[3] = {0, 0, 0};
      for (int k = 0; k < taps.count[x]; ++k) {
        const float* p = row + static_cast<size_t>(taps.first[x] + k) * 3;
        for (int c = 0; c < 3; ++c) sum[c] += p[c] * w[k];
      }
      std::copy(sum, sum + 3, &out[(static_cast<size_t>(y) * out_w + x) * 3]);
    }
  }
  return out;
}

// [H, W, 3] -> [out_h, W, 3]
std::vector<float> ResizeColumns(const std::vector<float>& in, int width, int height, int out_h) {
  const Taps taps = ComputeTaps(height, out_h);
  const size_t row_floats = static_cast<size_t>(width) * 3;
  std::vector<float> out(row_floats * out_h, 0.0f);
  for (int y = 0; y < out_h; ++y) {
    float* dst = &out[y * row_floats];
    for (int k = 0; k < taps.count[y]; ++k) {
      const float w = taps.weights[static_cast<size_t>(y) * taps.max_taps + k];
      const float* src = &in[(taps.first[y] + k) * row_floats];
      for (size_t i = 0; i < row_floats; ++i) dst[i] += src[i] * w;
    }
  }
  return out;
}

// Scales `cell` to fit `slot` keeping its aspect ratio and pastes it centred.
void PasteCell(Image& grid, const Image& cell, const GridRect& slot, Rgb background) {
  const double scale = std::min(static_cast<double>(slot.width) / cell.width,
                                static_cast<double>(slot.height) / cell.height);
  const int out_w = std::clamp(static_cast<int>(std::lround(cell.width * scale)), 1, slot.width);
  const int out_h = std::clamp(static_cast<int>(std::lround(cell.height * scale)), 1, slot.height);
  const int left = slot.x + (slot.width - out_w) / 2;
  const int top = slot.y + (slot.height - out_h) / 2;
  if (out_w == cell.width && out_h == cell.height && cell.channels == 3 && cell.bit_depth == 8) {
    // The common case (generations of one size, unscaled): rows copied as they are.
    for (int y = 0; y < out_h; ++y) {
      std::memcpy(PixelAt(grid, left, top + y), &cell.pixels[y * cell.RowBytes()], cell.RowBytes());
    }
    return;
  }
  std::vector<float> rgb = ToRgbOver(cell, background);
  if (out_w != cell.width) rgb = ResizeRows(rgb, cell.width, cell.height, out_w);
  if (out_h != cell.height) rgb = ResizeColumns(rgb, out_w, cell.height, out_h);
  for (int y = 0; y < out_h; ++y) {
    const float* src = &rgb[static_cast<size_t>(y) * out_w * 3];
    uint8_t* dst = PixelAt(grid, left, top + y);
    for (int i = 0; i < out_w * 3; ++i) {
      dst[i] = static_cast<uint8_t>(std::clamp(std::lround(src[i]), 0L, 255L));
    }
  }
}

double DistanceToSegment(double px, double py, double ax, double ay, double bx, double by) {
  const double dx = bx - ax, dy = by - ay;
  const double t = std::clamp(((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy), 0.0, 1.0);
  return std::hypot(px - (ax + t * dx), py - (ay + t * dy));
}

// An anti-aliased "x" centred in `slot`: coverage is how far a pixel centre lies inside a stroke.
void DrawEmptyMark(Image& grid, const GridRect& slot, Rgb color) {
  const double half = std::min(slot.width, slot.height) * kEmptyMarkFraction / 2;
  const double stroke = std::max(1.0, 2 * half / kEmptyMarkStrokeDivisor);
  const double cx = slot.x + slot.width / 2.0, cy = slot.y + slot.height / 2.0;
  const int reach = static_cast<int>(std::ceil(half + stroke));
  const int x0 = std::max(slot.x, static_cast<int>(cx) - reach);
  const int x1 = std::min(slot.x + slot.width, static_cast<int>(cx) + reach + 1);
  const int y0 = std::max(slot.y, static_cast<int>(cy) - reach);
  const int y1 = std::min(slot.y + slot.height, static_cast<int>(cy) + reach + 1);
  const uint8_t target[3] = {color.r, color.g, color.b};
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) {
      const double px = x + 0.5 - cx, py = y + 0.5 - cy;
      const double d = std::min(DistanceToSegment(px, py, -half, -half, half, half),
                                DistanceToSegment(px, py, -half, half, half, -half));
      const double a = std::clamp(stroke / 2 + 0.5 - d, 0.0, 1.0);
      if (a <= 0) continue;
      uint8_t* pixel = PixelAt(grid, x, y);
      for (int c = 0; c < 3; ++c) {
        pixel[c] = static_cast<uint8_t>(std::lround(pixel[c] + (target[c] - pixel[c]) * a));
      }
    }
  }
}

bool AnyText(const GridSpec& spec) {
  if (!spec.title.empty()) return true;
  for (const auto& label : spec.row_labels) {
    if (!label.empty()) return true;
  }
  for (const auto& label : spec.column_labels) {
    if (!label.empty()) return true;
  }
  for (const GridCell& cell : spec.cells) {
    if (IsEmpty(cell) && !cell.blank && !cell.note.empty()) return true;
  }
  return false;
}

}  // namespace

std::vector<GridCell> GridCellsFrom(const std::vector<Image>& images) {
  std::vector<GridCell> cells(images.size());
  for (size_t i = 0; i < images.size(); ++i) cells[i].image = &images[i];
  return cells;
}

absl::StatusOr<GridResult> MakeImageGrid(const GridSpec& spec, const GridOptions& options) {
  // 1. The grid's shape and the inputs.
  LIKENESS_RETURN_IF_ERROR(CheckOptions(options));
  if (spec.cells.empty()) return absl::InvalidArgumentError("a grid needs at least one cell");
  const int columns =
      spec.columns != 0 ? spec.columns : static_cast<int>(spec.column_labels.size());
  if (columns <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "grid columns is ", spec.columns, " and there are no column labels to count instead"));
  }
  const int cell_count = static_cast<int>(spec.cells.size());
  if (cell_count % columns != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(cell_count, " grid cells do not fill whole rows of ", columns,
                     " columns; pad the last row with blank cells (GridCell::blank)"));
  }
  const int rows = cell_count / columns;
  if (!spec.row_labels.empty() && static_cast<int>(spec.row_labels.size()) != rows) {
    return absl::InvalidArgumentError(
        absl::StrCat(spec.row_labels.size(), " row labels for a grid of ", rows, " rows"));
  }
  if (!spec.column_labels.empty() && static_cast<int>(spec.column_labels.size()) != columns) {
    return absl::InvalidArgumentError(absl::StrCat(
        spec.column_labels.size(), " column labels for a grid of ", columns, " columns"));
  }
  GridResult result;
  int cell_w = options.cell_width, cell_h = options.cell_height;
  for (int i = 0; i < cell_count; ++i) {
    if (IsEmpty(spec.cells[i])) continue;
    const Image& image = *spec.cells[i].image;
    LIKENESS_RETURN_IF_ERROR(CheckCellImage(image, i / columns, i % columns));
    if (options.cell_width == 0) {
      cell_w = std::max(cell_w, image.width);
      cell_h = std::max(cell_h, image.height);
    }
  }
  if (cell_w == 0) {
    cell_w = cell_h = kEmptyGridCellSize;
    result.warnings.push_back(absl::StrCat("every grid cell is empty and no cell size was given; ",
                                           "using ", kEmptyGridCellSize, " px"));
  }

  // 2. Text: a face if one can be had, else estimates so the headers keep their size.
  const int font_px = options.font_pixels != 0 ? options.font_pixels
                                               : std::clamp((cell_w + cell_h) / kAutoFontDivisor,
                                                            kMinAutoFontPixels, kMaxAutoFontPixels);
  const int title_px = options.title_font_pixels != 0
                           ? options.title_font_pixels
                           : std::min(kMaxFontPixels, font_px * kTitleFontQuarters / 4);
  std::unique_ptr<TextRenderer> label_face, title_face;
  if (AnyText(spec)) {
    absl::StatusOr<std::unique_ptr<TextRenderer>> face =
        TextRenderer::Create(font_px, options.font_path);
    if (face.ok()) {
      label_face = *std::move(face);
      face = TextRenderer::Create(title_px, label_face->font_path());
    }
    if (face.ok()) {
      title_face = *std::move(face);
    } else {
      label_face.reset();
      result.warnings.push_back(absl::StrCat("grid labels left blank: ", face.status().message()));
    }
  }
  const TextStyle label_style(label_face.get(), font_px);
  const TextStyle title_style(title_face.get(), title_px);
  const int line_h = label_style.line_height();

  // 3. Header sizes, then the whole layout in 64 bits so absurd sizes are caught, not wrapped.
  std::vector<std::vector<std::u32string>> column_lines(spec.column_labels.size());
  int column_header_h = 0;
  for (size_t c = 0; c < spec.column_labels.size(); ++c) {
    column_lines[c] = label_style.Wrap(spec.column_labels[c], cell_w, options.max_label_lines);
    column_header_h = std::max(column_header_h, static_cast<int>(column_lines[c].size()) * line_h);
  }
  int row_label_w = options.row_label_width;
  if (!spec.row_labels.empty() && row_label_w == 0) {
    for (const std::string& label : spec.row_labels) {
      row_label_w = std::max(row_label_w, label_style.NaturalWidth(label));
    }
    row_label_w = std::min(row_label_w, std::max(cell_w / 2, kRowLabelMinEms * font_px));
  }
  const int pad = options.padding;
  const int64_t cells_w = int64_t{columns} * cell_w + int64_t{columns - 1} * pad;
  const int64_t cells_h = int64_t{rows} * cell_h + int64_t{rows - 1} * pad;
  const int64_t row_header_w = spec.row_labels.empty() ? 0 : row_label_w + pad;
  const int64_t width = 2 * pad + row_header_w + cells_w;
  std::vector<std::u32string> title_lines;
  if (!spec.title.empty() && width - 2 * pad <= INT32_MAX) {
    title_lines =
        title_style.Wrap(spec.title, static_cast<int>(width - 2 * pad), options.title_lines);
  }
  const int64_t title_h =
      title_lines.empty()
          ? 0
          : static_cast<int64_t>(title_lines.size()) * title_style.line_height() + pad;
  const int64_t column_header_total = spec.column_labels.empty() ? 0 : column_header_h + pad;
  const int64_t height = 2 * pad + title_h + column_header_total + cells_h;
  if (width > kMaxGridPixels || height > kMaxGridPixels || width * height > kMaxGridPixels) {
    return absl::InvalidArgumentError(
        absl::StrCat("grid of ", rows, "x", columns, " cells of ", cell_w, "x", cell_h,
                     " px would be ", width, "x", height, " px, above the limit of ",
                     kMaxGridPixels, " pixels; set a smaller cell_width and cell_height"));
  }

  // 4. Background, cells, placeholders.
  Image& grid = result.image;
  grid = MakeImage(static_cast<int>(width), static_cast<int>(height), 3);
  FillRect(grid, {0, 0, grid.width, grid.height}, options.background);
  const int cells_x = static_cast<int>(pad + row_header_w);
  const int cells_y = static_cast<int>(pad + title_h + column_header_total);
  result.cell_rects.reserve(cell_count);
  for (int i = 0; i < cell_count; ++i) {
    const GridRect slot{cells_x + (i % columns) * (cell_w + pad),
                        cells_y + (i / columns) * (cell_h + pad), cell_w, cell_h};
    result.cell_rects.push_back(slot);
    const GridCell& cell = spec.cells[i];
    if (!IsEmpty(cell)) {
      PasteCell(grid, *cell.image, slot, options.background);
      continue;
    }
    if (cell.blank) continue;
    FillRect(grid, slot, options.empty_cell_color);
    DrawEmptyMark(grid, slot, options.empty_mark_color);
    if (!cell.note.empty()) {
      // Under the cross, in what is left of the slot's lower half.
      const int mark_bottom = static_cast<int>(
          slot.height / 2.0 + std::min(slot.width, slot.height) * kEmptyMarkFraction / 2);
      const int gap = std::max(1, line_h / 4);
      const GridRect box{slot.x + pad, slot.y + mark_bottom + gap,
                         std::max(1, slot.width - 2 * pad),
                         std::max(0, slot.height - mark_bottom - gap - pad / 2)};
      const auto lines =
          label_style.Wrap(cell.note, box.width, std::max(1, box.height / std::max(1, line_h)));
      LIKENESS_RETURN_IF_ERROR(
          label_style.Draw(grid, lines, box, Align::kCenter, Align::kStart, options.label_color));
    }
  }

  // 5. Title, column labels (bottom-aligned over their column), row labels (right-aligned,
  // centred on their row, as many lines as the row's height holds).
  LIKENESS_RETURN_IF_ERROR(title_style.Draw(
      grid, title_lines,
      {pad, pad, static_cast<int>(width - 2 * pad), static_cast<int>(title_h - pad)},
      Align::kCenter, Align::kStart, options.label_color));
  for (size_t c = 0; c < column_lines.size(); ++c) {
    const GridRect box{result.cell_rects[c].x, static_cast<int>(pad + title_h), cell_w,
                       column_header_h};
    LIKENESS_RETURN_IF_ERROR(label_style.Draw(grid, column_lines[c], box, Align::kCenter,
                                              Align::kEnd, options.label_color));
  }
  for (size_t r = 0; r < spec.row_labels.size(); ++r) {
    const auto lines =
        label_style.Wrap(spec.row_labels[r], row_label_w, std::max(1, cell_h / line_h));
    const GridRect box{pad, result.cell_rects[r * columns].y, row_label_w, cell_h};
    LIKENESS_RETURN_IF_ERROR(
        label_style.Draw(grid, lines, box, Align::kEnd, Align::kCenter, options.label_color));
  }
  return result;
}

}  // namespace likeness::image
