#include "common/safetensors/header.h"

#include <algorithm>
#include <limits>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace likeness::safetensors {
namespace {

using Json = nlohmann::json;

constexpr char kDTypeKey[] = "dtype";
constexpr char kShapeKey[] = "shape";
constexpr char kDataOffsetsKey[] = "data_offsets";
constexpr uint64_t kMaxDim = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
// Longest quoted JSON value in an error message; a hostile header may hold a 100 MB string.
constexpr size_t kMaxQuotedChars = 48;
// Longest JSON parser message kept; nlohmann quotes the last token read, which can be huge.
constexpr size_t kMaxParserMessageChars = 240;

// Every message starts with the file so a caller loading many shards knows which one is bad.
absl::Status FileError(absl::StatusCode code, absl::string_view file, absl::string_view what) {
  return absl::Status(code, absl::StrCat(file, ": ", what));
}

absl::Status TensorError(absl::StatusCode code, absl::string_view file, absl::string_view tensor,
                         absl::string_view what) {
  return absl::Status(code, absl::StrCat(file, ": tensor '", tensor, "': ", what));
}

// A JSON value for an error message. Containers are only named: dump() recurses, and a hostile
// header can nest arrays deeper than the stack.
std::string Describe(const Json& value) {
  if (value.is_structured()) return absl::StrCat("a JSON ", value.type_name());
  std::string text = value.dump();
  if (text.size() > kMaxQuotedChars) text = absl::StrCat(text.substr(0, kMaxQuotedChars), "...");
  return text;
}

std::string OffsetsString(uint64_t begin, uint64_t end) {
  return absl::StrCat("data_offsets [", begin, ", ", end, "]");
}

// Rule 4's duplicate-key check. nlohmann::json keeps the last of two equal keys without a word,
// so the parser callback records every key per open object and remembers the first repeat.
class DuplicateKeyFinder {
 public:
  bool OnEvent(int depth, Json::parse_event_t event, const Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
        open_objects_.emplace_back();
        break;
      case Json::parse_event_t::object_end:
        open_objects_.pop_back();
        break;
      case Json::parse_event_t::key: {
        const std::string& key = parsed.get_ref<const std::string&>();
        if (depth == 1) top_level_key_ = key;
        if (!open_objects_.back().insert(key).second && error_.empty()) {
          error_ = Explain(depth, key);
          error_entry_ = depth == 1 ? key : top_level_key_;
        }
        break;
      }
      default:
        break;
    }
    return true;  // Keep every value; the checks after parsing need them.
  }

  bool found() const { return !error_.empty(); }
  const std::string& entry() const { return error_entry_; }
  const std::string& error() const { return error_; }

 private:
  std::string Explain(int depth, const std::string& key) const {
    if (depth == 1) {
      return key == kMetadataKey ? absl::StrCat("'", kMetadataKey, "' appears twice")
                                 : "the tensor name appears twice";
    }
    return absl::StrCat("key '", key, "' appears twice in its entry");
  }

  std::vector<std::set<std::string>> open_objects_;
  std::string top_level_key_;
  std::string error_;
  std::string error_entry_;
};

absl::StatusOr<Json> ParseJson(absl::string_view text, absl::string_view file) {
  // The reference rejects a header that does not open with '{'; so do we, before any parsing.
  if (text.empty() || text.front() != '{') {
    return FileError(absl::StatusCode::kInvalidArgument, file,
                     "the safetensors header does not start with '{'");
  }
  // nlohmann's lexer takes a NUL byte for the end of input and would ignore whatever follows
  // it. JSON never holds a raw NUL (strings escape it), so refuse it up front.
  if (const size_t nul = text.find('\0'); nul != absl::string_view::npos) {
    return FileError(absl::StatusCode::kInvalidArgument, file,
                     absl::StrCat("the safetensors header has a NUL byte at offset ", nul));
  }
  DuplicateKeyFinder duplicates;
  Json json;
  try {
    json = Json::parse(
        text.begin(), text.end(),
        [&duplicates](int depth, Json::parse_event_t event, Json& parsed) {
          return duplicates.OnEvent(depth, event, parsed);
        },
        /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const Json::exception& e) {
    const absl::string_view what = e.what();
    return FileError(absl::StatusCode::kInvalidArgument, file,
                     absl::StrCat("the safetensors header is not valid JSON: ",
                                  what.substr(0, kMaxParserMessageChars),
                                  what.size() > kMaxParserMessageChars ? "..." : ""));
  }
  if (duplicates.found()) {
    if (duplicates.entry() == kMetadataKey) {
      return FileError(absl::StatusCode::kInvalidArgument, file,
                       absl::StrCat(kMetadataKey, ": ", duplicates.error()));
    }
    return TensorError(absl::StatusCode::kInvalidArgument, file, duplicates.entry(),
                       duplicates.error());
  }
  if (!json.is_object()) {
    return FileError(absl::StatusCode::kInvalidArgument, file,
                     "the safetensors header is not a JSON object");
  }
  return json;
}

absl::StatusOr<std::map<std::string, std::string>> ParseMetadata(const Json& value,
                                                                 absl::string_view file) {
  std::map<std::string, std::string> metadata;
  if (value.is_null()) return metadata;  // The reference reads `null` as "no metadata".
  if (!value.is_object()) {
    return FileError(
        absl::StatusCode::kInvalidArgument, file,
        absl::StrCat(kMetadataKey, " is a JSON ", value.type_name(), ", not an object of strings"));
  }
  for (const auto& [key, entry] : value.items()) {
    if (!entry.is_string()) {
      return FileError(absl::StatusCode::kInvalidArgument, file,
                       absl::StrCat(kMetadataKey, " key '", key, "': value is a JSON ",
                                    entry.type_name(), ", not a string"));
    }
    metadata.emplace(key, entry.get<std::string>());
  }
  return metadata;
}

// Reads one non-negative integer that must fit `limit`. `what` names it for messages.
absl::StatusOr<uint64_t> ReadUnsigned(const Json& value, uint64_t limit, absl::string_view what,
                                      absl::string_view file, absl::string_view tensor) {
  if (value.is_number_unsigned()) {
    const uint64_t v = value.get<uint64_t>();
    if (v > limit) {
      return TensorError(absl::StatusCode::kInvalidArgument, file, tensor,
                         absl::StrCat(what, " ", v, " is larger than ", limit));
    }
    return v;
  }
  if (value.is_number_integer()) {
    return TensorError(absl::StatusCode::kInvalidArgument, file, tensor,
                       absl::StrCat(what, " is negative (", value.get<int64_t>(), ")"));
  }
  return TensorError(absl::StatusCode::kInvalidArgument, file, tensor,
                     absl::StrCat(what, " is ", Describe(value), ", not an integer"));
}

const Json* FindField(const Json& entry, const char* key) {
  const auto it = entry.find(key);
  return it == entry.end() ? nullptr : &*it;
}

// Rules 6-8 for one entry.
absl::StatusOr<TensorInfo> ParseTensorEntry(const std::string& name, const Json& entry,
                                            uint64_t data_size, absl::string_view file) {
  const auto invalid = [&](absl::string_view what) {
    return TensorError(absl::StatusCode::kInvalidArgument, file, name, what);
  };
  if (!entry.is_object()) {
    return invalid(absl::StrCat("entry is a JSON ", entry.type_name(), ", not an object"));
  }
  const Json* dtype = FindField(entry, kDTypeKey);
  const Json* shape = FindField(entry, kShapeKey);
  const Json* offsets = FindField(entry, kDataOffsetsKey);
  if (dtype == nullptr) return invalid("missing 'dtype'");
  if (shape == nullptr) return invalid("missing 'shape'");
  if (offsets == nullptr) return invalid("missing 'data_offsets'");

  TensorInfo info;
  info.name = name;
  if (!dtype->is_string()) {
    return invalid(absl::StrCat("'dtype' is ", Describe(*dtype), ", not a string"));
  }
  absl::StatusOr<DType> parsed_dtype = ParseDType(dtype->get_ref<const std::string&>());
  if (!parsed_dtype.ok()) return invalid(absl::StrCat("unknown dtype ", Describe(*dtype)));
  info.dtype = *parsed_dtype;

  if (!shape->is_array()) {
    return invalid(absl::StrCat("'shape' is a JSON ", shape->type_name(), ", not an array"));
  }
  if (shape->size() > kMaxRank) {
    return invalid(absl::StrCat("'shape' has ", shape->size(), " dims, more than ", kMaxRank));
  }
  info.shape.reserve(shape->size());
  for (size_t i = 0; i < shape->size(); ++i) {
    LIKENESS_ASSIGN_OR_RETURN(
        const uint64_t dim,
        ReadUnsigned((*shape)[i], kMaxDim, absl::StrCat("dim ", i), file, name));
    info.shape.push_back(static_cast<int64_t>(dim));
  }

  if (!offsets->is_array() || offsets->size() != 2) {
    const std::string what = offsets->is_array()
                                 ? absl::StrCat("an array of ", offsets->size(), " values")
                                 : Describe(*offsets);
    return invalid(absl::StrCat("'data_offsets' is ", what, ", not [begin, end]"));
  }
  LIKENESS_ASSIGN_OR_RETURN(info.data_begin,
                            ReadUnsigned((*offsets)[0], std::numeric_limits<uint64_t>::max(),
                                         "data_offsets begin", file, name));
  LIKENESS_ASSIGN_OR_RETURN(info.data_end,
                            ReadUnsigned((*offsets)[1], std::numeric_limits<uint64_t>::max(),
                                         "data_offsets end", file, name));
  if (info.data_begin > info.data_end) {
    return invalid(
        absl::StrCat(OffsetsString(info.data_begin, info.data_end), " end before begin"));
  }

  absl::StatusOr<uint64_t> bytes = TensorByteSize(info.dtype, info.shape);
  if (!bytes.ok()) return invalid(bytes.status().message());
  if (*bytes != info.num_bytes()) {
    return invalid(absl::StrCat(
        "shape ", ShapeString(info.shape), " of ", DTypeName(info.dtype), " needs ", *bytes,
        " bytes but ", OffsetsString(info.data_begin, info.data_end), " hold ", info.num_bytes()));
  }
  // Checked last so that a cut-off file reports DATA_LOSS, not a size mismatch.
  if (info.data_end > data_size) {
    return TensorError(
        absl::StatusCode::kDataLoss, file, name,
        absl::StrCat(OffsetsString(info.data_begin, info.data_end), " run past the end of the ",
                     data_size, "-byte data section (truncated file?)"));
  }
  return info;
}

// Rule 9. Sorts `tensors` into data order.
absl::Status CheckTiling(std::vector<TensorInfo>& tensors, uint64_t data_size,
                         absl::string_view file) {
  std::sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return std::tie(a.data_begin, a.data_end, a.name) < std::tie(b.data_begin, b.data_end, b.name);
  });
  uint64_t cursor = 0;
  const TensorInfo* previous = nullptr;
  for (const TensorInfo& t : tensors) {
    const std::string where = OffsetsString(t.data_begin, t.data_end);
    if (t.data_begin < cursor) {
      return TensorError(absl::StatusCode::kInvalidArgument, file, t.name,
                         absl::StrCat(where, " overlap tensor '", previous->name, "' ",
                                      OffsetsString(previous->data_begin, previous->data_end)));
    }
    if (t.data_begin > cursor) {
      return TensorError(
          absl::StatusCode::kInvalidArgument, file, t.name,
          absl::StrCat(where, " leave a gap of ", t.data_begin - cursor, " bytes after ",
                       previous == nullptr ? std::string("the start of the data section")
                                           : absl::StrCat("tensor '", previous->name, "'")));
    }
    cursor = t.data_end;
    previous = &t;
  }
  if (cursor != data_size) {
    const std::string after = previous == nullptr
                                  ? std::string("with no tensors")
                                  : absl::StrCat("after the last tensor '", previous->name, "'");
    return FileError(absl::StatusCode::kInvalidArgument, file,
                     absl::StrCat(data_size - cursor, " bytes of the data section ", after,
                                  " belong to no tensor"));
  }
  return absl::OkStatus();
}

}  // namespace

Header::Header(std::map<std::string, std::string> metadata, std::vector<TensorInfo> tensors,
               uint64_t data_offset, uint64_t data_size)
    : metadata_(std::move(metadata)),
      tensors_(std::move(tensors)),
      data_offset_(data_offset),
      data_size_(data_size) {
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

const TensorInfo* Header::Find(absl::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

absl::StatusOr<Header> ParseHeader(absl::string_view file_bytes, absl::string_view file) {
  if (file_bytes.size() < kHeaderLengthBytes) {
    return FileError(absl::StatusCode::kDataLoss, file,
                     absl::StrCat("file has ", file_bytes.size(), " bytes, fewer than the ",
                                  kHeaderLengthBytes, "-byte safetensors header length"));
  }
  uint64_t header_length = 0;
  for (size_t i = 0; i < kHeaderLengthBytes; ++i) {
    header_length |= static_cast<uint64_t>(static_cast<uint8_t>(file_bytes[i])) << (8 * i);
  }
  if (header_length > kMaxHeaderBytes) {
    return FileError(absl::StatusCode::kInvalidArgument, file,
                     absl::StrCat("safetensors header length ", header_length,
                                  " exceeds the limit of ", kMaxHeaderBytes, " bytes"));
  }
  const uint64_t available = file_bytes.size() - kHeaderLengthBytes;
  if (header_length > available) {
    return FileError(
        absl::StatusCode::kDataLoss, file,
        absl::StrCat("safetensors header length ", header_length, " runs past the end of the ",
                     file_bytes.size(), "-byte file (truncated file?)"));
  }
  const uint64_t data_offset = kHeaderLengthBytes + header_length;
  const uint64_t data_size = file_bytes.size() - data_offset;

  LIKENESS_ASSIGN_OR_RETURN(const Json json,
                            ParseJson(file_bytes.substr(kHeaderLengthBytes, header_length), file));
  std::map<std::string, std::string> metadata;
  std::vector<TensorInfo> tensors;
  tensors.reserve(json.size());
  for (const auto& [key, value] : json.items()) {
    if (key == kMetadataKey) {
      LIKENESS_ASSIGN_OR_RETURN(metadata, ParseMetadata(value, file));
      continue;
    }
    LIKENESS_ASSIGN_OR_RETURN(TensorInfo info, ParseTensorEntry(key, value, data_size, file));
    tensors.push_back(std::move(info));
  }
  LIKENESS_RETURN_IF_ERROR(CheckTiling(tensors, data_size, file));
  return Header(std::move(metadata), std::move(tensors), data_offset, data_size);
}

absl::StatusOr<uint64_t> TensorByteSize(DType dtype, absl::Span<const int64_t> shape) {
  uint64_t bytes = DTypeSize(dtype);
  uint64_t elements = 1;
  for (const int64_t dim : shape) {
    if (dim < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("shape ", ShapeString(shape), " has a negative dim"));
    }
    if (__builtin_mul_overflow(elements, static_cast<uint64_t>(dim), &elements)) {
      return absl::InvalidArgumentError(
          absl::StrCat("shape ", ShapeString(shape), " overflows a 64-bit element count"));
    }
  }
  if (__builtin_mul_overflow(elements, bytes, &bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shape ", ShapeString(shape), " of ", DTypeName(dtype), " overflows a 64-bit byte count"));
  }
  return bytes;
}

std::string ShapeString(absl::Span<const int64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

}  // namespace likeness::safetensors
