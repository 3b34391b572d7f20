// diffusers' DiagonalGaussianDistribution: the VAE posterior q(z | image), a Gaussian per latent
// element whose mean and log-variance are the two halves (along channels) of the encoder's
// moments. logvar is clamped to [kMinLogVar, kMaxLogVar], as diffusers does.
#ifndef LIKENESS_WORKER_MODEL_VAE_DIAGONAL_GAUSSIAN_H_
#define LIKENESS_WORKER_MODEL_VAE_DIAGONAL_GAUSSIAN_H_

#include <torch/torch.h>

#include <optional>

namespace likeness::model {

class DiagonalGaussianDistribution {
 public:
  static constexpr double kMinLogVar = -30.0;
  static constexpr double kMaxLogVar = 20.0;

  // moments: [B, 2*C, h, w] (mean channels first, then logvar channels).
  explicit DiagonalGaussianDistribution(const torch::Tensor& moments);

  const torch::Tensor& mean() const { return mean_; }      // [B, C, h, w]
  const torch::Tensor& logvar() const { return logvar_; }  // clamped
  const torch::Tensor& stddev() const { return stddev_; }  // exp(logvar / 2)
  const torch::Tensor& var() const { return var_; }        // exp(logvar)

  // mean + stddev * eps, eps ~ N(0, 1). eps is drawn in float32 on the generator's device (the
  // default generator of mean's device without one), then cast to mean's dtype and device, so a
  // seed gives the same noise whatever dtype the VAE runs in.
  torch::Tensor Sample(std::optional<torch::Generator> generator = std::nullopt) const;
  // The most likely latent: the mean.
  torch::Tensor Mode() const { return mean_; }

 private:
  torch::Tensor mean_, logvar_, stddev_, var_;
};

}  // namespace likeness::model

#endif  // LIKENESS_WORKER_MODEL_VAE_DIAGONAL_GAUSSIAN_H_
