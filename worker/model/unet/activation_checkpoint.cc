#include "worker/model/unet/activation_checkpoint.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "common/torch_compat.h"
#include "worker/model/layers.h"

namespace likeness::model::unet {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What backward needs besides the saved inputs; held by the node through an IValue capsule.
struct Recompute : torch::CustomClassHolder {
  CheckpointedFn fn;
  size_t num_inputs = 0;
  std::vector<torch::Tensor> params;  // the module's parameters that require grad
  // The random generators' states when forward ran, so the recomputation draws the same
  // dropout masks (a LoRA's dropout) as the forward it replays.
  std::vector<std::pair<torch::Device, torch::Tensor>> rng_states;
  // CUDA autocast as forward saw it: backward runs outside the trainer's guard, and recomputing
  // in float32 what forward ran in bf16 gives other activations (and dtype errors).
  std::optional<c10::ScalarType> autocast_dtype;
};

// The default generator of each device `tensors` live on (the CPU's always).
std::vector<std::pair<torch::Device, torch::Tensor>> CaptureRngStates(
    const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Device> devices = {torch::kCPU};
  for (const torch::Tensor& t : tensors) {
    if (std::find(devices.begin(), devices.end(), t.device()) == devices.end()) {
      devices.push_back(t.device());
    }
  }
  std::vector<std::pair<torch::Device, torch::Tensor>> states;
  for (const torch::Device& device : devices) {
    states.emplace_back(device, at::globalContext().defaultGenerator(device).get_state());
  }
  return states;
}

void RestoreRngStates(const std::vector<std::pair<torch::Device, torch::Tensor>>& states) {
  for (const auto& [device, state] : states) {
    at::Generator generator = at::globalContext().defaultGenerator(device);  // a shared handle
    generator.set_state(state);
  }
}

class CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
 public:
  // `inputs_and_params`: the block's inputs, then Recompute::params (step 2 of the header).
  static variable_list forward(AutogradContext* ctx, c10::intrusive_ptr<Recompute> recompute,
                               at::TensorList inputs_and_params) {
    std::vector<torch::Tensor> inputs(
        inputs_and_params.begin(),
        inputs_and_params.begin() + static_cast<int64_t>(recompute->num_inputs));
    ctx->save_for_backward(inputs);
    recompute->rng_states = CaptureRngStates(inputs);
    recompute->autocast_dtype = compat::ActiveCudaAutocastDtype();
    torch::Tensor out;
    {
      torch::NoGradGuard no_grad;
      const compat::AutocastCacheDisabled no_cast_cache;  // see AutocastCacheDisabled
      out = recompute->fn(inputs);
    }
    ctx->saved_data["recompute"] = c10::IValue::make_capsule(std::move(recompute));
    return {out};
  }

  // One gradient per forward argument: none for `recompute`, then one per tensor of the list.
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto recompute =
        c10::static_intrusive_pointer_cast<Recompute>(ctx->saved_data["recompute"].toCapsule());
    const variable_list saved = ctx->get_saved_variables();
    std::vector<torch::Tensor> inputs;
    std::vector<torch::Tensor> wrt;
    std::vector<size_t> wrt_index;  // position in inputs_and_params
    for (size_t i = 0; i < saved.size(); ++i) {
      inputs.push_back(saved[i].detach().requires_grad_(saved[i].requires_grad()));
      if (saved[i].requires_grad()) {
        wrt.push_back(inputs.back());
        wrt_index.push_back(i);
      }
    }
    for (size_t j = 0; j < recompute->params.size(); ++j) {
      wrt.push_back(recompute->params[j]);
      wrt_index.push_back(saved.size() + j);
    }
    torch::Tensor out;
    {
      // Replay forward's random draws, then give the generators back their current states.
      const auto current = CaptureRngStates(inputs);
      RestoreRngStates(recompute->rng_states);
      torch::AutoGradMode grad_mode(true);
      std::optional<compat::CudaAutocast> autocast;
      if (recompute->autocast_dtype) autocast.emplace(*recompute->autocast_dtype);
      // Casts made here have history, but cached they would outlive this backward's graph.
      const compat::AutocastCacheDisabled no_cast_cache;
      out = recompute->fn(inputs);
      RestoreRngStates(current);
    }
    torch::Tensor grad_out = grad_outputs[0].defined() ? grad_outputs[0] : torch::zeros_like(out);
    const variable_list grads =
        torch::autograd::grad({out}, wrt, {grad_out}, /*retain_graph=*/false,
                              /*create_graph=*/false, /*allow_unused=*/true);
    variable_list result(1 + saved.size() + recompute->params.size());
    for (size_t k = 0; k < grads.size(); ++k) result[1 + wrt_index[k]] = grads[k];
    return result;
  }
};

}  // namespace

torch::Tensor CheckpointedCall(torch::nn::Module& module, const std::vector<torch::Tensor>& inputs,
                               const CheckpointedFn& fn) {
  if (!torch::GradMode::is_enabled()) return fn(inputs);
  auto recompute = c10::make_intrusive<Recompute>();
  recompute->params = model::TrainableTensorsOf(module);
  bool any_input_requires_grad = false;
  for (const torch::Tensor& t : inputs)
    any_input_requires_grad = any_input_requires_grad || t.requires_grad();
  if (!any_input_requires_grad && recompute->params.empty()) return fn(inputs);
  recompute->fn = fn;
  recompute->num_inputs = inputs.size();
  std::vector<torch::Tensor> inputs_and_params = inputs;
  inputs_and_params.insert(inputs_and_params.end(), recompute->params.begin(),
                           recompute->params.end());
  return CheckpointFunction::apply(std::move(recompute), at::TensorList(inputs_and_params))[0];
}

}  // namespace likeness::model::unet
