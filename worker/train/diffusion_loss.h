// The denoising loss of one micro-batch, as diffusers' SDXL training scripts compute it, in
// float32 whatever dtype the UNet ran in:
//   per-sample mse = mean over C, H, W of (prediction - target)^2
//   min-SNR-γ (Hang et al. 2023) weights per sample, when gamma > 0:
//       epsilon prediction  min(snr, γ) / snr
//       v prediction        min(snr, γ) / (snr + 1)
//   instance loss = mean over the instance rows of weight * mse
//   prior loss    = mean over the class rows of mse (unweighted, as diffusers' scripts)
//   loss          = instance loss + prior_loss_weight * prior loss
#ifndef LIKENESS_WORKER_TRAIN_DIFFUSION_LOSS_H_
#define LIKENESS_WORKER_TRAIN_DIFFUSION_LOSS_H_

#include <torch/torch.h>

#include <cstdint>

#include "worker/train/train_settings.h"

namespace likeness::train {

// snr float32 [B] -> float32 [B]. gamma <= 0: ones.
torch::Tensor MinSnrWeights(const torch::Tensor& snr, double gamma, Prediction prediction);

struct DiffusionLoss {
  torch::Tensor total;     // float32 scalar, differentiable
  torch::Tensor instance;  // float32 scalar
  torch::Tensor prior;     // float32 scalar; undefined without class rows
};

// prediction, target [B, C, H, W]; rows [0, num_instance) are instance rows, the rest class
// rows; weights float32 [B] (MinSnrWeights) or undefined.
DiffusionLoss ComputeDiffusionLoss(const torch::Tensor& prediction, const torch::Tensor& target,
                                   const torch::Tensor& weights, int64_t num_instance,
                                   double prior_loss_weight);

}  // namespace likeness::train

#endif  // LIKENESS_WORKER_TRAIN_DIFFUSION_LOSS_H_
