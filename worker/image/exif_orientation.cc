#include "worker/image/exif_orientation.h"

#include <libexif/exif-data.h>

#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace likeness::image {
namespace {

// JPEG's APP1 payload starts with this; PNG eXIf and WebP EXIF chunks hold the bare TIFF
// structure, which libexif does not recognize without it.
constexpr char kExifHeader[] = "Exif\0\0";
constexpr size_t kExifHeaderSize = 6;

// libexif takes sizes as unsigned int; APP1 is < 64 KiB, PNG/WebP chunks could claim more.
constexpr size_t kMaxExifBytes = size_t{1} << 24;

struct ExifDataDeleter {
  void operator()(ExifData* data) const { exif_data_unref(data); }
};

}  // namespace

int ReadExifOrientation(absl::string_view exif) {
  if (exif.empty() || exif.size() > kMaxExifBytes) return kOrientationNormal;
  std::string with_header;
  if (exif.size() < kExifHeaderSize ||
      std::memcmp(exif.data(), kExifHeader, kExifHeaderSize) != 0) {
    with_header.reserve(kExifHeaderSize + exif.size());
    with_header.append(kExifHeader, kExifHeaderSize);
    with_header.append(exif.data(), exif.size());
    exif = with_header;
  }
  std::unique_ptr<ExifData, ExifDataDeleter> data(exif_data_new());
  if (data == nullptr) return kOrientationNormal;
  // FOLLOW_SPECIFICATION would add and "fix" mandatory tags; we only read one tag.
  exif_data_unset_option(data.get(), EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
  exif_data_load_data(data.get(), reinterpret_cast<const unsigned char*>(exif.data()),
                      static_cast<unsigned int>(exif.size()));
  ExifEntry* entry = exif_content_get_entry(data->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION);
  if (entry == nullptr || entry->format != EXIF_FORMAT_SHORT || entry->components < 1 ||
      entry->size < 2 || entry->data == nullptr) {
    return kOrientationNormal;
  }
  const int value = exif_get_short(entry->data, exif_data_get_byte_order(data.get()));
  return value >= 1 && value <= 8 ? value : kOrientationNormal;
}

void ApplyExifOrientation(int orientation, Image* image) {
  if (orientation <= kOrientationNormal || orientation > 8) return;
  const int w = image->width;
  const int h = image->height;
  const bool swaps = orientation >= 5;
  const int out_w = swaps ? h : w;
  const int out_h = swaps ? w : h;
  const size_t pixel_bytes = image->BytesPerPixel();
  const size_t in_row = image->RowBytes();
  const size_t out_row = static_cast<size_t>(out_w) * pixel_bytes;
  std::vector<uint8_t> out(image->pixels.size());
  // Walk the stored pixels and place each where the table in the header says.
  for (int y = 0; y < h; ++y) {
    const uint8_t* src = image->pixels.data() + static_cast<size_t>(y) * in_row;
    for (int x = 0; x < w; ++x, src += pixel_bytes) {
      int ox = x;
      int oy = y;
      switch (orientation) {
        case 2:
          ox = w - 1 - x;
          break;
        case 3:
          ox = w - 1 - x;
          oy = h - 1 - y;
          break;
        case 4:
          oy = h - 1 - y;
          break;
        case 5:
          ox = y;
          oy = x;
          break;
        case 6:
          ox = h - 1 - y;
          oy = x;
          break;
        case 7:
          ox = h - 1 - y;
          oy = w - 1 - x;
          break;
        case 8:
          ox = y;
          oy = w - 1 - x;
          break;
      }
      std::memcpy(
          out.data() + static_cast<size_t>(oy) * out_row + static_cast<size_t>(ox) * pixel_bytes,
          src, pixel_bytes);
    }
  }
  image->pixels = std::move(out);
  image->width = out_w;
  image->height = out_h;
}

}  // namespace likeness::image
