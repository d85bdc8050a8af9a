// Fused CPU kernel of the power-sum path (see power_sums.py for the mathematics and the proof of
// accuracy).  One pass per row computes e_j = exp((s_j - m) / (k tau)) and the power sums, a
// scalar Newton solve gives sigma_1..sigma_k with their absolute-value bounds, and, when a
// gradient is wanted, a second pass over the row writes dL/ds.  Rows are independent, so the
// result does not depend on the number of threads.  Rows the bounds cannot prove accurate, and
// rows with non-finite scores, are flagged unsafe and left to the PyTorch paths.
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace {

constexpr int kMaxK = 10;
constexpr double kUnitRoundoff = 1.1102230246251565e-16;  // 2^-53
// Below this sigma the power sums may have lost terms to underflow (e_j^t < 1e-308).
constexpr double kSmallestSigma = 1e-250;

// exp(x) for x <= 0 to about one ulp, written so that the compiler vectorises it: range
// reduction x = n ln2 + r with |r| <= ln2 / 2, a degree-12 Taylor polynomial (truncation
// below 2e-16 relative), and 2^n assembled from the exponent bits.  exp(x) < 1e-307 returns 0.
__attribute__((always_inline)) inline double exp_nonpositive(double x) {
  constexpr double kLog2e = 1.4426950408889634;
  constexpr double kLn2Hi = 0.6931471805598903;  // ln 2 = kLn2Hi + kLn2Lo, kLn2Hi * n exact
  constexpr double kLn2Lo = 5.497923018708371e-14;
  constexpr double kShift = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer
  const double clamped = x < -707.0 ? -707.0 : x;
  const double shifted = clamped * kLog2e + kShift;
  const double n = shifted - kShift;
  const double r = (clamped - n * kLn2Hi) - n * kLn2Lo;
  double p = 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  std::int64_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  const std::int64_t exponent = (bits - (std::int64_t(3) << 51) + 1023) << 52;
  double scale;
  std::memcpy(&scale, &exponent, sizeof scale);
  return x < -707.0 ? 0.0 : p * scale;
}

inline double softplus(double z) { return std::max(z, 0.0) + std::log1p(std::exp(-std::abs(z))); }

inline double sigmoid(double z) {
  return z >= 0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z));
}

struct RowResult {
  double loss;
  bool safe;
};

// One row: loss, safety, and (if grad != nullptr and the row is safe) dL/ds without the
// upstream gradient.  `e` is scratch of the row's length.
template <typename scalar_t, int K>
RowResult row_loss(const scalar_t* s, std::int64_t n, std::int64_t y, double tau, double alpha,
                   double limit, double* e, scalar_t* grad) {
  double peak = -std::numeric_limits<double>::infinity();
  double poison = 0.0;  // NaN when any score is NaN or infinite
#pragma omp simd reduction(max : peak) reduction(+ : poison)
  for (std::int64_t j = 0; j < n; ++j) {
    const double v = static_cast<double>(s[j]);
    peak = v > peak ? v : peak;
    poison += v * 0.0;
  }
  if (!std::isfinite(poison) || !std::isfinite(peak)) return {0.0, false};

  const double scale = 1.0 / (K * tau);
  double sums[K];
  for (int t = 0; t < K; ++t) sums[t] = 0.0;
  double largest = 0.0;
  {
    double p0 = 0, p1 = 0, p2 = 0, p3 = 0, p4 = 0, p5 = 0, p6 = 0, p7 = 0, p8 = 0, p9 = 0;
#pragma omp simd reduction(+ : p0, p1, p2, p3, p4, p5, p6, p7, p8, p9) reduction(max : largest)
    for (std::int64_t j = 0; j < n; ++j) {
      double v = exp_nonpositive((static_cast<double>(s[j]) - peak) * scale);
      v = j == y ? 0.0 : v;
      e[j] = v;
      largest = v > largest ? v : largest;
      double power = v;
      p0 += power;
      if (K > 1) { power *= v; p1 += power; }
      if (K > 2) { power *= v; p2 += power; }
      if (K > 3) { power *= v; p3 += power; }
      if (K > 4) { power *= v; p4 += power; }
      if (K > 5) { power *= v; p5 += power; }
      if (K > 6) { power *= v; p6 += power; }
      if (K > 7) { power *= v; p7 += power; }
      if (K > 8) { power *= v; p8 += power; }
      if (K > 9) { power *= v; p9 += power; }
    }
    const double all[kMaxK] = {p0, p1, p2, p3, p4, p5, p6, p7, p8, p9};
    for (int t = 0; t < K; ++t) sums[t] = all[t];
  }

  // Newton's identities t sigma_t = sum_{i=1}^t (-1)^(i-1) sigma_{t-i} p_i, and the same
  // recursion with every sign positive for the bounds sigmâ_t >= |sigma_t|.
  double sigma[K + 1], bound[K + 1];
  sigma[0] = bound[0] = 1.0;
  for (int t = 1; t <= K; ++t) {
    double signed_sum = 0.0, absolute_sum = 0.0, sign = 1.0;
    for (int i = 1; i <= t; ++i) {
      signed_sum += sign * sigma[t - i] * sums[i - 1];
      absolute_sum += bound[t - i] * sums[i - 1];
      sign = -sign;
    }
    sigma[t] = signed_sum / t;
    bound[t] = absolute_sum / t;
  }
  // Leave-one-out bound at the row's largest e: A_t(x) = sum_i x^i sigmâ_{t-i}.
  double a_top = 0.0, a_below = 0.0, power = 1.0;
  for (int i = 0; i < K; ++i) {
    a_top += power * bound[K - 1 - i];
    if (i < K - 1) a_below += power * bound[K - 2 - i];
    power *= largest;
  }
  const double top = sigma[K], below = sigma[K - 1];
  const bool safe = top > kSmallestSigma && below > kSmallestSigma &&
                    bound[K] / top <= limit && bound[K - 1] / below <= limit &&
                    largest * (a_top / top + a_below / below) <= limit;
  if (!safe) return {0.0, false};

  const double z = alpha / tau + std::log(top / below) + (peak - static_cast<double>(s[y])) * scale;
  if (grad != nullptr) {
    const double weight = sigmoid(z) / K;
    const double ratio_top = weight / top, ratio_below = weight / below;
    const double s1 = sigma[1];
    double coefficient[K + 1];
    for (int t = 0; t <= K; ++t) coefficient[t] = sigma[t];
#pragma omp simd
    for (std::int64_t j = 0; j < n; ++j) {
      const double v = e[j];
      // outside = e_j sigma_{k-2}(e without j), via sigma_t(without j) = sigma_t - e_j sigma_{t-1}.
      double outside;
      if (K == 1) {
        outside = 0.0;
      } else if (K == 2) {
        outside = v;
      } else {
        outside = s1 - v;
        for (int t = 2; t < K - 1; ++t) outside = coefficient[t] - v * outside;
        outside *= v;
      }
      const double g = (coefficient[K - 1] - outside) * v * ratio_top - outside * ratio_below;
      grad[j] = static_cast<scalar_t>(g);
    }
    grad[y] = static_cast<scalar_t>(-weight);
  }
  return {tau * softplus(z), true};
}

template <typename scalar_t, int K>
void run_rows(const torch::Tensor& scores, const torch::Tensor& labels, double tau, double alpha,
              double limit, torch::Tensor& loss, torch::Tensor& safe, torch::Tensor* grad) {
  const std::int64_t batch = scores.size(0), n = scores.size(1);
  const scalar_t* s = scores.data_ptr<scalar_t>();
  const std::int64_t* y = labels.data_ptr<std::int64_t>();
  scalar_t* loss_out = loss.data_ptr<scalar_t>();
  bool* safe_out = safe.data_ptr<bool>();
  scalar_t* grad_out = grad != nullptr ? grad->data_ptr<scalar_t>() : nullptr;
  const std::int64_t grain = std::max<std::int64_t>(1, 32768 / std::max<std::int64_t>(n, 1));
  at::parallel_for(0, batch, grain, [&](std::int64_t begin, std::int64_t end) {
    std::vector<double> scratch(n);
    for (std::int64_t b = begin; b < end; ++b) {
      scalar_t* row_grad = grad_out != nullptr ? grad_out + b * n : nullptr;
      const RowResult result =
          row_loss<scalar_t, K>(s + b * n, n, y[b], tau, alpha, limit, scratch.data(), row_grad);
      loss_out[b] = static_cast<scalar_t>(result.loss);
      safe_out[b] = result.safe;
      if (!result.safe && row_grad != nullptr) std::fill(row_grad, row_grad + n, scalar_t(0));
    }
  });
}

template <typename scalar_t>
void dispatch_k(int k, const torch::Tensor& scores, const torch::Tensor& labels, double tau,
                double alpha, double limit, torch::Tensor& loss, torch::Tensor& safe,
                torch::Tensor* grad) {
  switch (k) {
#define SMOOTH_TOPK_CASE(K) \
  case K:                   \
    return run_rows<scalar_t, K>(scores, labels, tau, alpha, limit, loss, safe, grad);
    SMOOTH_TOPK_CASE(1)
    SMOOTH_TOPK_CASE(2)
    SMOOTH_TOPK_CASE(3)
    SMOOTH_TOPK_CASE(4)
    SMOOTH_TOPK_CASE(5)
    SMOOTH_TOPK_CASE(6)
    SMOOTH_TOPK_CASE(7)
    SMOOTH_TOPK_CASE(8)
    SMOOTH_TOPK_CASE(9)
    SMOOTH_TOPK_CASE(10)
#undef SMOOTH_TOPK_CASE
  }
  TORCH_CHECK(false, "k must lie in [1, ", kMaxK, "], got ", k);
}

// Returns (loss (B,), safe (B,) bool, grad (B, C) or an empty tensor).  `target` is the relative
// accuracy a row must be proven to meet; `summed` is the number of terms in each power sum's
// rounding error (the row length, a safe over-estimate for any summation order).
std::vector<torch::Tensor> forward(const torch::Tensor& scores, const torch::Tensor& labels,
                                   int64_t k, double tau, double alpha, double target,
                                   bool want_grad) {
  TORCH_CHECK(scores.device().is_cpu() && scores.dim() == 2 && scores.is_contiguous(),
              "scores must be a contiguous 2-d CPU tensor");
  TORCH_CHECK(labels.scalar_type() == torch::kInt64 && labels.is_contiguous(),
              "labels must be contiguous int64");
  const double n = static_cast<double>(scores.size(1));
  // Error model: 2 k^2 u from Newton's recursions (power_sums.py) plus k n u from summing n
  // positive terms into each power sum in any order.
  const double limit = target / ((2.0 * k * k + k * n) * kUnitRoundoff);
  auto loss = torch::empty({scores.size(0)}, scores.options());
  auto safe = torch::empty({scores.size(0)}, scores.options().dtype(torch::kBool));
  torch::Tensor grad = want_grad ? torch::empty_like(scores) : torch::Tensor();
  torch::Tensor* grad_ptr = want_grad ? &grad : nullptr;
  AT_DISPATCH_FLOATING_TYPES(scores.scalar_type(), "smooth_topk_power_sums", [&] {
    dispatch_k<scalar_t>(static_cast<int>(k), scores, labels, tau, alpha, limit, loss, safe,
                         grad_ptr);
  });
  return {loss, safe, grad};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "smooth top-k loss (power sums), per row, with optional gradient");
}
