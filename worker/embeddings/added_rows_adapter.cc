#include "worker/embeddings/added_rows_adapter.h"

#include <utility>
#include <vector>

namespace likeness::embeddings {

void AddedRowsAdapter::SetRows(std::vector<torch::Tensor> rows) {
  num_rows_ = 0;
  for (const torch::Tensor& r : rows) {
    TORCH_CHECK(r.dim() == 2, "added embedding rows must be [n, dim], got ", r.sizes());
    num_rows_ += r.size(0);
  }
  rows_ = std::move(rows);
}

torch::Tensor AddedRowsAdapter::Lookup(const torch::Tensor& ids, const torch::Tensor& base_weight) {
  if (num_rows_ == 0) return torch::embedding(base_weight, ids);
  TORCH_CHECK(!rows_.empty() && rows_.front().size(1) == base_weight.size(1),
              "added embedding rows are ", rows_.front().size(1), " wide, the table ",
              base_weight.size(1));
  if (ids.numel() > 0) {
    const torch::Tensor range = torch::stack({ids.min(), ids.max()}).cpu();
    const int64_t lowest = range[0].item<int64_t>();
    const int64_t highest = range[1].item<int64_t>();
    TORCH_CHECK(lowest >= -num_rows_, "token id ", lowest, " names added vector ", -1 - lowest,
                " but only ", num_rows_, " are added");
    TORCH_CHECK(highest < base_weight.size(0), "token id ", highest, " is past the table of ",
                base_weight.size(0), " rows");
  }
  // [n_added, dim], in the table's dtype and device (a no-op when they already match).
  torch::Tensor rows = rows_.size() == 1 ? rows_.front() : torch::cat(rows_, 0);
  rows = rows.to(base_weight.device(), base_weight.scalar_type());

  const torch::Tensor is_added = ids.lt(0).unsqueeze(-1);                      // [..., 1]
  const torch::Tensor base = torch::embedding(base_weight, ids.clamp_min(0));  // [..., dim]
  const torch::Tensor added = torch::embedding(rows, ids.add(1).neg().clamp_min(0));
  return torch::where(is_added, added, base);
}

}  // namespace likeness::embeddings
