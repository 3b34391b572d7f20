// The sampling loop: classifier-free guidance around the UNet, one sampler step per timestep,
// and for inpainting the RePaint blending of the known region at every step.
//
// Per step i (from the noise level of timesteps[i] to that of i + 1):
//   1. x_in = ScaleModelInput(latents, i); a 9-channel inpainting UNet gets
//      cat(x_in, mask, masked-image latents) along channels (diffusers' order);
//   2. with guidance scale s > 1 the UNet runs once on [uncond; cond]:
//        eps = eps_u + s * (eps_c - eps_u),
//      then guidance rescale r (Lin et al. 2023, diffusers' rescale_noise_cfg):
//        eps = r * eps * std(eps_c) / std(eps) + (1 - r) * eps   (std per image);
//   3. latents = Step(eps, i, latents, step noise of each image's generator);
//   4. inpainting with a 4-channel UNet: latents = known * (1 - m) + latents * m with
//      known = AddNoise(original latents, the initial noise, i + 1) and m the latent mask;
//   5. RePaint jumps (jump_samples > 1): after every jump_length steps, Renoise back
//      jump_length levels with fresh noise and run those steps again, jump_samples - 1 times,
//      so the repainted region harmonises with the kept one.
// Latents and sampler arithmetic stay float32 whatever the UNet's dtype.
#ifndef LIKENESS_WORKER_GENERATE_DENOISE_H_
#define LIKENESS_WORKER_GENERATE_DENOISE_H_

#include <torch/torch.h>

#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/model/unet/unet2d_condition.h"
#include "worker/sample/scheduler.h"

namespace likeness::generate {

// Conditioning for B images (rows already repeated per image).
struct Conditioning {
  torch::Tensor prompt_embeds;  // [B, N, D]
  torch::Tensor pooled;         // [B, P]
  torch::Tensor time_ids;       // [B, 6]
};

struct InpaintLatents {
  torch::Tensor mask;                  // [B, 1, h, w] in [0, 1], 1 = repaint
  torch::Tensor image_latents;         // [B, C, h, w] clean latents of the image
  torch::Tensor noise;                 // [B, C, h, w] the noise the start latents were made with
  torch::Tensor masked_image_latents;  // [B, C, h, w]; a 9-channel UNet only
  int jump_length = 0;
  int jump_samples = 1;
};

struct DenoiseRequest {
  model::unet::UNet2DConditionModel unet{nullptr};
  sample::Scheduler* scheduler = nullptr;  // SetTimesteps already called
  Conditioning cond;
  Conditioning uncond;  // used when guidance_scale > 1
  double guidance_scale = 1.0;
  double guidance_rescale = 0.0;
  torch::Tensor latents;  // [B, C, h, w] at the noise level before step begin_index
  int64_t begin_index = 0;
  // One CPU generator per image: the step noise of ancestral samplers and RePaint's re-noising
  // come from image b's own generator, so an image does not depend on its batch neighbours.
  std::vector<torch::Generator>* generators = nullptr;
  const InpaintLatents* inpaint = nullptr;
  // Called after every UNet evaluation: (done, total).
  std::function<void(int64_t, int64_t)> progress;
};

// The number of UNet evaluations Denoise makes (steps plus RePaint repeats), for progress bars.
int64_t DenoiseEvaluations(int64_t num_steps, int64_t begin_index, int jump_length,
                           int jump_samples);

// The denoised latents [B, C, h, w] float32. INVALID_ARGUMENT for inconsistent inputs;
// INTERNAL (with torch's message) when the UNet throws.
absl::StatusOr<torch::Tensor> Denoise(const DenoiseRequest& request);

// N(0, 1) noise of `shape` with the batch dim 1, drawn on the CPU in float32 from each generator
// in turn and stacked: [generators.size(), shape...]. Drawing on the CPU makes a seed mean the
// same starting noise on every device.
torch::Tensor PerImageNoise(std::vector<torch::Generator>& generators,
                            const std::vector<int64_t>& shape);

}  // namespace likeness::generate

#endif  // LIKENESS_WORKER_GENERATE_DENOISE_H_
