// All-reduce bandwidth of the bucketed gradient reducer beside the plain collective of the
// same size, in the style of nccl-tests (all_reduce_perf), on whatever communicator the
// launcher gives (MPI on CPU, NCCL with -g when the build has it):
//   mpirun -np 2 build/bin/allreduce_benchmark -b 64K -e 256M -f 4 -n 20 -w 5 -c 1
// Options (nccl-tests' letters):
//   -b / -e   smallest / largest message in bytes (K, M, G suffixes)
//   -f        size factor between rows
//   -n / -w   timed iterations / warm-up iterations per row
//   -c        1: check every result (the default); 0: time only
//   -B        reducer bucket size in bytes (default kDefaultBucketBytes)
//   -p        bytes of each "parameter" tensor the reducer sees (default 1M)
//   -g        use the GPU of the local rank (NCCL)
//   -x        overlap mode: for each bucket size in -B's list (comma separated), the step time of
//             a synthetic MLP's backward with and without the reduction, and the exposed
//             communication (their difference) as a share of the step
// Columns: time per all-reduce in microseconds, algorithm bandwidth bytes/time and bus
// bandwidth algbw * 2(n-1)/n (the bytes each link carries in a ring all-reduce), for the plain
// collective and for the reducer (gradient copy-in, bucketed all-reduce, copy-out), then the
// reducer's bus bandwidth as a share of the plain one's.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "worker/dist/bucketed_reducer.h"
#include "worker/dist/communicator_factory.h"

namespace likeness::dist {
namespace {

struct Options {
  int64_t min_bytes = 64 << 10;
  int64_t max_bytes = 64 << 20;
  double factor = 4.0;
  int iters = 20;
  int warmup = 5;
  bool check = true;
  std::vector<int64_t> bucket_bytes = {kDefaultBucketBytes};
  int64_t param_bytes = 1 << 20;
  bool gpu = false;
  bool overlap = false;
};

int64_t ParseBytes(const std::string& text) {
  if (text.empty()) return 0;
  int64_t scale = 1;
  std::string digits = text;
  switch (text.back()) {
    case 'K': case 'k': scale = int64_t{1} << 10; digits.pop_back(); break;
    case 'M': case 'm': scale = int64_t{1} << 20; digits.pop_back(); break;
    case 'G': case 'g': scale = int64_t{1} << 30; digits.pop_back(); break;
    default: break;
  }
  int64_t value = 0;
  return absl::SimpleAtoi(digits, &value) ? value * scale : 0;
}

bool ParseOptions(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "-g") { o->gpu = true; continue; }
    if (flag == "-x") { o->overlap = true; continue; }
    if (i + 1 >= argc) return false;
    const std::string value = argv[++i];
    if (flag == "-b") o->min_bytes = ParseBytes(value);
    else if (flag == "-e") o->max_bytes = ParseBytes(value);
    else if (flag == "-f") o->factor = std::atof(value.c_str());
    else if (flag == "-n") o->iters = std::atoi(value.c_str());
    else if (flag == "-w") o->warmup = std::atoi(value.c_str());
    else if (flag == "-c") o->check = std::atoi(value.c_str()) != 0;
    else if (flag == "-p") o->param_bytes = ParseBytes(value);
    else if (flag == "-B") {
      o->bucket_bytes.clear();
      for (const auto& part : absl::StrSplit(value, ',')) o->bucket_bytes.push_back(ParseBytes(std::string(part)));
    } else {
      return false;
    }
  }
  return o->min_bytes > 0 && o->max_bytes >= o->min_bytes && o->factor > 1.0 && o->iters > 0;
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

void Synchronize(Communicator& comm) {
  if (comm.device().is_cuda()) torch::cuda::synchronize(comm.device().index());
}

// Times `fn` over o.iters iterations after o.warmup, between barriers; the slowest rank's mean.
template <typename Fn>
double TimeIt(Communicator& comm, const Options& o, Fn fn) {
  for (int i = 0; i < o.warmup; ++i) fn();
  Synchronize(comm);
  (void)comm.Barrier("timing start");
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < o.iters; ++i) fn();
  Synchronize(comm);
  double seconds = Seconds(std::chrono::steady_clock::now() - start) / o.iters;
  std::vector<torch::Tensor> slowest = {torch::full({1}, seconds, torch::TensorOptions().dtype(torch::kFloat64).device(comm.device()))};
  (void)comm.AllReduce(slowest, ReduceOp::kMax, "timing");
  return slowest[0].item<double>();
}

int BandwidthTable(Communicator& comm, const Options& o) {
  const int n = comm.size();
  const double bus_factor = 2.0 * (n - 1) / n;
  const auto options = torch::TensorOptions().dtype(torch::kFloat).device(comm.device());
  if (comm.rank() == 0) {
    std::printf("# allreduce_benchmark: %d ranks, backend %s, bucket %lld B, parameters of %lld B\n", n,
                comm.backend().c_str(), static_cast<long long>(o.bucket_bytes[0]),
                static_cast<long long>(o.param_bytes));
    std::printf("#                                      plain all-reduce               bucketed reducer\n");
    std::printf("# %12s %12s %6s %10s %8s %8s %6s %10s %8s %8s %6s %7s\n", "size(B)", "count",
                "type", "time(us)", "algbw", "busbw", "#wrong", "time(us)", "algbw", "busbw",
                "#wrong", "ratio");
  }
  int wrong_total = 0;
  for (int64_t bytes = o.min_bytes; bytes <= o.max_bytes;
       bytes = static_cast<int64_t>(bytes * o.factor)) {
    const int64_t count = bytes / 4;
    // Plain: one collective over the whole message.
    torch::Tensor flat = torch::full({count}, comm.rank() + 1.0, options);
    std::unique_ptr<Work> last;
    const double plain = TimeIt(comm, o, [&] {
      auto work = comm.StartAllReduce(flat, ReduceOp::kSum, "plain");
      if (work.ok()) (void)(*work)->Wait();
    });
    int plain_wrong = 0;
    if (o.check) {
      flat.fill_(comm.rank() + 1.0);
      auto work = comm.StartAllReduce(flat, ReduceOp::kSum, "plain check");
      if (work.ok()) (void)(*work)->Wait();
      plain_wrong = static_cast<int>((flat != n * (n + 1) / 2.0).sum().item<int64_t>());
    }
    // Reducer: the same bytes as gradients of tensors of param_bytes each.
    std::vector<torch::Tensor> params;
    for (int64_t done = 0; done < count;) {
      const int64_t part = std::min(count - done, std::max<int64_t>(1, o.param_bytes / 4));
      torch::Tensor p = torch::zeros({part}, options.requires_grad(true));
      p.mutable_grad() = torch::full({part}, comm.rank() + 1.0, options);
      params.push_back(p);
      done += part;
    }
    BucketedGradientReducer reducer(&comm, BucketedReducerOptions{o.bucket_bytes[0]});
    (void)reducer.SyncParameters(params, 0);
    std::vector<torch::Tensor> grads;
    for (const auto& p : params) grads.push_back(p.grad());
    const double bucketed = TimeIt(comm, o, [&] {
      reducer.PrepareBackward(true);
      (void)reducer.ReduceGradients(grads);
    });
    int reducer_wrong = 0;
    if (o.check) {
      for (auto& g : grads) g.fill_(comm.rank() + 1.0);
      (void)reducer.ReduceGradients(grads);
      for (const auto& g : grads) reducer_wrong += static_cast<int>((g != (n + 1) / 2.0).sum().item<int64_t>());
    }
    wrong_total += plain_wrong + reducer_wrong;
    if (comm.rank() == 0) {
      const double plain_alg = bytes / plain / 1e9;
      const double bucket_alg = bytes / bucketed / 1e9;
      std::printf("  %12lld %12lld %6s %10.1f %8.2f %8.2f %6d %10.1f %8.2f %8.2f %6d %6.1f%%\n",
                  static_cast<long long>(bytes), static_cast<long long>(count), "float",
                  plain * 1e6, plain_alg, plain_alg * bus_factor, plain_wrong, bucketed * 1e6,
                  bucket_alg, bucket_alg * bus_factor, reducer_wrong,
                  100.0 * plain / bucketed);
    }
  }
  if (comm.rank() == 0) std::printf("# out of bounds values: %d %s\n", wrong_total, wrong_total ? "FAILED" : "OK");
  return wrong_total == 0 ? 0 : 1;
}

// Exposed communication: step = forward + backward (+ reduction) of an MLP whose parameters
// total max_bytes; exposed = step with the reducer - step without, per bucket size.
int OverlapTable(Communicator& comm, const Options& o) {
  const auto options = torch::TensorOptions().dtype(torch::kFloat).device(comm.device());
  // Square layers of param_bytes each: width = sqrt(param_bytes / 4).
  const int64_t width = static_cast<int64_t>(std::sqrt(static_cast<double>(o.param_bytes / 4)));
  const int64_t layers = std::max<int64_t>(1, o.max_bytes / (width * width * 4));
  const int64_t batch = 64;
  torch::manual_seed(0);
  std::vector<torch::Tensor> params;
  for (int64_t i = 0; i < layers; ++i) {
    params.push_back((torch::randn({width, width}, options) / std::sqrt(double(width))).requires_grad_(true));
  }
  const torch::Tensor input = torch::randn({batch, width}, options);
  auto backward = [&] {
    for (auto& p : params) p.mutable_grad() = torch::Tensor();
    torch::Tensor h = input;
    for (const auto& w : params) h = torch::tanh(h.matmul(w));
    h.pow(2).mean().backward();
  };
  const double compute = TimeIt(comm, o, backward);
  if (comm.rank() == 0) {
    std::printf("# overlap: %d ranks, backend %s, MLP of %lld layers %lldx%lld (%lld B of gradients), batch %lld\n",
                comm.size(), comm.backend().c_str(), static_cast<long long>(layers),
                static_cast<long long>(width), static_cast<long long>(width),
                static_cast<long long>(layers * width * width * 4), static_cast<long long>(batch));
    std::printf("# step without reduction: %.2f ms\n", compute * 1e3);
    std::printf("# %12s %8s %12s %12s %10s %10s\n", "bucket(B)", "buckets", "step(ms)", "exposed(ms)",
                "exposed%", "by hooks");
  }
  for (const int64_t bucket : o.bucket_bytes) {
    BucketedGradientReducer reducer(&comm, BucketedReducerOptions{bucket});
    (void)reducer.SyncParameters(params, 0);
    const double step = TimeIt(comm, o, [&] {
      reducer.PrepareBackward(true);
      backward();
      std::vector<torch::Tensor> grads;
      for (const auto& p : params) grads.push_back(p.grad());
      (void)reducer.ReduceGradients(grads);
    });
    if (comm.rank() == 0) {
      std::printf("  %12lld %8zu %12.2f %12.2f %9.1f%% %10d\n", static_cast<long long>(bucket),
                  reducer.buckets().size(), step * 1e3, (step - compute) * 1e3,
                  100.0 * (step - compute) / step, reducer.buckets_started_by_hooks());
    }
  }
  return 0;
}

}  // namespace
}  // namespace likeness::dist

int main(int argc, char** argv) {
  using namespace likeness::dist;
  Options o;
  if (!ParseOptions(argc, argv, &o)) {
    std::fprintf(stderr,
                 "usage: allreduce_benchmark [-b BYTES] [-e BYTES] [-f FACTOR] [-n ITERS] [-w WARMUP] "
                 "[-c 0|1] [-B BUCKET[,BUCKET...]] [-p PARAM_BYTES] [-g] [-x]\n");
    return 2;
  }
  CommunicatorOptions comm_options;
  comm_options.device = o.gpu ? "cuda" : "cpu";
  auto comm = CommunicatorFromEnvironment(comm_options);
  if (!comm.ok()) {
    std::fprintf(stderr, "allreduce_benchmark: %s\n", comm.status().ToString().c_str());
    return 1;
  }
  return o.overlap ? OverlapTable(**comm, o) : BandwidthTable(**comm, o);
}
