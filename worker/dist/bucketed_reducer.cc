#include "worker/dist/bucketed_reducer.h"

#include <cstdlib>
#include <mutex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/torch_compat.h"

namespace likeness::dist {

struct BucketedGradientReducer::State {
  Communicator* comm = nullptr;
  std::vector<torch::Tensor> params;       // AllParams order
  std::vector<BucketSpec> plan;
  std::vector<int> bucket_of;              // param index -> bucket
  std::vector<torch::Tensor> flats;        // one buffer per bucket, on the communicator's device
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;  // keep the hooks alive
  // Per backward (reset by PrepareBackward):
  bool armed = false;
  std::vector<int> pending;                // tensors of the bucket still to get their gradient
  std::vector<bool> ready;                 // per param
  std::vector<bool> full;                  // per bucket
  std::vector<std::unique_ptr<Work>> works;  // per bucket, once started
  int next_to_start = 0;
  int started_by_hooks = 0;
  absl::Status error;                      // first error seen inside a hook
  std::mutex mutex;                        // hooks may run on a backward thread

  // NCCL averages inside its kernel (ncclAvg); elsewhere the reducer sums and divides while it
  // copies the result back, one pass over memory instead of two (on CPU the copies, not the
  // wire, bound the bandwidth).
  bool NativeAverage() const { return comm->backend() == "nccl"; }

  // Copies bucket b's gradients into its flat buffer and starts its all-reduce.
  absl::Status Start(int b) {
    const BucketSpec& spec = plan[b];
    try {
      torch::NoGradGuard no_grad;
      torch::Tensor& flat = flats[b];
      for (size_t k = 0; k < spec.tensors.size(); ++k) {
        const torch::Tensor& p = params[spec.tensors[k]];
        const int64_t n = p.numel();
        torch::Tensor slice = flat.narrow(0, spec.offsets[k], n);
        const torch::Tensor& grad = p.grad();
        if (grad.defined()) {
          slice.copy_(grad.reshape({-1}));
        } else {
          slice.zero_();  // no gradient on this rank: contributes nothing to the average
        }
      }
    } catch (const c10::Error& e) {
      return absl::InternalError(absl::StrCat("dist: gradient bucket ", b, ": ",
                                              e.what_without_backtrace()));
    }
    absl::StatusOr<std::unique_ptr<Work>> work = comm->StartAllReduce(
        flats[b], NativeAverage() ? ReduceOp::kAvg : ReduceOp::kSum,
        absl::StrCat("gradient bucket ", b));
    if (!work.ok()) return work.status();
    works[b] = std::move(*work);
    return absl::OkStatus();
  }

  // Starts every full bucket whose predecessors have all started (the fixed order).
  void StartFullPrefix() {
    while (next_to_start < static_cast<int>(plan.size()) && full[next_to_start]) {
      absl::Status s = Start(next_to_start);
      if (!s.ok() && error.ok()) error = s;
      ++next_to_start;
      ++started_by_hooks;
    }
  }

  void OnGradientReady(int index) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!armed) return;
    // Drive the buckets in flight: MPI progresses non-blocking collectives only inside calls.
    for (int b = 0; b < next_to_start; ++b) {
      if (works[b] != nullptr) works[b]->Poll();
    }
    if (ready[index]) {
      if (error.ok()) {
        error = absl::InternalError(absl::StrCat(
            "dist: tensor ", index, " got two gradients in one backward (its bucket may have "
            "been sent before the second)"));
      }
      return;
    }
    ready[index] = true;
    const int b = bucket_of[index];
    if (--pending[b] == 0) {
      full[b] = true;
      StartFullPrefix();
    }
  }
};

int64_t BucketBytesFromEnvironment() {
  const char* value = std::getenv(kBucketBytesEnv);
  int64_t bytes = 0;
  if (value == nullptr || !absl::SimpleAtoi(value, &bytes) || bytes <= 0) return kDefaultBucketBytes;
  return bytes;
}

BucketedGradientReducer::BucketedGradientReducer(Communicator* comm, BucketedReducerOptions options)
    : comm_(comm), options_(options), state_(std::make_shared<State>()) {
  state_->comm = comm;
}

BucketedGradientReducer::~BucketedGradientReducer() {
  // Unfinished work would wait in its destructor; the hooks see the state expire and do nothing.
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->armed = false;
}

const std::vector<BucketSpec>& BucketedGradientReducer::buckets() const { return state_->plan; }

int BucketedGradientReducer::buckets_started_by_hooks() const {
  return state_->started_by_hooks;
}

absl::Status BucketedGradientReducer::Attach(const std::vector<torch::Tensor>& params) {
  State& s = *state_;
  s.params = params;
  std::vector<TensorSlot> slots;
  for (const torch::Tensor& p : params) {
    TensorSlot slot;
    slot.numel = p.numel();
    slot.element_size = static_cast<int64_t>(p.element_size());
    slot.dtype = static_cast<int>(p.scalar_type());
    slot.device = p.device().str();
    slots.push_back(slot);
  }
  s.plan = PlanBuckets(slots, options_.bucket_bytes);
  s.bucket_of.assign(params.size(), 0);
  try {
    for (size_t b = 0; b < s.plan.size(); ++b) {
      for (int index : s.plan[b].tensors) s.bucket_of[index] = static_cast<int>(b);
      const torch::Tensor& first = params[s.plan[b].tensors.front()];
      s.flats.push_back(torch::empty({s.plan[b].numel},
                                     first.options().device(comm_->device()).requires_grad(false)));
    }
    std::weak_ptr<State> weak = state_;
    for (size_t i = 0; i < params.size(); ++i) {
      if (!params[i].is_leaf()) {
        return absl::InvalidArgumentError(absl::StrCat("dist: trainable tensor ", i,
                                                       " is not a leaf: no gradient hook"));
      }
      const int index = static_cast<int>(i);
      // requires_grad may be off now (a frozen group) and on later: the accumulator exists
      // only for tensors that require a gradient, so turn it on just to create it.
      const bool requires_grad = params[i].requires_grad();
      torch::Tensor leaf = params[i];
      if (!requires_grad) leaf.requires_grad_(true);
      s.accumulators.push_back(compat::AddPostAccumulateGradHook(leaf, [weak, index] {
        if (std::shared_ptr<State> state = weak.lock()) state->OnGradientReady(index);
      }));
      if (!requires_grad) leaf.requires_grad_(false);
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("dist: preparing the buckets: ",
                                            e.what_without_backtrace()));
  }
  s.works.resize(s.plan.size());
  return absl::OkStatus();
}

absl::Status BucketedGradientReducer::SyncParameters(const std::vector<torch::Tensor>& params,
                                                     int64_t step) {
  if (state_->plan.empty() && !params.empty()) {
    if (absl::Status s = Attach(params); !s.ok()) return s;
  }
  absl::StatusOr<std::vector<int64_t>> steps = comm_->AllGather(step, "step before training");
  if (!steps.ok()) return steps.status();
  for (size_t r = 0; r < steps->size(); ++r) {
    if ((*steps)[r] != step) {
      return absl::FailedPreconditionError(absl::StrCat(
          "dist: rank ", r, " is at step ", (*steps)[r], ", rank ", comm_->rank(), " at step ",
          step, ": the ranks resumed from different checkpoints"));
    }
  }
  std::vector<torch::Tensor> tensors;
  for (const torch::Tensor& p : params) tensors.push_back(p.detach());
  return comm_->Broadcast(tensors, /*root=*/0, "trainable tensors from rank 0");
}

void BucketedGradientReducer::PrepareBackward(bool last_micro_step) {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mutex);
  s.armed = last_micro_step;
  if (!last_micro_step) return;
  const size_t n = s.plan.size();
  s.pending.assign(n, 0);
  s.full.assign(n, false);
  s.ready.assign(s.params.size(), false);
  s.works.clear();
  s.works.resize(n);
  s.next_to_start = 0;
  s.started_by_hooks = 0;
  for (size_t i = 0; i < s.params.size(); ++i) {
    if (s.params[i].requires_grad()) ++s.pending[s.bucket_of[i]];
  }
  // A bucket of frozen tensors only is never filled by a hook; ReduceGradients starts it.
}

absl::Status BucketedGradientReducer::ReduceGradients(std::vector<torch::Tensor>& grads) {
  State& s = *state_;
  if (s.plan.empty() && !grads.empty()) {
    return absl::FailedPreconditionError(
        "dist: ReduceGradients before SyncParameters (the trainer calls it at Create)");
  }
  if (grads.size() != s.params.size()) {
    return absl::InvalidArgumentError(absl::StrCat("dist: ", grads.size(), " gradients for ",
                                                   s.params.size(), " trainable tensors"));
  }
  std::lock_guard<std::mutex> lock(s.mutex);
  s.armed = false;
  if (s.works.size() != s.plan.size()) s.works.resize(s.plan.size());
  if (!s.error.ok()) return std::exchange(s.error, absl::OkStatus());
  const int from_hooks = s.next_to_start;
  for (int b = s.next_to_start; b < static_cast<int>(s.plan.size()); ++b) {
    if (absl::Status st = s.Start(b); !st.ok()) return st;
  }
  s.next_to_start = static_cast<int>(s.plan.size());
  s.started_by_hooks = from_hooks;
  try {
    torch::NoGradGuard no_grad;
    const torch::Tensor world = torch::scalar_tensor(static_cast<double>(comm_->size()));
    for (size_t b = 0; b < s.plan.size(); ++b) {
      if (absl::Status st = s.works[b]->Wait(); !st.ok()) return st;
      const BucketSpec& spec = s.plan[b];
      for (size_t k = 0; k < spec.tensors.size(); ++k) {
        torch::Tensor& grad = grads[spec.tensors[k]];
        if (!grad.defined()) continue;  // the same tensors lack a gradient on every rank
        const torch::Tensor slice =
            s.flats[b].narrow(0, spec.offsets[k], grad.numel()).view(grad.sizes());
        if (s.NativeAverage()) {
          grad.copy_(slice);
        } else {
          at::div_out(grad, slice, world);  // exact division, as one process's accumulation
        }
      }
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("dist: copying averaged gradients back: ",
                                            e.what_without_backtrace()));
  }
  // Ready for the next step, also for a caller that never calls PrepareBackward (then every
  // bucket starts here).
  s.works.clear();
  s.works.resize(s.plan.size());
  s.next_to_start = 0;
  s.full.assign(s.plan.size(), false);
  return absl::OkStatus();
}

absl::StatusOr<bool> BucketedGradientReducer::AnyRank(bool local) {
  std::vector<torch::Tensor> flag = {
      torch::full({1}, local ? 1.0f : 0.0f, torch::TensorOptions().device(comm_->device()))};
  if (absl::Status s = comm_->AllReduce(flag, ReduceOp::kMax, "any-rank flag"); !s.ok()) return s;
  return flag[0].item<float>() > 0.0f;
}

absl::StatusOr<bool> BucketedGradientReducer::AnyNonFinite(bool local_non_finite) {
  return AnyRank(local_non_finite);
}

absl::StatusOr<double> BucketedGradientReducer::AverageScalar(double local) {
  // float64 on the wire: the averaged loss of 2 ranks then equals one process's to the bit.
  std::vector<torch::Tensor> value = {torch::full(
      {1}, local, torch::TensorOptions().dtype(torch::kFloat64).device(comm_->device()))};
  if (absl::Status s = comm_->AllReduce(value, ReduceOp::kAvg, "loss average"); !s.ok()) return s;
  return value[0].item<double>();
}

absl::Status BucketedGradientReducer::ShareRankZeroStatus(const absl::Status& status) {
  const absl::Duration saved = comm_->timeout();
  comm_->set_timeout(std::max(saved, kRankZeroWorkTimeout));
  absl::StatusOr<std::vector<int64_t>> codes =
      comm_->AllGather(static_cast<int64_t>(status.code()), "rank 0's checkpoint status");
  comm_->set_timeout(saved);
  if (!codes.ok()) return codes.status();
  const auto code = static_cast<absl::StatusCode>((*codes)[0]);
  if (code == absl::StatusCode::kOk) return absl::OkStatus();
  if (comm_->rank() == 0) return status;
  return absl::Status(code, "dist: rank 0 failed writing a checkpoint, validation images or "
                            "metrics (its log has the reason)");
}

}  // namespace likeness::dist
