// The rename table from the original DINO checkpoint names (facebookresearch/dino,
// vision_transformer.py: the backbone torch.hub's dino_vits16 loads) to transformers' ViTModel
// names (vit_model.h), as data (STYLE.md §1). Rows use "{i}" for the block index.
//
//   original                         transformers                                        op
//   cls_token                        embeddings.cls_token                                copy
//   pos_embed                        embeddings.position_embeddings                      copy
//   patch_embed.proj.*               embeddings.patch_embeddings.projection.*            copy
//   blocks.{i}.norm1.*               encoder.layer.{i}.layernorm_before.*                copy
//   blocks.{i}.attn.qkv.*            encoder.layer.{i}.attention.attention.{query,key,value}.*
//                                                                                        split
//   blocks.{i}.attn.proj.*           encoder.layer.{i}.attention.output.dense.*          copy
//   blocks.{i}.norm2.*               encoder.layer.{i}.layernorm_after.*                 copy
//   blocks.{i}.mlp.fc1.*             encoder.layer.{i}.intermediate.dense.*              copy
//   blocks.{i}.mlp.fc2.*             encoder.layer.{i}.output.dense.*                    copy
//   norm.*                           layernorm.*                                         copy
//
// The fused qkv Linear computes [q; k; v] along its output dimension (DINO reshapes its
// output as [B, N, 3, heads, head_dim]), so q, k and v are the dim-0 thirds of the weight
// [3H, H] and of the bias [3H]. DINO's norms use eps 1e-6 (kOriginalDinoLayerNormEps), not
// ViTConfig's 1e-12; a config detected for this naming uses the former.
//
// `head.*` (the DINO projection head or a linear classifier saved with the backbone) is no part
// of the backbone and is listed as ignored. Any other name is kept unchanged, so the strict load
// reports it as unexpected.
#ifndef LIKENESS_WORKER_MODEL_VISION_DINO_RENAME_TABLE_H_
#define LIKENESS_WORKER_MODEL_VISION_DINO_RENAME_TABLE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "worker/model/state_dict.h"

namespace likeness::model {

enum class DinoTensorOp {
  kCopy,      // the same tensor
  kSplitQkv,  // [3H, ...] -> q, k, v [H, ...]: dim-0 thirds
};

struct DinoRenameRow {
  const char* original;        // may hold "{i}"
  const char* transformers[3];  // one name for kCopy, q/k/v for kSplitQkv
  DinoTensorOp op;
};

absl::Span<const DinoRenameRow> DinoRenameTable();

// Prefixes of original-DINO tensors that no backbone uses.
inline constexpr const char* kDinoIgnoredPrefixes[] = {"head."};

// True when `weights` uses the original names (it has `cls_token` and `pos_embed`).
bool HasOriginalDinoNames(const StateDict& weights);

struct DinoConversion {
  StateDict weights;                 // transformers names (unknown names kept as they were)
  std::vector<std::string> ignored;  // kDinoIgnoredPrefixes matches, original names
};

// Renames every tensor by the table. INVALID_ARGUMENT naming the tensor when a kSplitQkv tensor's
// first dimension is not a multiple of 3.
absl::StatusOr<DinoConversion> ConvertOriginalDinoNames(const StateDict& original);

}  // namespace likeness::model

#endif  // LIKENESS_WORKER_MODEL_VISION_DINO_RENAME_TABLE_H_
