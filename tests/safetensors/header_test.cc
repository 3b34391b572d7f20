// Hand-made headers, one per validation rule of common/safetensors/header.h. Each error must carry
// the right code and name the file and the offending tensor (or metadata key).
#include "common/safetensors/header.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/safetensors/test_util.h"

namespace likeness::safetensors {
namespace {

using testing::IsConsistent;
using testing::IsErrorNaming;
using testing::MakeFileBytes;

constexpr char kFile[] = "/data/hand-made.safetensors";
constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
constexpr auto kDataLoss = absl::StatusCode::kDataLoss;

absl::StatusOr<Header> Parse(absl::string_view json, absl::string_view data = "") {
  return ParseHeader(MakeFileBytes(json, data), kFile);
}

// A JSON tensor entry.
std::string Entry(absl::string_view dtype, absl::string_view shape, uint64_t begin, uint64_t end) {
  return absl::StrCat(R"({"dtype":")", dtype, R"(","shape":)", shape, R"(,"data_offsets":[)", begin,
                      ",", end, "]}");
}

TEST(ParseHeaderTest, AcceptsAValidFileInAnyKeyOrder) {
  const std::string json =
      absl::StrCat(R"({"b":)", Entry("I32", "[2]", 8, 16), R"(,"a":)", Entry("F64", "[1]", 0, 8),
                   R"(,"__metadata__":{"format":"pt","note":""}})", "   ");
  const std::string bytes = MakeFileBytes(json, std::string(16, '\x01'));
  absl::StatusOr<Header> header = ParseHeader(bytes, kFile);
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_TRUE(IsConsistent(*header, bytes.size()));
  EXPECT_EQ(header->data_offset(), 8 + json.size());
  EXPECT_EQ(header->data_size(), 16u);
  ASSERT_EQ(header->tensors().size(), 2u);
  EXPECT_EQ(header->tensors()[0].name, "a");  // data order, not key order
  EXPECT_EQ(header->tensors()[1].name, "b");
  const TensorInfo* b = header->Find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, DType::kI32);
  EXPECT_EQ(b->shape, std::vector<int64_t>{2});
  EXPECT_EQ(b->num_elements(), 2u);
  EXPECT_EQ(header->Find("c"), nullptr);
  EXPECT_EQ(header->metadata(),
            (std::map<std::string, std::string>{{"format", "pt"}, {"note", ""}}));
}

TEST(ParseHeaderTest, AcceptsEdgeCasesTheReferenceAccepts) {
  EXPECT_TRUE(Parse("{}").ok());
  EXPECT_TRUE(Parse(R"({"__metadata__":null})").ok());
  EXPECT_TRUE(Parse("{} \t\n ").ok());
  // A scalar, zero-sized tensors sharing an offset, an unpadded header (data misaligned), extra
  // keys in an entry, and an empty name.
  const std::string json =
      absl::StrCat(R"({"s":)", Entry("F32", "[]", 0, 4), R"(,"z1":)", Entry("F32", "[0,3]", 4, 4),
                   R"(,"z2":)", Entry("BOOL", "[0]", 4, 4), R"(,"":)", Entry("U8", "[1]", 4, 5),
                   R"(,"x":{"dtype":"I8","shape":[1],"data_offsets":[5,6],"extra":[1,2]}})");
  absl::StatusOr<Header> header = Parse(json, "abcdef");
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_TRUE(IsConsistent(*header, 8 + json.size() + 6));
  EXPECT_EQ(header->Find("s")->shape.size(), 0u);
  EXPECT_NE(header->Find(""), nullptr);
}

TEST(ParseHeaderTest, Rule1TooShortForTheLength) {
  for (const std::string& bytes :
       {std::string(), std::string("\x02\0\0", 3), std::string(7, '\0')}) {
    EXPECT_TRUE(IsErrorNaming(ParseHeader(bytes, kFile).status(), kDataLoss, kFile, ""));
  }
}

TEST(ParseHeaderTest, Rule2HeaderLengthCap) {
  std::string bytes(8, '\0');
  const uint64_t length = kMaxHeaderBytes + 1;
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((length >> (8 * i)) & 0xFF);
  bytes += "{}";
  absl::Status status = ParseHeader(bytes, kFile).status();
  EXPECT_TRUE(IsErrorNaming(status, kInvalid, kFile, ""));
  EXPECT_NE(status.message().find(std::to_string(kMaxHeaderBytes)), std::string::npos) << status;
  // The largest possible length must not overflow 8 + N.
  EXPECT_TRUE(IsErrorNaming(ParseHeader(std::string(8, '\xff') + "{}", kFile).status(), kInvalid,
                            kFile, ""));
}

TEST(ParseHeaderTest, Rule3HeaderPastTheEnd) {
  std::string bytes = MakeFileBytes("{}");
  bytes[0] = 3;
  EXPECT_TRUE(IsErrorNaming(ParseHeader(bytes, kFile).status(), kDataLoss, kFile, ""));
}

TEST(ParseHeaderTest, Rule4NotAJsonObject) {
  using namespace std::string_literals;
  for (const std::string& json :
       {""s, " {}"s, "[]"s, "\"x\""s, "{"s, "{\"a\":}"s, "{} x"s, "{}\0"s, "{}\0junk"s,
        "{\"a\":\"\0\"}"s, "{}{}"s, "{\"a\":1,}"s, "{\"a\":NaN}"s, "{/*c*/}"s, "{\"\xff\":1}"s,
        "{\"a\":\"\x01\"}"s, "{\"a\":1e999}"s, "nul"s}) {
    EXPECT_TRUE(IsErrorNaming(Parse(json).status(), kInvalid, kFile, "")) << "'" << json << "'";
  }
}

TEST(ParseHeaderTest, Rule4DuplicateKeys) {
  const std::string twice =
      absl::StrCat(R"({"w":)", Entry("U8", "[1]", 0, 1), R"(,"w":)", Entry("U8", "[1]", 1, 2), "}");
  absl::Status status = Parse(twice, "ab").status();
  EXPECT_TRUE(IsErrorNaming(status, kInvalid, kFile, "w"));
  EXPECT_NE(status.message().find("twice"), std::string::npos) << status;

  const std::string inner = R"({"w":{"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]}})";
  EXPECT_TRUE(IsErrorNaming(Parse(inner, "a").status(), kInvalid, kFile, "w"));

  EXPECT_TRUE(
      IsErrorNaming(Parse(R"({"__metadata__":{"k":"1","k":"2"}})").status(), kInvalid, kFile, "k"));
  EXPECT_TRUE(IsErrorNaming(Parse(R"({"__metadata__":{},"__metadata__":{}})").status(), kInvalid,
                            kFile, kMetadataKey));
}

TEST(ParseHeaderTest, Rule5MetadataMustMapStringsToStrings) {
  for (const char* value : {"1", "[]", "\"s\"", "true"}) {
    EXPECT_TRUE(IsErrorNaming(Parse(absl::StrCat(R"({"__metadata__":)", value, "}")).status(),
                              kInvalid, kFile, ""))
        << value;
  }
  for (const char* value : {"1", "null", "{}", "[\"a\"]", "false"}) {
    absl::Status status =
        Parse(absl::StrCat(R"({"__metadata__":{"ok":"yes","bad_key":)", value, "}}")).status();
    EXPECT_TRUE(IsErrorNaming(status, kInvalid, kFile, "bad_key")) << value;
  }
}

TEST(ParseHeaderTest, Rule6EntryFields) {
  const char* const bad_entries[] = {
      R"(1)",
      R"([])",
      R"({"shape":[1],"data_offsets":[0,1]})",
      R"({"dtype":"U8","data_offsets":[0,1]})",
      R"({"dtype":"U8","shape":[1]})",
      R"({"dtype":"U9","shape":[1],"data_offsets":[0,1]})",
      R"({"dtype":8,"shape":[1],"data_offsets":[0,1]})",
      R"({"dtype":"U8","shape":1,"data_offsets":[0,1]})",
      R"({"dtype":"U8","shape":[1.0],"data_offsets":[0,1]})",
      R"({"dtype":"U8","shape":["1"],"data_offsets":[0,1]})",
      R"({"dtype":"U8","shape":[null],"data_offsets":[0,1]})",
      R"({"dtype":"U8","shape":[-1],"data_offsets":[0,1]})",
      R"({"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,1]})",
      R"({"dtype":"U8","shape":[1],"data_offsets":[0]})",
      R"({"dtype":"U8","shape":[1],"data_offsets":[0,1,1]})",
      R"({"dtype":"U8","shape":[1],"data_offsets":{"0":1}})",
      R"({"dtype":"U8","shape":[1],"data_offsets":[-1,0]})",
      R"({"dtype":"U8","shape":[1],"data_offsets":[0,1.0]})",
      R"({"dtype":"U8","shape":[1],"data_offsets":[0,18446744073709551616]})",
      R"({"dtype":"U8","shape":[1],"data_offsets":[1,0]})",
  };
  for (const char* entry : bad_entries) {
    absl::Status status = Parse(absl::StrCat(R"({"bad.weight":)", entry, "}"), "x").status();
    EXPECT_TRUE(IsErrorNaming(status, kInvalid, kFile, "bad.weight")) << entry;
  }
  std::string shape = "[1";
  for (size_t i = 1; i <= kMaxRank; ++i) shape += ",1";
  shape += "]";
  EXPECT_TRUE(
      IsErrorNaming(Parse(absl::StrCat(R"({"deep":)", Entry("U8", shape, 0, 1), "}"), "x").status(),
                    kInvalid, kFile, "deep"));
}

// Nesting far deeper than any recursive JSON walk could survive on the stack must still give an
// error (or, where the reference ignores the key, a valid header), never a crash.
TEST(ParseHeaderTest, DeeplyNestedValuesDoNotExhaustTheStack) {
  constexpr int kDepth = 200'000;
  const std::string deep = std::string(kDepth, '[') + std::string(kDepth, ']');
  const std::string deep_object = [&] {
    std::string s;
    for (int i = 0; i < kDepth; ++i) s += R"({"k":)";
    return s + "1" + std::string(kDepth, '}');
  }();
  for (const std::string& entry :
       {absl::StrCat(R"({"dtype":"U8","shape":[)", deep, R"(],"data_offsets":[0,1]})"),
        absl::StrCat(R"({"dtype":"U8","shape":[1],"data_offsets":)", deep, "}"),
        absl::StrCat(R"({"dtype":)", deep_object, R"(,"shape":[1],"data_offsets":[0,1]})")}) {
    EXPECT_TRUE(IsErrorNaming(Parse(absl::StrCat(R"({"nested":)", entry, "}"), "x").status(),
                              kInvalid, kFile, "nested"));
  }
  EXPECT_TRUE(
      IsErrorNaming(Parse(absl::StrCat(R"({"__metadata__":{"deep_key":)", deep, "}}")).status(),
                    kInvalid, kFile, "deep_key"));
  absl::StatusOr<Header> ignored =
      Parse(absl::StrCat(R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":)",
                         deep_object, "}}"),
            "x");
  EXPECT_TRUE(ignored.ok()) << ignored.status();
}

TEST(ParseHeaderTest, Rule7SizeMustMatchAndNotOverflow) {
  EXPECT_TRUE(IsErrorNaming(
      Parse(absl::StrCat(R"({"m":)", Entry("F32", "[2]", 0, 4), "}"), "abcd").status(), kInvalid,
      kFile, "m"));
  EXPECT_TRUE(IsErrorNaming(
      Parse(absl::StrCat(R"({"m":)", Entry("F16", "[2,2]", 0, 4), "}"), "abcd").status(), kInvalid,
      kFile, "m"));
  // 2^32 * 2^32 overflows; so does 2^62 elements of 8 bytes; so does an overflow before a 0 dim.
  for (const char* shape :
       {"[4294967296,4294967296]", "[4611686018427387904]", "[4294967296,4294967296,0]"}) {
    absl::Status status = Parse(absl::StrCat(R"({"o":)", Entry("F64", shape, 0, 0), "}")).status();
    EXPECT_TRUE(IsErrorNaming(status, kInvalid, kFile, "o")) << shape;
    EXPECT_NE(status.message().find("overflow"), std::string::npos) << status;
  }
}

TEST(ParseHeaderTest, Rule8OffsetsPastTheDataAreDataLoss) {
  EXPECT_TRUE(
      IsErrorNaming(Parse(absl::StrCat(R"({"t":)", Entry("U8", "[4]", 0, 4), "}"), "abc").status(),
                    kDataLoss, kFile, "t"));
  EXPECT_TRUE(IsErrorNaming(
      Parse(absl::StrCat(R"({"t":)", Entry("U8", "[0]", 100, 100), "}"), "abc").status(), kDataLoss,
      kFile, "t"));
}

TEST(ParseHeaderTest, Rule9DataMustBeTiledExactly) {
  // Gap at the start.
  EXPECT_TRUE(IsErrorNaming(
      Parse(absl::StrCat(R"({"late":)", Entry("U8", "[2]", 1, 3), "}"), "abc").status(), kInvalid,
      kFile, "late"));
  // Gap between two tensors: the error names the one after the gap.
  EXPECT_TRUE(IsErrorNaming(Parse(absl::StrCat(R"({"a":)", Entry("U8", "[1]", 0, 1), R"(,"b":)",
                                               Entry("U8", "[1]", 2, 3), "}"),
                                  "abc")
                                .status(),
                            kInvalid, kFile, "b"));
  // Overlap: the error names both.
  absl::Status overlap = Parse(absl::StrCat(R"({"a":)", Entry("U8", "[2]", 0, 2), R"(,"b":)",
                                            Entry("U8", "[2]", 1, 3), "}"),
                               "abc")
                             .status();
  EXPECT_TRUE(IsErrorNaming(overlap, kInvalid, kFile, "b"));
  EXPECT_TRUE(IsErrorNaming(overlap, kInvalid, kFile, "a"));
  // Two tensors on the same bytes (aliasing).
  EXPECT_TRUE(IsErrorNaming(Parse(absl::StrCat(R"({"a":)", Entry("U8", "[2]", 0, 2), R"(,"b":)",
                                               Entry("U8", "[2]", 0, 2), "}"),
                                  "ab")
                                .status(),
                            kInvalid, kFile, "b"));
  // A zero-sized tensor inside another one.
  EXPECT_TRUE(IsErrorNaming(Parse(absl::StrCat(R"({"a":)", Entry("U8", "[4]", 0, 4), R"(,"z":)",
                                               Entry("U8", "[0]", 2, 2), "}"),
                                  "abcd")
                                .status(),
                            kInvalid, kFile, "z"));
  // Bytes after the last tensor, and data with no tensors at all.
  EXPECT_TRUE(IsErrorNaming(
      Parse(absl::StrCat(R"({"last":)", Entry("U8", "[2]", 0, 2), "}"), "abc").status(), kInvalid,
      kFile, "last"));
  EXPECT_TRUE(IsErrorNaming(Parse("{}", "abc").status(), kInvalid, kFile, ""));
}

}  // namespace
}  // namespace likeness::safetensors
