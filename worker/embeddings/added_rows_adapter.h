// The EmbeddingAdapter (worker/model/layers.h) that gives a token embedding its added rows.
//
// Ids >= 0 read the base table; id AddedVectorId(k) (= -1 - k, added_vocabulary.h) reads added
// row k. Lookup is two gathers and a select, so the base table [49408, 1280] is never copied or
// concatenated per forward:
//
//   base  = embedding(base_weight, max(ids, 0))     [..., dim]
//   added = embedding(rows, max(-1 - ids, 0))       [..., dim]
//   out   = where(ids < 0, added, base)
//
// Gradients: each added token's tensor is a leaf of its own (the set that owns it decides
// requires_grad), and the rows are their concatenation, so backward reaches exactly the added
// tensors that took part. torch::where sends nothing to the base table at added positions (the
// clamped row 0 gets zeros there); whether the base table gets gradient at all is the base
// model's requires_grad, which textual-inversion training turns off.
//
// Rows are kept as given (textual inversion keeps them in float32 on the table's device) and
// cast to the table's dtype and device at lookup, which is exact for rows that came from the
// table and differentiable for training under bf16/fp16 weights.
#ifndef LIKENESS_WORKER_EMBEDDINGS_ADDED_ROWS_ADAPTER_H_
#define LIKENESS_WORKER_EMBEDDINGS_ADDED_ROWS_ADAPTER_H_

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "worker/model/layers.h"

namespace likeness::embeddings {

class AddedRowsAdapter final : public model::EmbeddingAdapter {
 public:
  // `rows`: one [n_i, dim] tensor per added token, in vocabulary order; added row k is row k of
  // their concatenation. The tensors are shared, not copied: an optimizer's in-place update is
  // seen by the next lookup.
  void SetRows(std::vector<torch::Tensor> rows);
  int64_t num_rows() const { return num_rows_; }

  // int64 ids [...], base_weight [num, dim] -> [..., dim]. Throws c10::Error (as
  // torch::embedding does) for an id below -num_rows() or at/after num; the check costs one
  // host sync per call, which a text encoder (one call per prompt batch) can afford, and an id
  // past the added rows must fail rather than be clamped onto another token's vector.
  torch::Tensor Lookup(const torch::Tensor& ids, const torch::Tensor& base_weight) override;
  std::vector<torch::Tensor> TrainableTensors() const override { return rows_; }

 private:
  std::vector<torch::Tensor> rows_;
  int64_t num_rows_ = 0;
};

}  // namespace likeness::embeddings

#endif  // LIKENESS_WORKER_EMBEDDINGS_ADDED_ROWS_ADAPTER_H_
