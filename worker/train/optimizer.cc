#include "worker/train/optimizer.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace likeness::train {
namespace {

// diffusers' EMAModel warm-up: (1 + n) / (10 + n), so early averages follow the weights.
constexpr double kEmaWarmupOffset = 10.0;

torch::Tensor StepTensor(int64_t step) { return torch::full({1}, step, torch::kInt64); }

}  // namespace

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions options)
    : groups_(std::move(groups)), options_(options) {
  state_.resize(AllParams().size());
}

std::vector<torch::Tensor> AdamW::AllParams() const {
  std::vector<torch::Tensor> all;
  for (const ParamGroup& g : groups_) all.insert(all.end(), g.params.begin(), g.params.end());
  return all;
}

void AdamW::Step(double lr_factor) {
  torch::NoGradGuard no_grad;
  size_t index = 0;
  for (const ParamGroup& group : groups_) {
    const double lr = group.base_lr * lr_factor;
    for (const torch::Tensor& param : group.params) {
      State& state = state_[index++];
      if (group.frozen || !param.grad().defined()) continue;
      const torch::Tensor& grad = param.grad();
      if (!state.exp_avg.defined()) {
        state.exp_avg = torch::zeros_like(param, torch::MemoryFormat::Preserve);
        state.exp_avg_sq = torch::zeros_like(param, torch::MemoryFormat::Preserve);
      }
      ++state.step;
      // Decoupled weight decay (Loshchilov & Hutter): shrink the weight, not the gradient.
      param.mul_(1.0 - lr * group.weight_decay);
      state.exp_avg.lerp_(grad, 1.0 - options_.beta1);
      state.exp_avg_sq.mul_(options_.beta2).addcmul_(grad, grad, 1.0 - options_.beta2);
      const double step = static_cast<double>(state.step);
      const double bias_correction1 = 1.0 - std::pow(options_.beta1, step);
      const double bias_correction2 = 1.0 - std::pow(options_.beta2, step);
      const double step_size = lr / bias_correction1;
      const torch::Tensor denom =
          (state.exp_avg_sq.sqrt() / std::sqrt(bias_correction2)).add_(options_.epsilon);
      param.addcdiv_(state.exp_avg, denom, -step_size);
    }
  }
}

void AdamW::ZeroGrad() {
  for (ParamGroup& group : groups_) {
    for (torch::Tensor& param : group.params) {
      if (param.grad().defined()) param.mutable_grad() = torch::Tensor();
    }
  }
}

safetensors::NamedTensors AdamW::StateTensors() const {
  safetensors::NamedTensors out;
  for (size_t i = 0; i < state_.size(); ++i) {
    const State& s = state_[i];
    if (!s.exp_avg.defined()) continue;
    out.emplace_back(absl::StrCat("adamw.", i, ".exp_avg"), s.exp_avg);
    out.emplace_back(absl::StrCat("adamw.", i, ".exp_avg_sq"), s.exp_avg_sq);
    out.emplace_back(absl::StrCat("adamw.", i, ".step"), StepTensor(s.step));
  }
  return out;
}

absl::Status AdamW::LoadStateTensors(const std::map<std::string, torch::Tensor>& tensors) {
  const std::vector<torch::Tensor> params = AllParams();
  std::vector<State> loaded(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string prefix = absl::StrCat("adamw.", i, ".");
    const auto avg = tensors.find(prefix + "exp_avg");
    const auto sq = tensors.find(prefix + "exp_avg_sq");
    const auto step = tensors.find(prefix + "step");
    const int present = (avg != tensors.end()) + (sq != tensors.end()) + (step != tensors.end());
    if (present == 0) continue;  // never updated (no gradient yet)
    if (present != 3) {
      return absl::InvalidArgumentError(absl::StrCat("optimizer state: ", prefix, "* incomplete"));
    }
    if (avg->second.sizes() != params[i].sizes() || sq->second.sizes() != params[i].sizes()) {
      return absl::InvalidArgumentError(
          absl::StrCat("optimizer state: ", prefix, "exp_avg has shape ",
                       c10::str(avg->second.sizes()), ", the parameter ", c10::str(params[i].sizes())));
    }
    const auto options = params[i].options().requires_grad(false);
    loaded[i].exp_avg = avg->second.to(options, /*non_blocking=*/false, /*copy=*/true);
    loaded[i].exp_avg_sq = sq->second.to(options, /*non_blocking=*/false, /*copy=*/true);
    loaded[i].step = step->second.to(torch::kInt64).view(-1)[0].item<int64_t>();
  }
  state_ = std::move(loaded);
  return absl::OkStatus();
}

double ClipGradNorm(std::vector<torch::Tensor>& grads, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> norms;
  for (const torch::Tensor& g : grads) {
    if (g.defined()) norms.push_back(g.detach().to(torch::kFloat32).norm(2));
  }
  if (norms.empty()) return 0.0;
  const torch::Tensor total = torch::stack(norms).norm(2);
  const double total_norm = total.to(torch::kFloat64).item<double>();
  if (!std::isfinite(total_norm) || max_norm <= 0.0) return total_norm;
  // clip_grad_norm_ multiplies by the clamped coefficient always (1.0 is exact).
  const torch::Tensor coef = torch::clamp_max(max_norm / (total + kClipNormEpsilon), 1.0);
  for (torch::Tensor& g : grads) {
    if (g.defined()) g.mul_(coef.to(g.device(), g.scalar_type()));
  }
  return total_norm;
}

Ema::Ema(const std::vector<torch::Tensor>& params, double decay) : decay_(decay) {
  if (!enabled()) return;
  for (const torch::Tensor& p : params) shadow_.push_back(p.detach().clone());
}

void Ema::Update(const std::vector<torch::Tensor>& params) {
  if (!enabled()) return;
  torch::NoGradGuard no_grad;
  const double n = static_cast<double>(num_updates_);
  const double decay = std::min(decay_, (1.0 + n) / (kEmaWarmupOffset + n));
  for (size_t i = 0; i < shadow_.size(); ++i) {
    // shadow -= (1 - decay) * (shadow - param), diffusers' form.
    shadow_[i].sub_((shadow_[i] - params[i].detach()).mul_(1.0 - decay));
  }
  ++num_updates_;
}

safetensors::NamedTensors Ema::StateTensors() const {
  safetensors::NamedTensors out;
  if (!enabled()) return out;
  for (size_t i = 0; i < shadow_.size(); ++i) out.emplace_back(absl::StrCat("ema.", i), shadow_[i]);
  out.emplace_back("ema.num_updates", StepTensor(num_updates_));
  return out;
}

absl::Status Ema::LoadStateTensors(const std::map<std::string, torch::Tensor>& tensors) {
  if (!enabled()) return absl::OkStatus();
  for (size_t i = 0; i < shadow_.size(); ++i) {
    const auto it = tensors.find(absl::StrCat("ema.", i));
    if (it == tensors.end() || it->second.sizes() != shadow_[i].sizes()) {
      return absl::InvalidArgumentError(absl::StrCat("EMA state: ema.", i, " missing or reshaped"));
    }
    torch::NoGradGuard no_grad;
    shadow_[i].copy_(it->second);
  }
  const auto n = tensors.find("ema.num_updates");
  if (n == tensors.end()) return absl::InvalidArgumentError("EMA state: ema.num_updates missing");
  num_updates_ = n->second.view(-1)[0].item<int64_t>();
  return absl::OkStatus();
}

}  // namespace likeness::train
