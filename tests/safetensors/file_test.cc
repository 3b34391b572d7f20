// The reader and the writer together: every dtype round-trips, views are zero-copy and safe to
// modify, F8 is widened where libtorch lacks it, odd files still load.
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "common/safetensors/float8.h"
#include "common/safetensors/layout.h"
#include "common/safetensors/safetensors_file.h"
#include "common/safetensors/torch_dtype.h"
#include "common/safetensors/writer.h"
#include "common/torch_compat.h"
#include "gtest/gtest.h"
#include "tests/safetensors/test_util.h"
#include "tests/test_data.h"

namespace likeness::safetensors {
namespace {

using testing::IsErrorNaming;
using testing::MakeFileBytes;
using testing::ReadBytes;
using testing::WriteBytes;

// One tensor of every dtype libtorch can hold, with values that expose byte-order, sign and
// rounding mistakes (not just zeros and ones).
NamedTensors EveryDType() {
  const float inf = std::numeric_limits<float>::infinity();
  return {
      {"f64", torch::tensor({1.0 / 3.0, -1e300, 5e-324}, torch::kFloat64)},
      {"f32", torch::tensor({{1.5f, -2.25f, 3.0e38f}, {-0.0f, inf, 1e-45f}})},
      // 65504 is half's max; 6e-8 a subnormal; bf16 keeps float's range with 8 mantissa bits.
      {"f16", torch::tensor({65504.0f, -6e-8f, 0.333f, -inf}).to(torch::kHalf)},
      {"bf16", torch::tensor({3.0e38f, -1.0f / 3.0f, 1e-38f, 7.0f}).to(torch::kBFloat16)},
      {"i64", torch::tensor({std::numeric_limits<int64_t>::min(), int64_t{-1},
                             std::numeric_limits<int64_t>::max()})},
      {"i32",
       torch::tensor({std::numeric_limits<int32_t>::min(), 7, std::numeric_limits<int32_t>::max()})
           .to(torch::kInt32)},
      {"i16", torch::tensor({-32768, 1, 32767}).to(torch::kInt16)},
      {"i8", torch::tensor({-128, 0, 127}).to(torch::kInt8)},
      {"u8", torch::tensor({0, 128, 255}).to(torch::kUInt8)},
      {"bool", torch::tensor({true, false, true, true})},
      {"scalar", torch::tensor(2.5)},
      {"empty", torch::zeros({0, 4})},
  };
}

// Equal bit patterns (so -0.0, NaN payloads and infinities count) with equal dtype and shape.
::testing::AssertionResult BitEqual(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type()) {
    return ::testing::AssertionFailure() << a.scalar_type() << " vs " << b.scalar_type();
  }
  if (!a.sizes().equals(b.sizes())) {
    return ::testing::AssertionFailure() << a.sizes() << " vs " << b.sizes();
  }
  const torch::Tensor ca = a.contiguous();
  const torch::Tensor cb = b.contiguous();
  if (std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) != 0) {
    return ::testing::AssertionFailure() << "bytes differ";
  }
  return ::testing::AssertionSuccess();
}

bool InsideMapping(const SafetensorsFile& file, const torch::Tensor& t) {
  const char* p = static_cast<const char*>(t.data_ptr());
  const absl::string_view bytes = file.bytes();
  return p >= bytes.data() && p + t.nbytes() <= bytes.data() + bytes.size();
}

TEST(SafetensorsFileTest, EveryDTypeRoundTripsWithMetadata) {
  const std::string path = likeness::testing::MakeTestTempDir("st_roundtrip") + "/all.safetensors";
  const NamedTensors tensors = EveryDType();
  const std::map<std::string, std::string> metadata = {{"format", "pt"},
                                                       {"unicode", "caf\xc3\xa9"}};
  ASSERT_TRUE(WriteSafetensors(path, tensors, metadata).ok());

  absl::StatusOr<std::shared_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->metadata(), metadata);
  EXPECT_EQ((*file)->Names().size(), tensors.size());
  EXPECT_EQ((*file)->header().data_offset() % kHeaderAlignment, 0u);
  for (const auto& [name, expected] : tensors) {
    SCOPED_TRACE(name);
    EXPECT_TRUE((*file)->Contains(name));
    absl::StatusOr<torch::Tensor> loaded = (*file)->Get(name);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_TRUE(BitEqual(*loaded, expected));
    EXPECT_FALSE(loaded->requires_grad());
    EXPECT_TRUE(loaded->is_contiguous());
    // Written by our writer, every tensor is aligned, so every non-empty one is a view.
    if (expected.numel() > 0) {
      EXPECT_TRUE(InsideMapping(**file, *loaded));
    }
  }
}

TEST(SafetensorsFileTest, ViewsOutliveTheFileAndInPlaceOpsNeverReachTheDisk) {
  const std::string path = likeness::testing::MakeTestTempDir("st_cow") + "/cow.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, {{"w", torch::arange(1024, torch::kFloat32)}}).ok());
  const std::string before = ReadBytes(path);
  torch::Tensor view;
  {
    absl::StatusOr<std::shared_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
    ASSERT_TRUE(file.ok()) << file.status();
    view = *(*file)->Get("w");
    ASSERT_TRUE(InsideMapping(**file, view));
  }  // The SafetensorsFile handle is gone; the view's deleter keeps the mapping.
  EXPECT_EQ(view[1000].item<float>(), 1000.0f);
  view.mul_(-1.0f);  // Would crash on a read-only mapping; must not reach the file.
  EXPECT_EQ(view[1000].item<float>(), -1000.0f);
  EXPECT_EQ(ReadBytes(path), before);
  absl::StatusOr<std::shared_ptr<SafetensorsFile>> again = SafetensorsFile::Open(path);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->Get("w")->index({1000}).item<float>(), 1000.0f);
}

TEST(SafetensorsFileTest, MisalignedDataIsCopiedCorrectly) {
  // An unpadded header as old writers made: the F32 data starts at an odd file offset.
  const std::string json = R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})";
  ASSERT_NE((8 + json.size()) % 4, 0u);
  const float values[3] = {1.25f, -7.5f, 1e10f};
  const std::string path = likeness::testing::MakeTestTempDir("st_misaligned") + "/m.safetensors";
  WriteBytes(path,
             MakeFileBytes(json, absl::string_view(reinterpret_cast<const char*>(values), 12)));
  absl::StatusOr<std::shared_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  absl::StatusOr<torch::Tensor> w = (*file)->Get("w");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_FALSE(InsideMapping(**file, *w));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(w->data_ptr()) % 4, 0u);
  EXPECT_TRUE(BitEqual(*w, torch::tensor({1.25f, -7.5f, 1e10f})));
}

// Every one of the 256 codes of both F8 formats, in a file written through the torch-free layout
// (libtorch 1.13 cannot make float8 tensors to hand to the writer).
TEST(SafetensorsFileTest, Float8LoadsAsFloat8OrWidensToFloat32) {
  std::string codes(256, '\0');
  for (int i = 0; i < 256; ++i) codes[i] = static_cast<char>(i);
  absl::StatusOr<Layout> layout =
      PlanLayout({{"e4m3", DType::kF8E4M3, {16, 16}}, {"e5m2", DType::kF8E5M2, {256}}}, {}, "f8");
  ASSERT_TRUE(layout.ok()) << layout.status();
  const std::string path = likeness::testing::MakeTestTempDir("st_f8") + "/f8.safetensors";
  WriteBytes(path, layout->prefix + codes + codes);
  absl::StatusOr<std::shared_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  for (const bool e4m3 : {true, false}) {
    const std::string name = e4m3 ? "e4m3" : "e5m2";
    SCOPED_TRACE(name);
    absl::StatusOr<torch::Tensor> loaded = (*file)->Get(name);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ(loaded->scalar_type(), LoadedScalarType(e4m3 ? DType::kF8E4M3 : DType::kF8E5M2));
    EXPECT_EQ(loaded->numel(), 256);
    if (compat::kHasFloat8) {
      EXPECT_TRUE(InsideMapping(**file, *loaded));  // a view, like any other dtype
    } else {
      EXPECT_EQ(loaded->scalar_type(), torch::kFloat32);
      EXPECT_FALSE(InsideMapping(**file, *loaded));
    }
    // Either way, as float32 the values are the format's, including libtorch's own conversion
    // where it has float8 (a cross-check of the decode tables).
    const torch::Tensor widened = loaded->to(torch::kFloat32).contiguous().view({-1});
    const float* got = widened.data_ptr<float>();
    for (int i = 0; i < 256; ++i) {
      const float want = e4m3 ? DecodeFloat8E4M3(static_cast<uint8_t>(i))
                              : DecodeFloat8E5M2(static_cast<uint8_t>(i));
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(got[i])) << i;
      } else {
        EXPECT_EQ(got[i], want) << i;
        EXPECT_EQ(std::signbit(got[i]), std::signbit(want)) << i;
      }
    }
  }
  // Where libtorch has float8, the writer stores float8 tensors and the bytes survive.
  if (compat::kHasFloat8) {
    const std::string again = path + ".rewritten";
    ASSERT_TRUE(
        WriteSafetensors(again, {{"e4m3", *(*file)->Get("e4m3")}, {"e5m2", *(*file)->Get("e5m2")}})
            .ok());
    EXPECT_EQ(ReadBytes(again), ReadBytes(path));
  }
}

TEST(SafetensorsFileTest, BoolBytesOtherThanZeroOrOneAreDataLoss) {
  const std::string json = R"({"mask":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})";
  const std::string path = likeness::testing::MakeTestTempDir("st_bool") + "/b.safetensors";
  WriteBytes(path, MakeFileBytes(json, std::string("\x01\x00\x02", 3)));
  absl::StatusOr<std::shared_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_TRUE(
      IsErrorNaming((*file)->Get("mask").status(), absl::StatusCode::kDataLoss, path, "mask"));
}

TEST(SafetensorsFileTest, MissingFileOrTensorIsNotFound) {
  const std::string dir = likeness::testing::MakeTestTempDir("st_missing");
  EXPECT_TRUE(IsErrorNaming(SafetensorsFile::Open(dir + "/nope.safetensors").status(),
                            absl::StatusCode::kNotFound, dir + "/nope.safetensors", ""));
  EXPECT_TRUE(IsErrorNaming(SafetensorsFile::Open(dir + "/no/such/dir.safetensors").status(),
                            absl::StatusCode::kNotFound, dir + "/no/such/dir.safetensors", ""));
  const std::string path = dir + "/one.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, {{"present", torch::ones({2})}}).ok());
  absl::StatusOr<std::shared_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok());
  EXPECT_FALSE((*file)->Contains("absent"));
  EXPECT_TRUE(
      IsErrorNaming((*file)->Get("absent").status(), absl::StatusCode::kNotFound, path, "absent"));
}

TEST(SafetensorsFileTest, EmptyFilesAndFoldersAreRejected) {
  const std::string dir = likeness::testing::MakeTestTempDir("st_empty");
  WriteBytes(dir + "/empty.safetensors", "");
  EXPECT_TRUE(IsErrorNaming(SafetensorsFile::Open(dir + "/empty.safetensors").status(),
                            absl::StatusCode::kDataLoss, dir + "/empty.safetensors", ""));
  EXPECT_TRUE(IsErrorNaming(SafetensorsFile::Open(dir).status(), absl::StatusCode::kInvalidArgument,
                            dir, ""));
  // The smallest valid file: no tensors at all.
  WriteBytes(dir + "/none.safetensors", MakeFileBytes("{}"));
  absl::StatusOr<std::shared_ptr<SafetensorsFile>> none =
      SafetensorsFile::Open(dir + "/none.safetensors");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE((*none)->Names().empty());
}

}  // namespace
}  // namespace likeness::safetensors

namespace likeness::safetensors {
namespace {

TEST(ReleaseMappedPagesTest, DropsPagesOfMappedViewsAndRefusesHeapTensors) {
  constexpr int64_t kFloats = int64_t{1} << 20;  // 4 MiB: many whole pages
  const std::string path = ::likeness::testing::MakeTestTempDir("release_pages") + "/w.safetensors";
  torch::Tensor original = torch::arange(kFloats, torch::kFloat32);
  ASSERT_TRUE(WriteSafetensors(path, {{"w", original}}).ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  torch::Tensor view = *(*file)->Get("w");
  torch::Tensor copy = view.clone();
  EXPECT_TRUE(ReleaseMappedPages(view));
  // The view still reads the file's values: dropped pages fault back in from the file.
  EXPECT_TRUE(view.equal(original));
  EXPECT_FALSE(ReleaseMappedPages(copy));  // heap memory: never touched
  EXPECT_TRUE(copy.equal(original));
  EXPECT_FALSE(ReleaseMappedPages(torch::Tensor()));
}

}  // namespace
}  // namespace likeness::safetensors
