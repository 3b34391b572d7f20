// The torch-free layer: dtypes, float8 decoding, byte sizes and the writer's layout plan.
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "common/safetensors/dtype.h"
#include "common/safetensors/float8.h"
#include "common/safetensors/header.h"
#include "common/safetensors/layout.h"
#include "gtest/gtest.h"
#include "tests/safetensors/test_util.h"

namespace likeness::safetensors {
namespace {

using testing::IsConsistent;
using testing::IsErrorNaming;

TEST(DTypeTest, NamesRoundTripAndSizesMatchTheFormat) {
  const std::vector<std::pair<std::string, size_t>> expected = {
      {"BOOL", 1}, {"U8", 1},   {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2},
      {"F16", 2},  {"BF16", 2}, {"I32", 4}, {"F32", 4},     {"F64", 8},     {"I64", 8}};
  ASSERT_EQ(kAllDTypes.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const DType dtype = kAllDTypes[i];
    EXPECT_EQ(DTypeName(dtype), expected[i].first);
    EXPECT_EQ(DTypeSize(dtype), expected[i].second) << expected[i].first;
    absl::StatusOr<DType> parsed = ParseDType(expected[i].first);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, dtype);
    // The writer's order relies on the enum ascending by size.
    if (i > 0) {
      EXPECT_GE(DTypeSize(dtype), DTypeSize(kAllDTypes[i - 1])) << expected[i].first;
    }
  }
}

TEST(DTypeTest, UnknownNamesAreInvalidArgument) {
  for (const char* name : {"", "f32", "F128", "U16", "U32", "U64", "F8_E4M3FN", "C64", " F32"}) {
    absl::StatusOr<DType> parsed = ParseDType(name);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << "'" << name << "'";
  }
}

TEST(Float8Test, E4M3KnownValues) {
  EXPECT_EQ(DecodeFloat8E4M3(0x00), 0.0f);
  EXPECT_TRUE(std::signbit(DecodeFloat8E4M3(0x80)));
  EXPECT_EQ(DecodeFloat8E4M3(0x38), 1.0f);  // exponent 7 = bias
  EXPECT_EQ(DecodeFloat8E4M3(0xB8), -1.0f);
  EXPECT_EQ(DecodeFloat8E4M3(0x3C), 1.5f);
  EXPECT_EQ(DecodeFloat8E4M3(0x7E), 448.0f);                // largest finite
  EXPECT_EQ(DecodeFloat8E4M3(0x78), 256.0f);                // exponent 15 is still finite in "fn"
  EXPECT_EQ(DecodeFloat8E4M3(0x08), std::ldexp(1.0f, -6));  // smallest normal
  EXPECT_EQ(DecodeFloat8E4M3(0x01), std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_EQ(DecodeFloat8E4M3(0x07), 7 * std::ldexp(1.0f, -9));
  EXPECT_TRUE(std::isnan(DecodeFloat8E4M3(0x7F)));
  EXPECT_TRUE(std::isnan(DecodeFloat8E4M3(0xFF)));
  int nans = 0;
  for (int i = 0; i < 256; ++i) {
    const float v = DecodeFloat8E4M3(static_cast<uint8_t>(i));
    EXPECT_FALSE(std::isinf(v)) << i;
    nans += std::isnan(v);
  }
  EXPECT_EQ(nans, 2);
}

TEST(Float8Test, E5M2KnownValues) {
  EXPECT_EQ(DecodeFloat8E5M2(0x00), 0.0f);
  EXPECT_EQ(DecodeFloat8E5M2(0x3C), 1.0f);  // exponent 15 = bias
  EXPECT_EQ(DecodeFloat8E5M2(0xBC), -1.0f);
  EXPECT_EQ(DecodeFloat8E5M2(0x3E), 1.5f);
  EXPECT_EQ(DecodeFloat8E5M2(0x7B), 57344.0f);               // largest finite
  EXPECT_EQ(DecodeFloat8E5M2(0x04), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(DecodeFloat8E5M2(0x01), std::ldexp(1.0f, -16));  // smallest subnormal
  EXPECT_EQ(DecodeFloat8E5M2(0x7C), std::numeric_limits<float>::infinity());
  EXPECT_EQ(DecodeFloat8E5M2(0xFC), -std::numeric_limits<float>::infinity());
  for (const uint8_t nan : {0x7D, 0x7E, 0x7F, 0xFD, 0xFE, 0xFF}) {
    EXPECT_TRUE(std::isnan(DecodeFloat8E5M2(nan))) << int{nan};
  }
}

// E5M2 is the top byte of an IEEE half: decoding must agree with widening that half.
TEST(Float8Test, E5M2IsTheHighByteOfAHalf) {
  for (int i = 0; i < 256; ++i) {
    const uint16_t half = static_cast<uint16_t>(i << 8);
    const int exponent = (half >> 10) & 0x1F;
    const int mantissa = half & 0x3FF;
    float expected;
    if (exponent == 0x1F) {
      expected = mantissa ? std::numeric_limits<float>::quiet_NaN()
                          : std::numeric_limits<float>::infinity();
    } else if (exponent == 0) {
      expected = std::ldexp(static_cast<float>(mantissa), -24);
    } else {
      expected = std::ldexp(static_cast<float>(1024 + mantissa), exponent - 25);
    }
    if (half & 0x8000) expected = -expected;
    const float actual = DecodeFloat8E5M2(static_cast<uint8_t>(i));
    if (std::isnan(expected)) {
      EXPECT_TRUE(std::isnan(actual)) << i;
    } else {
      EXPECT_EQ(actual, expected) << i;
    }
  }
}

TEST(Float8Test, PositiveCodesAreMonotonic) {
  for (int i = 1; i < 0x7F; ++i) {
    EXPECT_LT(DecodeFloat8E4M3(static_cast<uint8_t>(i - 1)),
              DecodeFloat8E4M3(static_cast<uint8_t>(i)));
  }
  for (int i = 1; i <= 0x7C; ++i) {
    EXPECT_LT(DecodeFloat8E5M2(static_cast<uint8_t>(i - 1)),
              DecodeFloat8E5M2(static_cast<uint8_t>(i)));
  }
}

TEST(TensorByteSizeTest, ProductsAndOverflow) {
  EXPECT_EQ(*TensorByteSize(DType::kF32, {}), 4u);  // a scalar
  EXPECT_EQ(*TensorByteSize(DType::kBF16, {2, 3}), 12u);
  EXPECT_EQ(*TensorByteSize(DType::kI64, {0, 5}), 0u);
  EXPECT_FALSE(TensorByteSize(DType::kF32, {-1}).ok());
  const int64_t big = int64_t{1} << 40;
  EXPECT_FALSE(TensorByteSize(DType::kU8, {big, big}).ok());           // element count overflows
  EXPECT_FALSE(TensorByteSize(DType::kU8, {big, big, 0}).ok());        // checked left to right
  EXPECT_FALSE(TensorByteSize(DType::kF64, {int64_t{1} << 62}).ok());  // byte count overflows
}

// Byte-exact expectations from the reference implementation's own tests
// (safetensors/src/tensor.rs).
TEST(PlanLayoutTest, MatchesTheReferenceBytes) {
  absl::StatusOr<Layout> layout = PlanLayout({{"attn.0", DType::kF32, {1, 2, 3}}}, {}, "x");
  ASSERT_TRUE(layout.ok()) << layout.status();
  const std::string json = R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
  EXPECT_EQ(layout->prefix, testing::MakeFileBytes(json));  // 64 bytes: no padding needed
  EXPECT_EQ(layout->header.data_offset(), 72u);

  absl::StatusOr<Layout> empty = PlanLayout({}, {}, "x");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->prefix, testing::MakeFileBytes("{}      "));

  absl::StatusOr<Layout> meta = PlanLayout({}, {{"framework", "pt"}}, "x");
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta->prefix, testing::MakeFileBytes(R"({"__metadata__":{"framework":"pt"}})"
                                                 "     "));
}

TEST(PlanLayoutTest, OrdersByDescendingDTypeThenNameAndAligns) {
  std::vector<TensorSpec> specs = {
      {"b_bool", DType::kBool, {3}}, {"a_f16", DType::kF16, {3}}, {"z_f64", DType::kF64, {1}},
      {"a_i64", DType::kI64, {1}},   {"c_f32", DType::kF32, {1}}, {"a_i32", DType::kI32, {1}},
      {"a_bf16", DType::kBF16, {1}}, {"empty", DType::kF32, {0}}, {"a_u8", DType::kU8, {1}},
  };
  absl::StatusOr<Layout> layout = PlanLayout(specs, {{"k", "v"}}, "plan.safetensors");
  ASSERT_TRUE(layout.ok()) << layout.status();
  std::vector<std::string> order;
  for (const TensorInfo& t : layout->header.tensors()) {
    order.push_back(t.name);
    EXPECT_EQ((layout->header.data_offset() + t.data_begin) % DTypeSize(t.dtype), 0u) << t.name;
  }
  // The reference's enum order: I64 > F64 > F32 > I32 > BF16 > F16 > ... > U8 > BOOL.
  EXPECT_EQ(order, (std::vector<std::string>{"a_i64", "z_f64", "c_f32", "empty", "a_i32", "a_bf16",
                                             "a_f16", "a_u8", "b_bool"}));
  EXPECT_EQ(layout->prefix.size() % kHeaderAlignment, 0u);

  // What the plan promises is what the parser reads back.
  std::string file = layout->prefix + std::string(layout->header.data_size(), '\0');
  absl::StatusOr<Header> parsed = ParseHeader(file, "plan.safetensors");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(IsConsistent(*parsed, file.size()));
  EXPECT_EQ(parsed->metadata(), layout->header.metadata());
  ASSERT_EQ(parsed->tensors().size(), specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    const TensorInfo& a = parsed->tensors()[i];
    const TensorInfo& b = layout->header.tensors()[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.dtype, b.dtype);
    EXPECT_EQ(a.shape, b.shape);
    EXPECT_EQ(a.data_begin, b.data_begin);
    EXPECT_EQ(a.data_end, b.data_end);
  }
}

TEST(PlanLayoutTest, RejectsBadSpecsNamingTheTensor) {
  const std::string file = "bad_plan.safetensors";
  EXPECT_TRUE(IsErrorNaming(
      PlanLayout({{"w", DType::kF32, {1}}, {"w", DType::kI8, {1}}}, {}, file).status(),
      absl::StatusCode::kInvalidArgument, file, "w"));
  EXPECT_TRUE(IsErrorNaming(PlanLayout({{kMetadataKey, DType::kF32, {1}}}, {}, file).status(),
                            absl::StatusCode::kInvalidArgument, file, kMetadataKey));
  EXPECT_TRUE(IsErrorNaming(PlanLayout({{"neg", DType::kF32, {2, -1}}}, {}, file).status(),
                            absl::StatusCode::kInvalidArgument, file, "neg"));
  EXPECT_TRUE(IsErrorNaming(
      PlanLayout({{"huge", DType::kF64, {int64_t{1} << 40, int64_t{1} << 40}}}, {}, file).status(),
      absl::StatusCode::kInvalidArgument, file, "huge"));
  EXPECT_TRUE(IsErrorNaming(
      PlanLayout({{"deep", DType::kF32, std::vector<int64_t>(kMaxRank + 1, 1)}}, {}, file).status(),
      absl::StatusCode::kInvalidArgument, file, "deep"));
  EXPECT_TRUE(IsErrorNaming(PlanLayout({{"bad\xff", DType::kF32, {1}}}, {}, file).status(),
                            absl::StatusCode::kInvalidArgument, file, "bad\xff"));
  EXPECT_TRUE(IsErrorNaming(PlanLayout({}, {{"key", "\xc3"}}, file).status(),
                            absl::StatusCode::kInvalidArgument, file, "key"));
  // Two tensors whose sum of sizes overflows although each alone fits.
  const int64_t half = int64_t{1} << 62;
  EXPECT_TRUE(IsErrorNaming(PlanLayout({{"a", DType::kU8, {half}},
                                        {"b", DType::kU8, {half}},
                                        {"c", DType::kU8, {half}},
                                        {"d", DType::kU8, {half}}},
                                       {}, file)
                                .status(),
                            absl::StatusCode::kInvalidArgument, file, "d"));
}

}  // namespace
}  // namespace likeness::safetensors
