// Fused CPU kernel of the smooth top-k loss, 1 <= k <= 10 (see cpu_kernel.py, power_sums.py and
// functional.py for the mathematics).  Per row, with e_j = exp((s_j - m) / (k tau)) over the
// classes j != y (m their largest score, so e_j <= 1) and sigma_t their elementary symmetric
// polynomials:
//   L = tau * softplus(z),  z = alpha / tau + log(sigma_k / sigma_{k-1}) + (m - s_y) / (k tau),
//   dL/ds_j = sigmoid(z) / k * (pi^k_j - pi^{k-1}_j) for j != y,  dL/ds_y = -sigmoid(z) / k,
// with pi^t_j = e_j sigma_{t-1}(e without j) / sigma_t.
//
// 1. Power sums (fast, vectorised): one pass computes e and p_t = sum_j e_j^t, Newton's identities
//    give sigma_t, and the gradient pass uses the leave-one-out recursion
//    sigma_t(e without j) = sigma_t - e_j sigma_{t-1}(e without j).  Both subtract, so the same
//    recursions on absolute values bound the rounding error; a row is kept only when the bound
//    proves the requested relative accuracy.
// 2. Otherwise, sequential products (exact, no subtraction): the coefficients of
//    prod_j (1 + e_j X) truncated at degree k, with prefix and suffix products for the
//    leave-one-out coefficients.  Slower (a dependent chain along the row) but every term is
//    positive, so the relative error stays near n u.
// 3. Otherwise (sigma_{k-1} or sigma_k beyond the float64 range: huge score spreads with a tiny
//    tau), the same sequential products in log space.  Scalar and slow, for rare rows.
// Rows with non-finite scores are flagged unsafe and left to the PyTorch paths.  Rows are
// independent, so results do not depend on the number of threads.
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>
#if defined(__SSE__)
#include <immintrin.h>
#endif

namespace {

constexpr int kMaxK = 10;
constexpr double kUnitRoundoff = 1.1102230246251565e-16;  // 2^-53
// Below this sigma, terms lost to underflow (each below 1e-307) could matter.
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

// softplus(z) = log(1 + exp(z)) and sigmoid(z), to full precision, from one exponential.
struct Softplus {
  double value, slope;
};

inline Softplus softplus(double z) {
  const double tail = std::exp(-std::abs(z));  // in (0, 1]
  const double slope = z >= 0 ? 1.0 / (1.0 + tail) : tail / (1.0 + tail);
  return {std::max(z, 0.0) + std::log1p(tail), slope};
}

inline bool representable(double sigma) {
  return sigma >= kSmallestSigma && sigma <= std::numeric_limits<double>::max();
}

// Flushes subnormal results and inputs to zero in this thread while it lives (x86).  Tiny e_j
// make the sequential products subnormal, which costs the CPU a microcode assist per operation
// (twice the time of a whole row here).  Safe: every flushed term is below 2.3e-308, and kept
// rows have sigma_{k-1}, sigma_k >= 1e-250.
class FlushSubnormals {
 public:
#if defined(__SSE__)
  FlushSubnormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040); }  // FTZ | DAZ
  ~FlushSubnormals() { _mm_setcsr(saved_); }

 private:
  unsigned int saved_;
#endif
};

// Clears the upper halves of the vector registers before the scalar libm calls.  gcc leaves them
// dirty after the vectorised loops here, and glibc's code then pays a transition penalty: the
// three calls per row measured 0.5 us instead of about 15 ns.
inline void clean_vector_state() {
#if defined(__AVX__)
  _mm256_zeroupper();
#endif
}

// Per-thread scratch: e (one row) and the prefix products of the sequential path.
struct Scratch {
  std::vector<double> e;
  std::vector<double> prefix;
};

// e_j for j != y (e_y = 0) into scratch, the power sums p_1..p_K, and the largest e_j.
template <typename scalar_t, int K>
double power_sums(const scalar_t* s, std::int64_t n, std::int64_t y, double peak, double scale,
                  double* e, double* sums) {
  double largest = 0.0;
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
  return largest;
}

// sigma_0..sigma_K from the power sums by Newton's identities, if the rounding-error bound
// proves them (and the gradient's leave-one-out recursion) accurate to `limit`; else false.
template <int K>
bool newton(const double* sums, double largest, double limit, double* sigma) {
  double bound[K + 1];  // the same recursion with every sign positive: bound_t >= |sigma_t|
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
  // Leave-one-out bound at the row's largest e: A_t(x) = sum_i x^i bound_{t-i}.
  double a_top = 0.0, a_below = 0.0, power = 1.0;
  for (int i = 0; i < K; ++i) {
    a_top += power * bound[K - 1 - i];
    if (i < K - 1) a_below += power * bound[K - 2 - i];
    power *= largest;
  }
  const double top = sigma[K], below = sigma[K - 1];
  return representable(top) && representable(below) && bound[K] / top <= limit &&
         bound[K - 1] / below <= limit && largest * (a_top / top + a_below / below) <= limit;
}

// dL/ds (before the upstream gradient) from the power-sum coefficients.
template <typename scalar_t, int K>
void power_sum_gradient(const double* e, std::int64_t n, const double* sigma, double weight,
                        scalar_t* grad) {
  const double ratio_top = weight / sigma[K], ratio_below = weight / sigma[K - 1];
#pragma omp simd
  for (std::int64_t j = 0; j < n; ++j) {
    const double v = e[j];
    // outside = e_j sigma_{K-2}(e without j), via the leave-one-out recursion.
    double outside;
    if (K == 1) {
      outside = 0.0;
    } else if (K == 2) {
      outside = v;
    } else {
      outside = sigma[1] - v;
      for (int t = 2; t < K - 1; ++t) outside = sigma[t] - v * outside;
      outside *= v;
    }
    // pi^K_j = e_j (sigma_{K-1} - outside) / sigma_K and pi^{K-1}_j = outside / sigma_{K-1}.
    grad[j] = static_cast<scalar_t>((sigma[K - 1] - outside) * v * ratio_top -
                                    outside * ratio_below);
  }
}

// sigma_0..sigma_K by sequential products; with `prefix`, also stores sigma_1..sigma_{K-1} of
// e_0..e_{j-1} at prefix[j * K + t - 1] for the gradient.
template <int K>
void sequential_products(const double* e, std::int64_t n, double* sigma, double* prefix) {
  sigma[0] = 1.0;
  for (int t = 1; t <= K; ++t) sigma[t] = 0.0;
  for (std::int64_t j = 0; j < n; ++j) {
    if (prefix != nullptr) {
      for (int t = 1; t < K; ++t) prefix[j * K + t - 1] = sigma[t];
    }
    const double v = e[j];
    for (int t = K; t >= 1; --t) sigma[t] += v * sigma[t - 1];
  }
}

// dL/ds (before the upstream gradient) from prefix and suffix products: the leave-one-out
// coefficient sigma_r(e without j) = sum_t prefix_t(j) suffix_{r-t}(j), all terms positive.
template <typename scalar_t, int K>
void sequential_gradient(const double* e, std::int64_t n, const double* sigma,
                         const double* prefix, double weight, scalar_t* grad) {
  const double ratio_top = weight / sigma[K], ratio_below = weight / sigma[K - 1];
  double suffix[K];  // sigma_0..sigma_{K-1} of e_{j+1}..e_{n-1}
  suffix[0] = 1.0;
  for (int t = 1; t < K; ++t) suffix[t] = 0.0;
  for (std::int64_t j = n - 1; j >= 0; --j) {
    double before[K];  // sigma_0..sigma_{K-1} of e_0..e_{j-1}
    before[0] = 1.0;
    for (int t = 1; t < K; ++t) before[t] = prefix[j * K + t - 1];
    double without_top = 0.0, without_below = 0.0;  // sigma_{K-1}, sigma_{K-2} without j
    for (int t = 0; t < K; ++t) without_top += before[t] * suffix[K - 1 - t];
    for (int t = 0; t + 1 < K; ++t) without_below += before[t] * suffix[K - 2 - t];
    const double v = e[j];
    grad[j] = static_cast<scalar_t>(v * (without_top * ratio_top - without_below * ratio_below));
    for (int t = K - 1; t >= 1; --t) suffix[t] += v * suffix[t - 1];
  }
}

// log(exp(a) + exp(b)), with -inf as an absent term.
inline double log_add(double a, double b) {
  const double high = std::max(a, b), low = std::min(a, b);
  return low == -std::numeric_limits<double>::infinity() ? high
                                                         : high + std::log1p(std::exp(low - high));
}

// log sum_i exp(terms[i]) over `count` terms (count = 0 gives -inf).
inline double log_sum(const double* terms, int count) {
  double high = -std::numeric_limits<double>::infinity();
  for (int i = 0; i < count; ++i) high = std::max(high, terms[i]);
  if (high == -std::numeric_limits<double>::infinity()) return high;
  double total = 0.0;
  for (int i = 0; i < count; ++i) total += std::exp(terms[i] - high);
  return high + std::log(total);
}

// Path 3: log sigma_0..log sigma_K of e_j = exp(logs[j]) by sequential products in log space;
// with `prefix`, also stores log sigma_1..log sigma_{K-1} of e_0..e_{j-1} at prefix[j*K + t-1].
template <int K>
void log_sequential_products(const double* logs, std::int64_t n, double* log_sigma,
                             double* prefix) {
  log_sigma[0] = 0.0;
  for (int t = 1; t <= K; ++t) log_sigma[t] = -std::numeric_limits<double>::infinity();
  for (std::int64_t j = 0; j < n; ++j) {
    if (prefix != nullptr) {
      for (int t = 1; t < K; ++t) prefix[j * K + t - 1] = log_sigma[t];
    }
    for (int t = K; t >= 1; --t) log_sigma[t] = log_add(log_sigma[t], logs[j] + log_sigma[t - 1]);
  }
}

// Path 3's gradient, as `sequential_gradient` with every product a sum of logs.
template <typename scalar_t, int K>
void log_sequential_gradient(const double* logs, std::int64_t n, const double* log_sigma,
                             const double* prefix, double weight, scalar_t* grad) {
  double suffix[K];
  suffix[0] = 0.0;
  for (int t = 1; t < K; ++t) suffix[t] = -std::numeric_limits<double>::infinity();
  for (std::int64_t j = n - 1; j >= 0; --j) {
    double before[K], terms[K];
    before[0] = 0.0;
    for (int t = 1; t < K; ++t) before[t] = prefix[j * K + t - 1];
    for (int t = 0; t < K; ++t) terms[t] = before[t] + suffix[K - 1 - t];
    const double without_top = log_sum(terms, K);
    for (int t = 0; t + 1 < K; ++t) terms[t] = before[t] + suffix[K - 2 - t];
    const double without_below = log_sum(terms, K - 1);
    const double l = logs[j];
    grad[j] = static_cast<scalar_t>(weight * (std::exp(l + without_top - log_sigma[K]) -
                                              std::exp(l + without_below - log_sigma[K - 1])));
    for (int t = K - 1; t >= 1; --t) suffix[t] = log_add(suffix[t], l + suffix[t - 1]);
  }
}

// One row: returns false (row left to the caller) for non-finite scores (or a log sigma that is
// not finite, which finite scores cannot give).  Otherwise writes the loss and, if
// grad != nullptr, dL/ds without the upstream gradient.
template <typename scalar_t, int K>
bool row_loss(const scalar_t* s, std::int64_t n, std::int64_t y, double tau, double alpha,
              double limit, Scratch& scratch, double& loss, scalar_t* grad) {
  double peak = -std::numeric_limits<double>::infinity();
  double poison = 0.0;  // NaN when any score is NaN or infinite
#pragma omp simd reduction(max : peak) reduction(+ : poison)
  for (std::int64_t j = 0; j < n; ++j) {
    const double v = static_cast<double>(s[j]);
    peak = (j != y && v > peak) ? v : peak;
    poison += v * 0.0;
  }
  if (!std::isfinite(poison)) return false;

  const double scale = 1.0 / (K * tau);
  double* e = scratch.e.data();
  double sums[K], sigma[K + 1];
  const double largest = power_sums<scalar_t, K>(s, n, y, peak, scale, e, sums);
  enum class Path { kPowerSums, kProducts, kLogProducts };
  Path path = newton<K>(sums, largest, limit, sigma) ? Path::kPowerSums : Path::kProducts;
  double* prefix = nullptr;
  if (path != Path::kPowerSums && grad != nullptr) {
    scratch.prefix.resize(static_cast<std::size_t>(n) * K);
    prefix = scratch.prefix.data();
  }
  if (path == Path::kProducts) {
    sequential_products<K>(e, n, sigma, prefix);
    if (!representable(sigma[K]) || !representable(sigma[K - 1])) path = Path::kLogProducts;
  }
  clean_vector_state();
  double log_ratio;
  if (path == Path::kLogProducts) {
    for (std::int64_t j = 0; j < n; ++j) {  // e is replaced by log e, which cannot underflow
      e[j] = j == y ? -std::numeric_limits<double>::infinity()
                    : (static_cast<double>(s[j]) - peak) * scale;
    }
    log_sequential_products<K>(e, n, sigma, prefix);  // sigma now holds log sigma
    if (!std::isfinite(sigma[K]) || !std::isfinite(sigma[K - 1])) return false;
    log_ratio = sigma[K] - sigma[K - 1];
  } else {
    log_ratio = std::log(sigma[K] / sigma[K - 1]);
  }

  const double z = alpha / tau + log_ratio + (peak - static_cast<double>(s[y])) * scale;
  const Softplus soft = softplus(z);
  loss = tau * soft.value;
  if (grad != nullptr) {
    const double weight = soft.slope / K;
    switch (path) {
      case Path::kPowerSums:
        power_sum_gradient<scalar_t, K>(e, n, sigma, weight, grad);
        break;
      case Path::kProducts:
        sequential_gradient<scalar_t, K>(e, n, sigma, prefix, weight, grad);
        break;
      case Path::kLogProducts:
        log_sequential_gradient<scalar_t, K>(e, n, sigma, prefix, weight, grad);
        break;
    }
    grad[y] = static_cast<scalar_t>(-weight);
  }
  return true;
}

template <typename scalar_t, int K>
void run_rows(const torch::Tensor& scores, const torch::Tensor& labels, double tau,
              const torch::Tensor& alpha, double limit, torch::Tensor& loss, torch::Tensor& safe,
              torch::Tensor* grad) {
  const std::int64_t batch = scores.size(0), n = scores.size(1);
  const scalar_t* s = scores.data_ptr<scalar_t>();
  const std::int64_t* y = labels.data_ptr<std::int64_t>();
  const double* margin = alpha.data_ptr<double>();
  const std::int64_t margin_stride = alpha.numel() == 1 ? 0 : 1;  // one margin, or one per row
  scalar_t* loss_out = loss.data_ptr<scalar_t>();
  bool* safe_out = safe.data_ptr<bool>();
  scalar_t* grad_out = grad != nullptr ? grad->data_ptr<scalar_t>() : nullptr;
  const std::int64_t grain = std::max<std::int64_t>(1, 8192 / std::max<std::int64_t>(n, 1));
  at::parallel_for(0, batch, grain, [&](std::int64_t begin, std::int64_t end) {
    const FlushSubnormals flush;
    Scratch scratch{std::vector<double>(n), {}};
    for (std::int64_t b = begin; b < end; ++b) {
      scalar_t* row_grad = grad_out != nullptr ? grad_out + b * n : nullptr;
      double row = 0.0;
      const bool ok =
          row_loss<scalar_t, K>(s + b * n, n, y[b], tau, margin[b * margin_stride], limit,
                                scratch, row, row_grad);
      loss_out[b] = static_cast<scalar_t>(row);
      safe_out[b] = ok;
      if (!ok && row_grad != nullptr) std::fill(row_grad, row_grad + n, scalar_t(0));
    }
  });
}

template <typename scalar_t>
void dispatch_k(int k, const torch::Tensor& scores, const torch::Tensor& labels, double tau,
                const torch::Tensor& alpha, double limit, torch::Tensor& loss, torch::Tensor& safe,
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

// Returns (loss (B,), safe (B,) bool, grad (B, C) or an undefined tensor).  `target` is the
// relative accuracy a power-sum row must be proven to meet.
std::vector<torch::Tensor> forward(const torch::Tensor& scores, const torch::Tensor& labels,
                                   int64_t k, double tau, const torch::Tensor& alpha,
                                   double target, bool want_grad) {
  TORCH_CHECK(scores.device().is_cpu() && scores.dim() == 2 && scores.is_contiguous(),
              "scores must be a contiguous 2-d CPU tensor");
  TORCH_CHECK(labels.scalar_type() == torch::kInt64 && labels.is_contiguous(),
              "labels must be contiguous int64");
  TORCH_CHECK(alpha.scalar_type() == torch::kFloat64 && alpha.is_contiguous() &&
                  (alpha.numel() == 1 || alpha.numel() == scores.size(0)),
              "alpha must be a contiguous float64 tensor of 1 or batch elements");
  const double n = static_cast<double>(scores.size(1));
  // Error model: 2 k^2 u from Newton's recursions (power_sums.py) plus k n u from summing n
  // positive terms into each power sum in any order.
  const double limit = target / ((2.0 * k * k + k * n) * kUnitRoundoff);
  auto loss = torch::empty({scores.size(0)}, scores.options());
  auto safe = torch::empty({scores.size(0)}, scores.options().dtype(torch::kBool));
  torch::Tensor grad = want_grad ? torch::empty_like(scores) : torch::Tensor();
  torch::Tensor* grad_ptr = want_grad ? &grad : nullptr;
  AT_DISPATCH_FLOATING_TYPES(scores.scalar_type(), "smooth_topk_cpu", [&] {
    dispatch_k<scalar_t>(static_cast<int>(k), scores, labels, tau, alpha, limit, loss, safe,
                         grad_ptr);
  });
  return {loss, safe, grad};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "smooth top-k loss per row, with its gradient when asked");
}
