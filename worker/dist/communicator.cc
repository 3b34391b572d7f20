#include "worker/dist/communicator.h"

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace likeness::dist {

const char* ReduceOpName(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kAvg:
      return "avg";
    case ReduceOp::kMax:
      return "max";
  }
  return "?";
}

absl::Status Communicator::AllReduce(std::vector<torch::Tensor>& tensors, ReduceOp op,
                                     absl::string_view what) {
  if (tensors.empty()) return absl::OkStatus();
  torch::Tensor flat;
  try {
    std::vector<torch::Tensor> flats;
    flats.reserve(tensors.size());
    for (const torch::Tensor& t : tensors) {
      if (t.scalar_type() != tensors[0].scalar_type() || t.device() != tensors[0].device()) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": tensors of one all-reduce must share dtype and device"));
      }
      flats.push_back(t.reshape({-1}));
    }
    flat = torch::cat(flats);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what_without_backtrace()));
  }
  absl::StatusOr<std::unique_ptr<Work>> work = StartAllReduce(flat, op, what);
  if (!work.ok()) return work.status();
  if (absl::Status s = (*work)->Wait(); !s.ok()) return s;
  try {
    torch::NoGradGuard no_grad;
    int64_t offset = 0;
    for (torch::Tensor& t : tensors) {
      const int64_t n = t.numel();
      t.copy_(flat.narrow(0, offset, n).view(t.sizes()));
      offset += n;
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

absl::Status Communicator::Broadcast(std::vector<torch::Tensor>& tensors, int root,
                                     absl::string_view what) {
  size_t begin = 0;
  while (begin < tensors.size()) {
    // One chunk: consecutive tensors up to kBroadcastChunkBytes (a larger tensor alone).
    size_t end = begin;
    int64_t bytes = 0;
    while (end < tensors.size() &&
           (end == begin || bytes + tensors[end].nbytes() <= kBroadcastChunkBytes)) {
      bytes += tensors[end].nbytes();
      ++end;
    }
    try {
      torch::NoGradGuard no_grad;
      std::vector<torch::Tensor> parts;
      for (size_t i = begin; i < end; ++i) {
        // [*] -> [numel] -> [nbytes] uint8: the raw bytes, whatever the dtype.
        parts.push_back(tensors[i].detach().contiguous().reshape({-1}).view(torch::kUInt8));
      }
      torch::Tensor flat = torch::cat(parts);
      absl::StatusOr<std::unique_ptr<Work>> work = StartBroadcast(flat, root, what);
      if (!work.ok()) return work.status();
      if (absl::Status s = (*work)->Wait(); !s.ok()) return s;
      if (rank() != root) {
        int64_t offset = 0;
        for (size_t i = begin; i < end; ++i) {
          torch::Tensor& t = tensors[i];
          const int64_t n = t.nbytes();
          // Through the target's own bytes: a slice of `flat` may be misaligned for t's type.
          torch::Tensor target = t.is_contiguous() ? t : t.contiguous();
          target.reshape({-1}).view(torch::kUInt8).copy_(flat.narrow(0, offset, n));
          if (!target.is_same(t)) t.copy_(target);
          offset += n;
        }
      }
    } catch (const c10::Error& e) {
      return absl::InternalError(absl::StrCat(what, ": ", e.what_without_backtrace()));
    }
    begin = end;
  }
  return absl::OkStatus();
}

absl::Duration CollectiveTimeoutFromEnvironment() {
  const char* value = std::getenv(kCollectiveTimeoutEnv);
  double seconds = 0.0;
  if (value == nullptr || !absl::SimpleAtod(value, &seconds) || !(seconds > 0.0)) {
    return kDefaultCollectiveTimeout;
  }
  return absl::Seconds(seconds);
}

}  // namespace likeness::dist
