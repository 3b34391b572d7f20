#include "worker/generate/denoise.h"

#include "absl/strings/str_cat.h"

namespace likeness::generate {
namespace {

bool UsesGuidance(const DenoiseRequest& request) { return request.guidance_scale > 1.0; }

// std over every dim but the batch, per image, unbiased as torch.std (diffusers' formula).
torch::Tensor PerImageStd(const torch::Tensor& x) {
  std::vector<int64_t> dims;
  for (int64_t d = 1; d < x.dim(); ++d) dims.push_back(d);
  return x.std(dims, /*unbiased=*/true, /*keepdim=*/true);
}

absl::Status CheckRequest(const DenoiseRequest& r) {
  if (!r.unet || r.scheduler == nullptr || r.generators == nullptr) {
    return absl::InvalidArgumentError("denoise: unet, scheduler and generators are required");
  }
  if (r.scheduler->num_steps() == 0) {
    return absl::InvalidArgumentError("denoise: the scheduler has no timesteps (SetTimesteps)");
  }
  if (!r.latents.defined() || r.latents.dim() != 4) {
    return absl::InvalidArgumentError("denoise: latents must be [B, C, h, w]");
  }
  const int64_t batch = r.latents.size(0);
  if (static_cast<int64_t>(r.generators->size()) != batch) {
    return absl::InvalidArgumentError(absl::StrCat("denoise: ", r.generators->size(),
                                                   " generators for a batch of ", batch));
  }
  if (r.begin_index < 0 || r.begin_index >= r.scheduler->num_steps()) {
    return absl::InvalidArgumentError(absl::StrCat("denoise: begin index ", r.begin_index,
                                                   " outside [0, ", r.scheduler->num_steps(), ")"));
  }
  const int64_t unet_channels = r.unet->config().in_channels;
  const int64_t expected = r.latents.size(1) * (r.inpaint && r.inpaint->masked_image_latents.defined() ? 2 : 1) +
                           (r.inpaint && r.inpaint->masked_image_latents.defined() ? 1 : 0);
  if (unet_channels != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        "denoise: the UNet takes ", unet_channels, " input channels but would be given ", expected,
        unet_channels == 9 ? " (an inpainting UNet needs a mask and an image)" : ""));
  }
  if (r.inpaint != nullptr && r.inpaint->jump_samples > 1 && r.inpaint->jump_length < 1) {
    return absl::InvalidArgumentError("denoise: RePaint jumps need a jump length of at least 1");
  }
  return absl::OkStatus();
}

class Loop {
 public:
  explicit Loop(const DenoiseRequest& r) : r_(r), unet_(r.unet) {
    const torch::Tensor& weight = r.unet->conv_in->weight;
    unet_options_ = torch::TensorOptions().dtype(weight.scalar_type()).device(weight.device());
    // The sampler state lives on the UNet's device in float32; the request's tensors may come
    // from the CPU (noise from CPU generators, masks), so they move over once, here.
    const torch::TensorOptions state = torch::TensorOptions().dtype(torch::kFloat32).device(weight.device());
    if (r.inpaint != nullptr) {
      inpaint_ = *r.inpaint;
      inpaint_.mask = inpaint_.mask.to(state);
      inpaint_.image_latents = inpaint_.image_latents.to(state);
      inpaint_.noise = inpaint_.noise.to(state);
      if (inpaint_.masked_image_latents.defined()) {
        inpaint_.masked_image_latents = inpaint_.masked_image_latents.to(state);
      }
    }
    total_ = DenoiseEvaluations(r.scheduler->num_steps(), r.begin_index,
                                r.inpaint ? r.inpaint->jump_length : 0,
                                r.inpaint ? r.inpaint->jump_samples : 1);
    if (UsesGuidance(r)) {
      embeds_ = torch::cat({r.uncond.prompt_embeds, r.cond.prompt_embeds}).to(unet_options_);
      pooled_ = torch::cat({r.uncond.pooled, r.cond.pooled}).to(unet_options_);
      time_ids_ = torch::cat({r.uncond.time_ids, r.cond.time_ids}).to(unet_options_);
    } else {
      embeds_ = r.cond.prompt_embeds.to(unet_options_);
      pooled_ = r.cond.pooled.to(unet_options_);
      time_ids_ = r.cond.time_ids.to(unet_options_);
    }
  }

  torch::Tensor Run() {
    torch::Tensor latents = r_.latents.to(unet_options_.device(), torch::kFloat32);
    sample::Scheduler& scheduler = *r_.scheduler;
    const int64_t steps = scheduler.num_steps();
    const int jump_length = r_.inpaint ? r_.inpaint->jump_length : 0;
    const int jump_samples = r_.inpaint ? r_.inpaint->jump_samples : 1;
    for (int64_t i = r_.begin_index; i < steps; ++i) {
      latents = OneStep(latents, i);
      const int64_t done = i + 1 - r_.begin_index;
      if (jump_samples <= 1 || done % jump_length != 0 || i + 1 >= steps) continue;
      for (int repeat = 1; repeat < jump_samples; ++repeat) {
        for (int64_t k = i; k > i - jump_length; --k) {
          latents = scheduler.Renoise(latents, StepNoise(latents), k);
        }
        scheduler.Reset();
        for (int64_t k = i + 1 - jump_length; k <= i; ++k) latents = OneStep(latents, k);
      }
    }
    return latents;
  }

 private:
  torch::Tensor StepNoise(const torch::Tensor& like) {
    return PerImageNoise(*r_.generators, like.sizes().slice(1).vec()).to(like.device());
  }

  torch::Tensor OneStep(const torch::Tensor& latents, int64_t i) {
    sample::Scheduler& scheduler = *r_.scheduler;
    torch::Tensor x_in = scheduler.ScaleModelInput(latents, i);
    if (r_.inpaint != nullptr && inpaint_.masked_image_latents.defined()) {
      x_in = torch::cat({x_in, inpaint_.mask.to(x_in.dtype()),
                         inpaint_.masked_image_latents.to(x_in.dtype())},
                        1);
    }
    const bool guided = UsesGuidance(r_);
    if (guided) x_in = torch::cat({x_in, x_in});
    torch::Tensor t = scheduler.timesteps()[i].to(unet_options_.device());
    torch::Tensor eps;
    {
      torch::NoGradGuard no_grad;
      eps = unet_->forward(x_in.to(unet_options_), t, embeds_, pooled_, time_ids_)
                .to(torch::kFloat32);
    }
    if (guided) {
      std::vector<torch::Tensor> halves = eps.chunk(2);
      const torch::Tensor& eps_uncond = halves[0];
      const torch::Tensor& eps_cond = halves[1];
      eps = eps_uncond + r_.guidance_scale * (eps_cond - eps_uncond);
      if (r_.guidance_rescale > 0) {
        const torch::Tensor rescaled = eps * (PerImageStd(eps_cond) / PerImageStd(eps));
        eps = r_.guidance_rescale * rescaled + (1.0 - r_.guidance_rescale) * eps;
      }
    }
    torch::Tensor noise;
    if (scheduler.NeedsStepNoise()) noise = StepNoise(latents);
    torch::Tensor next = scheduler.Step(eps, i, latents, noise).prev_sample;
    if (r_.inpaint != nullptr && !inpaint_.masked_image_latents.defined()) {
      const torch::Tensor known = scheduler.AddNoise(inpaint_.image_latents, inpaint_.noise, i + 1);
      const torch::Tensor m = inpaint_.mask.to(next.dtype());
      next = known * (1 - m) + next * m;
    }
    if (r_.progress) r_.progress(++done_, total_);
    return next;
  }

  const DenoiseRequest& r_;
  model::unet::UNet2DConditionModel unet_;  // a handle: the request's is const
  torch::TensorOptions unet_options_;
  InpaintLatents inpaint_;  // the request's, on the UNet's device
  torch::Tensor embeds_, pooled_, time_ids_;
  int64_t done_ = 0;
  int64_t total_ = 0;
};

}  // namespace

int64_t DenoiseEvaluations(int64_t num_steps, int64_t begin_index, int jump_length,
                           int jump_samples) {
  const int64_t run = num_steps - begin_index;
  if (run <= 0) return 0;
  if (jump_samples <= 1 || jump_length <= 0) return run;
  const int64_t jumps = (run - 1) / jump_length;
  return run + jumps * static_cast<int64_t>(jump_samples - 1) * jump_length;
}

torch::Tensor PerImageNoise(std::vector<torch::Generator>& generators,
                            const std::vector<int64_t>& shape) {
  std::vector<int64_t> one = {1};
  one.insert(one.end(), shape.begin(), shape.end());
  std::vector<torch::Tensor> rows;
  rows.reserve(generators.size());
  for (torch::Generator& generator : generators) {
    rows.push_back(torch::randn(one, generator, torch::TensorOptions().dtype(torch::kFloat32)));
  }
  return torch::cat(rows);
}

absl::StatusOr<torch::Tensor> Denoise(const DenoiseRequest& request) {
  if (absl::Status valid = CheckRequest(request); !valid.ok()) return valid;
  try {
    Loop loop(request);
    return loop.Run();
  } catch (const c10::Error& error) {
    return absl::InternalError(absl::StrCat("denoise: ", error.what_without_backtrace()));
  }
}

}  // namespace likeness::generate
