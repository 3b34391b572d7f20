// EXIF orientation: phones store the sensor's pixels as read out and record in tag 0x0112
// how to turn them so they stand upright. Values (TIFF 6.0 / EXIF 2.3), as the transform that
// makes the stored pixels upright:
//   1 none            2 mirror left-right       3 rotate 180          4 mirror top-bottom
//   5 transpose       6 rotate 90 clockwise     7 transverse          8 rotate 90 counter-clockwise
// 5-8 swap width and height. Stored pixel (x, y) of a W x H image lands at:
//   1 (x, y)   2 (W-1-x, y)   3 (W-1-x, H-1-y)   4 (x, H-1-y)
//   5 (y, x)   6 (H-1-y, x)   7 (H-1-y, W-1-x)   8 (y, W-1-x)
#ifndef LIKENESS_WORKER_IMAGE_EXIF_ORIENTATION_H_
#define LIKENESS_WORKER_IMAGE_EXIF_ORIENTATION_H_

#include "absl/strings/string_view.h"
#include "worker/image/image.h"

namespace likeness::image {

inline constexpr int kOrientationNormal = 1;

// The orientation recorded in an EXIF block (a TIFF structure, with or without the
// "Exif\0\0" prefix JPEG's APP1 uses), read with libexif. Missing, malformed or out-of-range
// values give kOrientationNormal: a bad tag must not cost the user their photo.
int ReadExifOrientation(absl::string_view exif);

// Turns `image` upright for `orientation` (1-8; anything else leaves it alone). Works for every
// channel count and bit depth.
void ApplyExifOrientation(int orientation, Image* image);

}  // namespace likeness::image

#endif  // LIKENESS_WORKER_IMAGE_EXIF_ORIENTATION_H_
