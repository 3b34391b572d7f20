#include "worker/model/unet/activation_checkpoint.h"

#include <utility>

namespace likeness::model::unet {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What backward needs besides the saved inputs; held by the node through an IValue capsule.
struct Recompute : torch::CustomClassHolder {
  CheckpointedFn fn;
  size_t num_inputs = 0;
  std::vector<torch::Tensor> params;  // the module's parameters that require grad
};

class CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
 public:
  // `inputs_and_params`: the block's inputs, then Recompute::params (step 2 of the header).
  static variable_list forward(AutogradContext* ctx, c10::intrusive_ptr<Recompute> recompute,
                               at::TensorList inputs_and_params) {
    std::vector<torch::Tensor> inputs(
        inputs_and_params.begin(),
        inputs_and_params.begin() + static_cast<int64_t>(recompute->num_inputs));
    ctx->save_for_backward(inputs);
    torch::Tensor out;
    {
      torch::NoGradGuard no_grad;
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
      torch::AutoGradMode grad_mode(true);
      out = recompute->fn(inputs);
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
  for (const torch::Tensor& p : module.parameters(/*recurse=*/true)) {
    if (p.requires_grad()) recompute->params.push_back(p);
  }
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
