#include "worker/model/vision/dino_rename_table.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace likeness::model {
namespace {

constexpr char kIndexVar[] = "{i}";
constexpr char kBlocksPrefix[] = "blocks.";
constexpr int kQkvParts = 3;

constexpr DinoRenameRow kRows[] = {
    {"cls_token", {"embeddings.cls_token"}, DinoTensorOp::kCopy},
    {"pos_embed", {"embeddings.position_embeddings"}, DinoTensorOp::kCopy},
    {"patch_embed.proj.weight", {"embeddings.patch_embeddings.projection.weight"}, DinoTensorOp::kCopy},
    {"patch_embed.proj.bias", {"embeddings.patch_embeddings.projection.bias"}, DinoTensorOp::kCopy},
    {"blocks.{i}.norm1.weight", {"encoder.layer.{i}.layernorm_before.weight"}, DinoTensorOp::kCopy},
    {"blocks.{i}.norm1.bias", {"encoder.layer.{i}.layernorm_before.bias"}, DinoTensorOp::kCopy},
    {"blocks.{i}.attn.qkv.weight",
     {"encoder.layer.{i}.attention.attention.query.weight",
      "encoder.layer.{i}.attention.attention.key.weight",
      "encoder.layer.{i}.attention.attention.value.weight"},
     DinoTensorOp::kSplitQkv},
    {"blocks.{i}.attn.qkv.bias",
     {"encoder.layer.{i}.attention.attention.query.bias",
      "encoder.layer.{i}.attention.attention.key.bias",
      "encoder.layer.{i}.attention.attention.value.bias"},
     DinoTensorOp::kSplitQkv},
    {"blocks.{i}.attn.proj.weight", {"encoder.layer.{i}.attention.output.dense.weight"}, DinoTensorOp::kCopy},
    {"blocks.{i}.attn.proj.bias", {"encoder.layer.{i}.attention.output.dense.bias"}, DinoTensorOp::kCopy},
    {"blocks.{i}.norm2.weight", {"encoder.layer.{i}.layernorm_after.weight"}, DinoTensorOp::kCopy},
    {"blocks.{i}.norm2.bias", {"encoder.layer.{i}.layernorm_after.bias"}, DinoTensorOp::kCopy},
    {"blocks.{i}.mlp.fc1.weight", {"encoder.layer.{i}.intermediate.dense.weight"}, DinoTensorOp::kCopy},
    {"blocks.{i}.mlp.fc1.bias", {"encoder.layer.{i}.intermediate.dense.bias"}, DinoTensorOp::kCopy},
    {"blocks.{i}.mlp.fc2.weight", {"encoder.layer.{i}.output.dense.weight"}, DinoTensorOp::kCopy},
    {"blocks.{i}.mlp.fc2.bias", {"encoder.layer.{i}.output.dense.bias"}, DinoTensorOp::kCopy},
    {"norm.weight", {"layernorm.weight"}, DinoTensorOp::kCopy},
    {"norm.bias", {"layernorm.bias"}, DinoTensorOp::kCopy},
};

struct Pattern {
  std::string name;   // with "{i}" in place of the block index
  std::string index;  // the digits it replaced; empty when none
};

// "blocks.11.attn.qkv.weight" -> {"blocks.{i}.attn.qkv.weight", "11"}.
Pattern ToPattern(const std::string& name) {
  if (!absl::StartsWith(name, kBlocksPrefix)) return {name, ""};
  size_t end = sizeof(kBlocksPrefix) - 1;
  while (end < name.size() && std::isdigit(static_cast<unsigned char>(name[end]))) ++end;
  const std::string index = name.substr(sizeof(kBlocksPrefix) - 1, end - (sizeof(kBlocksPrefix) - 1));
  if (index.empty()) return {name, ""};
  return {absl::StrCat(kBlocksPrefix, kIndexVar, name.substr(end)), index};
}

const DinoRenameRow* FindRow(const std::string& pattern) {
  for (const DinoRenameRow& row : kRows) {
    if (pattern == row.original) return &row;
  }
  return nullptr;
}

}  // namespace

absl::Span<const DinoRenameRow> DinoRenameTable() { return kRows; }

bool HasOriginalDinoNames(const StateDict& weights) {
  return weights.count("cls_token") > 0 && weights.count("pos_embed") > 0;
}

absl::StatusOr<DinoConversion> ConvertOriginalDinoNames(const StateDict& original) {
  DinoConversion out;
  for (const auto& [name, tensor] : original) {
    if (std::any_of(std::begin(kDinoIgnoredPrefixes), std::end(kDinoIgnoredPrefixes),
                    [&](const char* prefix) { return absl::StartsWith(name, prefix); })) {
      out.ignored.push_back(name);
      continue;
    }
    const Pattern pattern = ToPattern(name);
    const DinoRenameRow* row = FindRow(pattern.name);
    if (row == nullptr) {
      out.weights[name] = tensor;  // the strict load reports it
      continue;
    }
    const auto expand = [&](const char* templ) {
      return absl::StrReplaceAll(templ, {{kIndexVar, pattern.index}});
    };
    switch (row->op) {
      case DinoTensorOp::kCopy:
        out.weights[expand(row->transformers[0])] = tensor;
        break;
      case DinoTensorOp::kSplitQkv: {
        if (tensor.dim() < 1 || tensor.size(0) % kQkvParts != 0) {
          return absl::InvalidArgumentError(
              absl::StrCat("DINO checkpoint tensor '", name, "' of shape ",
                           c10::str(tensor.sizes()),
                           ": a fused q/k/v tensor needs a first dimension divisible by 3"));
        }
        const int64_t part = tensor.size(0) / kQkvParts;
        for (int p = 0; p < kQkvParts; ++p) {
          // [3H, ...] -> rows [p*H, (p+1)*H): q, k, v in that order.
          out.weights[expand(row->transformers[p])] = tensor.narrow(0, p * part, part);
        }
        break;
      }
    }
  }
  return out;
}

}  // namespace likeness::model
