#include "common/safetensors/layout.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace likeness::safetensors {
namespace {

// ordered_json keeps insertion order, which the reference's layout (rule 3) needs.
using OrderedJson = nlohmann::ordered_json;

absl::Status TensorError(absl::string_view file, absl::string_view tensor, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(file, ": tensor '", tensor, "': ", what));
}

// nlohmann throws on invalid UTF-8 only when dumping the whole header; checking each string
// alone lets the error name the culprit.
bool IsValidUtf8(const std::string& text) {
  try {
    (void)OrderedJson(text).dump();
    return true;
  } catch (const OrderedJson::exception&) {
    return false;
  }
}

absl::Status CheckSpec(const TensorSpec& spec, absl::string_view file) {
  if (spec.name == kMetadataKey) return TensorError(file, spec.name, "the name is reserved");
  if (!IsValidUtf8(spec.name)) return TensorError(file, spec.name, "the name is not valid UTF-8");
  if (spec.shape.size() > kMaxRank) {
    return TensorError(
        file, spec.name,
        absl::StrCat("rank ", spec.shape.size(), " is over the limit of ", kMaxRank));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Layout> PlanLayout(std::vector<TensorSpec> tensors,
                                  const std::map<std::string, std::string>& metadata,
                                  absl::string_view file) {
  std::set<absl::string_view> names;
  for (const TensorSpec& spec : tensors) {
    if (absl::Status status = CheckSpec(spec, file); !status.ok()) return status;
    if (!names.insert(spec.name).second) return TensorError(file, spec.name, "duplicate name");
  }
  for (const auto& [key, value] : metadata) {
    if (!IsValidUtf8(key) || !IsValidUtf8(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ": ", kMetadataKey, " key '", key, "': not valid UTF-8"));
    }
  }

  // Rule 1. Stable sort is not needed: names are unique.
  std::sort(tensors.begin(), tensors.end(), [](const TensorSpec& a, const TensorSpec& b) {
    if (a.dtype != b.dtype) return a.dtype > b.dtype;
    return a.name < b.name;
  });

  // Rule 2.
  std::vector<TensorInfo> infos;
  infos.reserve(tensors.size());
  uint64_t offset = 0;
  for (TensorSpec& spec : tensors) {
    absl::StatusOr<uint64_t> bytes = TensorByteSize(spec.dtype, spec.shape);
    if (!bytes.ok()) return TensorError(file, spec.name, bytes.status().message());
    TensorInfo info;
    info.data_begin = offset;
    if (__builtin_add_overflow(offset, *bytes, &offset)) {
      return TensorError(file, spec.name, "the data section overflows 64 bits");
    }
    info.data_end = offset;
    info.name = std::move(spec.name);
    info.dtype = spec.dtype;
    info.shape = std::move(spec.shape);
    infos.push_back(std::move(info));
  }

  // Rule 3.
  OrderedJson json = OrderedJson::object();
  if (!metadata.empty()) {
    OrderedJson& meta = json[kMetadataKey];
    meta = OrderedJson::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
  }
  for (const TensorInfo& info : infos) {
    OrderedJson& entry = json[info.name];
    entry["dtype"] = DTypeName(info.dtype);
    entry["shape"] = info.shape;
    entry["data_offsets"] = {info.data_begin, info.data_end};
  }
  std::string text = json.dump();

  // Rule 4.
  text.append((kHeaderAlignment - text.size() % kHeaderAlignment) % kHeaderAlignment, ' ');
  if (text.size() > kMaxHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": the safetensors header would take ",
                                                   text.size(), " bytes, over the limit of ",
                                                   kMaxHeaderBytes));
  }
  Layout layout;
  layout.prefix.reserve(kHeaderLengthBytes + text.size());
  const uint64_t length = text.size();
  for (size_t i = 0; i < kHeaderLengthBytes; ++i) {
    layout.prefix.push_back(static_cast<char>((length >> (8 * i)) & 0xFF));
  }
  layout.prefix += text;
  layout.header = Header(metadata, std::move(infos), layout.prefix.size(), offset);
  return layout;
}

}  // namespace likeness::safetensors
