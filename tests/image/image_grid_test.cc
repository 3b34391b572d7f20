// Labelled grids: the layout arithmetic, cells landing exactly where cell_rects says, scaling
// and alpha, placeholders for failed jobs, text in the headers (skipped without FreeType or a
// font), the no-font path as a warning, and every INVALID_ARGUMENT naming what is wrong.
#include "worker/image/image_grid.h"

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_data.h"
#include "worker/image/image_io.h"

namespace likeness::image {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// A cell whose every byte depends on its position and `seed`, so a misplaced pixel shows.
Image PatternImage(int width, int height, int seed) {
  Image image = MakeImage(width, height, 3);
  for (size_t i = 0; i < image.pixels.size(); ++i) {
    image.pixels[i] = static_cast<uint8_t>((i * 31 + seed * 57 + i / 7) & 0xFF);
  }
  return image;
}

Image SolidImage(int width, int height, int channels, std::vector<uint8_t> value) {
  Image image = MakeImage(width, height, channels);
  for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = value[i % channels];
  return image;
}

// An RGB pixel, for comparisons.
std::vector<uint8_t> Px(int r, int g, int b) {
  return {static_cast<uint8_t>(r), static_cast<uint8_t>(g), static_cast<uint8_t>(b)};
}

std::vector<uint8_t> PixelOf(const Image& image, int x, int y) {
  const uint8_t* p = &image.pixels[(static_cast<size_t>(y) * image.width + x) * 3];
  return {p[0], p[1], p[2]};
}

// Pixels in [x0, x1) x [y0, y1) that differ from `background`.
int CountInk(const Image& image, int x0, int y0, int x1, int y1, Rgb background = {255, 255, 255}) {
  int ink = 0;
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) {
      if (PixelOf(image, x, y) != Px(background.r, background.g, background.b)) {
        ++ink;
      }
    }
  }
  return ink;
}

// Empty when labels can be drawn here, else why not (for GTEST_SKIP).
std::string WhyNoText() {
  absl::StatusOr<std::unique_ptr<TextRenderer>> font = TextRenderer::Create(16);
  return font.ok() ? "" : std::string(font.status().message());
}

GridOptions NoAutoOptions() {
  GridOptions options;
  options.padding = 4;
  options.font_pixels = 14;
  return options;
}

TEST(ImageGridTest, SizeArithmeticWithoutLabels) {
  std::vector<Image> images;
  for (int i = 0; i < 6; ++i) images.push_back(PatternImage(10, 8, i));
  GridSpec spec;
  spec.cells = GridCellsFrom(images);
  spec.columns = 3;
  absl::StatusOr<GridResult> grid = MakeImageGrid(spec, NoAutoOptions());
  ASSERT_TRUE(grid.ok()) << grid.status();
  // 4 + 10 + 4 + 10 + 4 + 10 + 4 wide; 4 + 8 + 4 + 8 + 4 high.
  EXPECT_EQ(grid->image.width, 46);
  EXPECT_EQ(grid->image.height, 28);
  EXPECT_EQ(grid->image.channels, 3);
  EXPECT_EQ(grid->image.bit_depth, 8);
  ASSERT_EQ(grid->cell_rects.size(), 6u);
  EXPECT_EQ(grid->cell_rects[4].x, 4 + 14);
  EXPECT_EQ(grid->cell_rects[4].y, 4 + 12);
  EXPECT_EQ(grid->cell_rects[4].width, 10);
  EXPECT_EQ(grid->cell_rects[4].height, 8);
  EXPECT_THAT(grid->warnings, IsEmpty());  // no text asked for, so nothing to warn about
}

TEST(ImageGridTest, CellsAreCopiedExactlyToTheirSlots) {
  std::vector<Image> images;
  for (int i = 0; i < 6; ++i) images.push_back(PatternImage(12, 9, i));
  GridSpec spec;
  spec.cells = GridCellsFrom(images);
  spec.columns = 2;
  GridOptions options = NoAutoOptions();
  options.background = {1, 2, 3};
  absl::StatusOr<GridResult> grid = MakeImageGrid(spec, options);
  ASSERT_TRUE(grid.ok()) << grid.status();
  const Image& out = grid->image;
  for (int i = 0; i < 6; ++i) {
    const GridRect& rect = grid->cell_rects[i];
    EXPECT_EQ(rect.x, 4 + (i % 2) * 16);
    EXPECT_EQ(rect.y, 4 + (i / 2) * 13);
    for (int y = 0; y < 9; ++y) {
      for (int x = 0; x < 12; ++x) {
        ASSERT_EQ(PixelOf(out, rect.x + x, rect.y + y), PixelOf(images[i], x, y))
            << "cell " << i << " at " << x << "," << y;
      }
    }
  }
  // Padding is background: the corner, the gap between columns, the bottom edge.
  EXPECT_EQ(PixelOf(out, 0, 0), Px(1, 2, 3));
  EXPECT_EQ(PixelOf(out, 4 + 12 + 1, 20), Px(1, 2, 3));
  EXPECT_EQ(PixelOf(out, 10, out.height - 1), Px(1, 2, 3));
}

TEST(ImageGridTest, SmallerCellsAreCentredUnscaledWhenTheyFit) {
  // Slots are the largest cell (20x20); a 20x10 cell fits at scale 1, centred vertically.
  std::vector<Image> images = {SolidImage(20, 20, 3, {10, 20, 30}),
                               SolidImage(20, 10, 3, {200, 100, 50})};
  GridSpec spec;
  spec.cells = GridCellsFrom(images);
  spec.columns = 2;
  GridOptions options = NoAutoOptions();
  options.padding = 0;
  absl::StatusOr<GridResult> grid = MakeImageGrid(spec, options);
  ASSERT_TRUE(grid.ok()) << grid.status();
  EXPECT_EQ(grid->image.width, 40);
  EXPECT_EQ(grid->image.height, 20);
  for (int y = 0; y < 20; ++y) {
    const bool inside = y >= 5 && y < 15;
    EXPECT_EQ(PixelOf(grid->image, 30, y), inside ? Px(200, 100, 50) : Px(255, 255, 255))
        << "row " << y;
  }
}

TEST(ImageGridTest, FixedCellSizeScalesKeepingAspect) {
  std::vector<Image> images = {SolidImage(40, 40, 3, {90, 40, 200}),  // down 4x
                               SolidImage(40, 20, 3, {5, 250, 60}),   // down to 10x5
                               SolidImage(5, 5, 3, {128, 64, 32}),    // up 2x
                               PatternImage(33, 17, 3)};              // odd sizes
  GridSpec spec;
  spec.cells = GridCellsFrom(images);
  spec.columns = 4;
  GridOptions options = NoAutoOptions();
  options.padding = 0;
  options.cell_width = options.cell_height = 10;
  absl::StatusOr<GridResult> grid = MakeImageGrid(spec, options);
  ASSERT_TRUE(grid.ok()) << grid.status();
  const Image& out = grid->image;
  EXPECT_EQ(out.width, 40);
  EXPECT_EQ(out.height, 10);
  // A uniform image stays exactly uniform at any scale: the filter weights sum to one.
  for (int y = 0; y < 10; ++y) {
    for (int x = 0; x < 10; ++x) {
      ASSERT_EQ(PixelOf(out, x, y), Px(90, 40, 200));
      ASSERT_EQ(PixelOf(out, 20 + x, y), Px(128, 64, 32));
      const bool inside = y >= 2 && y < 7;  // 10x5 centred: rows 2..6
      ASSERT_EQ(PixelOf(out, 10 + x, y), inside ? Px(5, 250, 60) : Px(255, 255, 255))
          << x << "," << y;
    }
  }
  // 33x17 -> 10x5 (round(17 * 10/33) = 5), centred: rows 2..6 hold it, rows 0-1 and 7-9 do not.
  EXPECT_EQ(CountInk(out, 30, 0, 40, 2), 0);
  EXPECT_EQ(CountInk(out, 30, 7, 40, 10), 0);
  EXPECT_EQ(CountInk(out, 30, 2, 40, 7), 50);
}

TEST(ImageGridTest, AlphaGrayAndSixteenBitCells) {
  Image transparent = SolidImage(4, 4, 4, {255, 0, 0, 0});
  Image half = SolidImage(4, 4, 4, {255, 0, 0, 128});
  Image gray = SolidImage(4, 4, 1, {77});
  Image gray_alpha = SolidImage(4, 4, 2, {0, 255});
  Image deep = MakeImage(4, 4, 3, 16);
  for (size_t i = 0; i < deep.pixels.size(); i += 2) {
    const uint16_t value = (i / 2) % 3 == 0 ? 65535 : 257 * 10;
    std::memcpy(&deep.pixels[i], &value, 2);
  }
  std::vector<Image> images = {transparent, half, gray, gray_alpha, deep};
  GridSpec spec;
  spec.cells = GridCellsFrom(images);
  spec.columns = 5;
  GridOptions options = NoAutoOptions();
  options.background = {0, 0, 255};
  absl::StatusOr<GridResult> grid = MakeImageGrid(spec, options);
  ASSERT_TRUE(grid.ok()) << grid.status();
  auto at = [&](int cell) {
    return PixelOf(grid->image, grid->cell_rects[cell].x + 1, grid->cell_rects[cell].y + 1);
  };
  EXPECT_EQ(at(0), Px(0, 0, 255));
  EXPECT_EQ(at(1), Px(128, 0, 127));
  EXPECT_EQ(at(2), Px(77, 77, 77));
  EXPECT_EQ(at(3), Px(0, 0, 0));
  EXPECT_EQ(at(4), Px(255, 10, 10));
}

TEST(ImageGridTest, EmptyCellsGetAPlaceholder) {
  std::vector<Image> images = {PatternImage(32, 32, 1), Image{}, PatternImage(32, 32, 2)};
  GridSpec spec;
  spec.cells = GridCellsFrom(images);
  spec.cells.push_back(GridCell{});  // nullptr image
  spec.columns = 2;
  GridOptions options = NoAutoOptions();
  absl::StatusOr<GridResult> grid = MakeImageGrid(spec, options);
  ASSERT_TRUE(grid.ok()) << grid.status();
  for (const int cell : {1, 3}) {
    const GridRect& rect = grid->cell_rects[cell];
    const Rgb fill = kDefaultEmptyCellColor;
    EXPECT_EQ(PixelOf(grid->image, rect.x, rect.y), Px(fill.r, fill.g, fill.b));
    // The cross passes through the centre in the mark colour.
    const Rgb mark = kDefaultEmptyMarkColor;
    EXPECT_EQ(PixelOf(grid->image, rect.x + 16, rect.y + 16), Px(mark.r, mark.g, mark.b));
  }
}

TEST(ImageGridTest, BlankCellsStayBackground) {
  std::vector<Image> images = {PatternImage(16, 16, 1)};
  GridSpec spec;
  spec.cells = GridCellsFrom(images);
  spec.cells.push_back(GridCell{nullptr, "ignored", /*blank=*/true});
  spec.columns = 2;
  absl::StatusOr<GridResult> grid = MakeImageGrid(spec, NoAutoOptions());
  ASSERT_TRUE(grid.ok()) << grid.status();
  const GridRect& rect = grid->cell_rects[1];
  EXPECT_EQ(CountInk(grid->image, rect.x, rect.y, rect.x + rect.width, rect.y + rect.height), 0);
  EXPECT_THAT(grid->warnings, IsEmpty());  // a blank cell's note is not text to draw
}

TEST(ImageGridTest, AllCellsEmptyStillMakesAGridAndSaysSo) {
  GridSpec spec;
  spec.cells.resize(4);
  spec.columns = 2;
  absl::StatusOr<GridResult> grid = MakeImageGrid(spec, NoAutoOptions());
  ASSERT_TRUE(grid.ok()) << grid.status();
  EXPECT_EQ(grid->cell_rects[0].width, kEmptyGridCellSize);
  EXPECT_THAT(grid->warnings, ::testing::ElementsAre(HasSubstr("every grid cell is empty")));
}

GridSpec LabelledSpec(const std::vector<Image>& images) {
  GridSpec spec;
  spec.cells = GridCellsFrom(images);
  spec.row_labels = {"seed 1", "seed 2"};
  spec.column_labels = {"steps=20", "steps=30", "steps=40"};
  spec.title = "Likeness sweep";
  return spec;  // columns from the column labels
}

TEST(ImageGridTest, LabelsDrawInkInTheHeaders) {
  if (const std::string why = WhyNoText(); !why.empty()) GTEST_SKIP() << why;
  std::vector<Image> images;
  for (int i = 0; i < 6; ++i) images.push_back(SolidImage(64, 64, 3, {30, 60, 90}));
  const GridSpec spec = LabelledSpec(images);
  absl::StatusOr<GridResult> grid = MakeImageGrid(spec, NoAutoOptions());
  ASSERT_TRUE(grid.ok()) << grid.status();
  EXPECT_THAT(grid->warnings, IsEmpty());
  const Image& out = grid->image;
  const GridRect first = grid->cell_rects[0];
  // Above the cells: title and column labels. Left of the cells: row labels.
  EXPECT_GT(CountInk(out, 0, 0, out.width, first.y), 100);
  EXPECT_GT(CountInk(out, 0, first.y, first.x, out.height), 50);
  // Each column label sits over its own column, each row label beside its own row.
  for (int c = 0; c < 3; ++c) {
    const GridRect& rect = grid->cell_rects[c];
    EXPECT_GT(CountInk(out, rect.x, first.y - 4 - 20, rect.x + rect.width, first.y), 10) << c;
  }
  for (int r = 0; r < 2; ++r) {
    const GridRect& rect = grid->cell_rects[r * 3];
    EXPECT_GT(CountInk(out, 0, rect.y, first.x, rect.y + rect.height), 10) << r;
  }
  // The cells are untouched by the text.
  for (const GridRect& rect : grid->cell_rects) {
    EXPECT_EQ(
        CountInk(out, rect.x, rect.y, rect.x + rect.width, rect.y + rect.height, {30, 60, 90}), 0);
  }
}

TEST(ImageGridTest, LongLabelsWrapIntoTallerHeaders) {
  std::vector<Image> images = {SolidImage(64, 64, 3, {0, 0, 0}), SolidImage(64, 64, 3, {0, 0, 0})};
  GridSpec spec;
  spec.cells = GridCellsFrom(images);
  spec.column_labels = {"a", "b"};
  absl::StatusOr<GridResult> short_labels = MakeImageGrid(spec, NoAutoOptions());
  spec.column_labels = {"a photo of sks dog in a bucket, watercolor", "b"};
  absl::StatusOr<GridResult> long_labels = MakeImageGrid(spec, NoAutoOptions());
  spec.column_labels = {std::string(400, 'x') + " and a great many more words after it", "b"};
  absl::StatusOr<GridResult> huge_labels = MakeImageGrid(spec, NoAutoOptions());
  ASSERT_TRUE(short_labels.ok() && long_labels.ok() && huge_labels.ok());
  // One line of header: padding, the line, padding. The long labels wrap past the cap and are
  // cut to kDefaultMaxLabelLines, whatever their length.
  const int line_height = short_labels->cell_rects[0].y - 2 * 4;
  EXPECT_EQ(long_labels->cell_rects[0].y, 2 * 4 + kDefaultMaxLabelLines * line_height);
  EXPECT_EQ(huge_labels->cell_rects[0].y, long_labels->cell_rects[0].y);
  // The width never changes for column labels: they wrap to the cell.
  EXPECT_EQ(huge_labels->image.width, short_labels->image.width);
}

TEST(ImageGridTest, WithoutAFontTheGridIsMadeBlankWithAWarning) {
  std::vector<Image> images;
  for (int i = 0; i < 6; ++i) images.push_back(PatternImage(32, 32, i));
  const GridSpec spec = LabelledSpec(images);
  GridOptions options = NoAutoOptions();
  options.font_path = "/nonexistent/fonts/NoSuchFont.ttf";
  absl::StatusOr<GridResult> grid = MakeImageGrid(spec, options);
  ASSERT_TRUE(grid.ok()) << grid.status();
  ASSERT_THAT(grid->warnings, ::testing::ElementsAre(HasSubstr("labels left blank")));
  if (FreeTypeCompiledIn()) {
    EXPECT_THAT(grid->warnings[0], HasSubstr("NoSuchFont.ttf"));
  } else {
    EXPECT_THAT(grid->warnings[0], HasSubstr("FreeType"));
  }
  const Image& out = grid->image;
  const GridRect first = grid->cell_rects[0];
  // The header space is there (a title, a line of column labels, the row-label column) and blank.
  EXPECT_GT(first.y, 4 + 2 * 14);
  EXPECT_GT(first.x, 4 + 14);
  EXPECT_EQ(CountInk(out, 0, 0, out.width, first.y), 0);
  EXPECT_EQ(CountInk(out, 0, first.y, first.x, out.height), 0);
  // And the cells are all there.
  EXPECT_EQ(PixelOf(out, grid->cell_rects[5].x, grid->cell_rects[5].y), PixelOf(images[5], 0, 0));
}

TEST(ImageGridTest, FontEnvironmentVariableTypoIsAWarningNotAFailure) {
  if (!FreeTypeCompiledIn()) GTEST_SKIP() << "built without FreeType";
  const char* old = std::getenv(kFontEnv);
  const std::string saved = old != nullptr ? old : "";
  ::setenv(kFontEnv, "/nonexistent/typo.ttf", 1);
  std::vector<Image> images = {PatternImage(16, 16, 0)};
  GridSpec spec;
  spec.cells = GridCellsFrom(images);
  spec.title = "title";
  spec.columns = 1;
  absl::StatusOr<GridResult> grid = MakeImageGrid(spec, NoAutoOptions());
  if (old != nullptr) {
    ::setenv(kFontEnv, saved.c_str(), 1);
  } else {
    ::unsetenv(kFontEnv);
  }
  ASSERT_TRUE(grid.ok()) << grid.status();
  EXPECT_THAT(grid->warnings, ::testing::ElementsAre(HasSubstr("LIKENESS_FONT")));
}

TEST(ImageGridTest, Utf8AndCjkLabelsDrawWithoutCrashing) {
  if (const std::string why = WhyNoText(); !why.empty()) GTEST_SKIP() << why;
  std::vector<Image> images = {PatternImage(48, 48, 1), PatternImage(48, 48, 2)};
  GridSpec spec;
  spec.cells = GridCellsFrom(images);
  spec.column_labels = {"Schöne Grüße", "日本語のプロンプト"};
  spec.row_labels = {"Ünïcödé \xFF"};
  absl::StatusOr<GridResult> grid = MakeImageGrid(spec, NoAutoOptions());
  ASSERT_TRUE(grid.ok()) << grid.status();
  EXPECT_THAT(grid->warnings, IsEmpty());
  const GridRect& second = grid->cell_rects[1];
  EXPECT_GT(CountInk(grid->image, second.x, 0, second.x + second.width, second.y), 10);
}

TEST(ImageGridTest, AutoFontSizeFollowsTheCells) {
  if (const std::string why = WhyNoText(); !why.empty()) GTEST_SKIP() << why;
  auto header_height = [](int cell) {
    std::vector<Image> images = {SolidImage(cell, cell, 3, {0, 0, 0})};
    GridSpec spec;
    spec.cells = GridCellsFrom(images);
    spec.column_labels = {"lr=1e-4"};
    GridOptions options;  // font_pixels 0: from the cell size
    options.padding = 0;
    absl::StatusOr<GridResult> grid = MakeImageGrid(spec, options);
    EXPECT_TRUE(grid.ok()) << grid.status();
    return grid.ok() ? grid->cell_rects[0].y : 0;
  };
  // 2 * 64 / 25 = 5 -> clamped up to 12 px; 2 * 1024 / 25 = 81 px.
  EXPECT_LT(header_height(64), 20);
  EXPECT_GT(header_height(1024), 81);
}

TEST(ImageGridTest, ErrorsNameWhatIsWrong) {
  std::vector<Image> images;
  for (int i = 0; i < 6; ++i) images.push_back(PatternImage(8, 8, i));
  auto error_of = [](const GridSpec& spec, const GridOptions& options = {}) {
    absl::StatusOr<GridResult> grid = MakeImageGrid(spec, options);
    EXPECT_EQ(grid.status().code(), absl::StatusCode::kInvalidArgument) << grid.status();
    return std::string(grid.status().message());
  };
  GridSpec spec;
  EXPECT_THAT(error_of(spec), HasSubstr("at least one cell"));
  spec.cells = GridCellsFrom(images);
  EXPECT_THAT(error_of(spec), HasSubstr("no column labels"));
  spec.columns = 4;
  EXPECT_THAT(error_of(spec), HasSubstr("6 grid cells do not fill whole rows of 4 columns"));
  spec.columns = 3;
  spec.row_labels = {"one", "two", "three"};
  EXPECT_THAT(error_of(spec), HasSubstr("3 row labels for a grid of 2 rows"));
  spec.row_labels = {"one", "two"};
  spec.column_labels = {"a", "b"};
  EXPECT_THAT(error_of(spec), HasSubstr("2 column labels for a grid of 3 columns"));
  spec.column_labels.clear();

  GridOptions options;
  options.cell_width = 10;
  EXPECT_THAT(error_of(spec, options), HasSubstr("set both cell_width and cell_height"));
  options = {};
  options.padding = -1;
  EXPECT_THAT(error_of(spec, options), HasSubstr("padding = -1"));
  options = {};
  options.font_pixels = 1;
  EXPECT_THAT(error_of(spec, options), HasSubstr("font_pixels = 1"));
  options = {};
  options.max_label_lines = 0;
  EXPECT_THAT(error_of(spec, options), HasSubstr("max_label_lines"));
  options = {};
  options.cell_width = options.cell_height = 20000;
  EXPECT_THAT(error_of(spec, options), HasSubstr("above the limit"));

  Image broken = PatternImage(8, 8, 0);
  broken.pixels.resize(10);
  std::vector<Image> with_broken = images;
  with_broken[4] = broken;
  spec.cells = GridCellsFrom(with_broken);
  EXPECT_THAT(error_of(spec), HasSubstr("grid cell (row 1, column 1) is not a valid image"));
}

// A grid as a sweep report would make, written for a person to look at.
TEST(ImageGridTest, WritesAnExampleGrid) {
  std::vector<Image> images;
  const std::vector<std::pair<int, int>> sizes = {{96, 96}, {128, 96}, {96, 128}, {64, 64},
                                                  {96, 96}, {96, 96},  {96, 96},  {96, 96}};
  for (size_t i = 0; i < sizes.size(); ++i) {
    Image image = MakeImage(sizes[i].first, sizes[i].second, 3);
    for (int y = 0; y < image.height; ++y) {
      for (int x = 0; x < image.width; ++x) {
        uint8_t* p = &image.pixels[(static_cast<size_t>(y) * image.width + x) * 3];
        p[0] = static_cast<uint8_t>(255 * x / image.width);
        p[1] = static_cast<uint8_t>(255 * y / image.height);
        p[2] = static_cast<uint8_t>(40 * i);
      }
    }
    images.push_back(std::move(image));
  }
  images[6] = Image{};  // a failed job
  GridSpec spec;
  spec.cells = GridCellsFrom(images);
  spec.cells[6].note = "failed: CUDA out of memory";
  spec.title = "sks dog — learning rate × steps (Schöne Grüße)";
  spec.column_labels = {"steps=500", "steps=1000",
                        "steps=1500, a label long enough to wrap onto a second line",
                        "日本語 (notdef)"};
  spec.row_labels = {"lr=1e-4", "lr=5e-5\nrank 16"};
  GridOptions options;
  options.font_pixels = 14;
  absl::StatusOr<GridResult> grid = MakeImageGrid(spec, options);
  ASSERT_TRUE(grid.ok()) << grid.status();
  const std::string path = testing::MakeTestTempDir("image_grid") + "/example_grid.png";
  ASSERT_TRUE(WritePngFile(path, grid->image, {{"Title", spec.title}}).ok());
  std::cout << "example grid: " << path << " (" << grid->image.width << "x" << grid->image.height
            << ")";
  for (const std::string& warning : grid->warnings) std::cout << "; warning: " << warning;
  std::cout << "\n";
}

}  // namespace
}  // namespace likeness::image
