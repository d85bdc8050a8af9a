"""Triton kernels of the smooth top-k loss (imported only where Triton is installed).

Same mathematics and the same three exact paths as the CPU kernel
(`cpu_kernel/smooth_topk_cpu.cpp`): per row, with e_j = exp((s_j - m) / (k tau)) over the
classes j != y (m their largest score), sigma_t their elementary symmetric polynomials,
z = alpha / tau + log(sigma_k / sigma_{k-1}) + (m - s_y) / (k tau), the loss is
tau * softplus(z) and, before the upstream gradient,
dL/ds_j = sigmoid(z) / k * (e_j sigma_{k-1}(e without j) / sigma_k
                            - e_j sigma_{k-2}(e without j) / sigma_{k-1})
and dL/ds_y = -sigmoid(z) / k.
Everything is computed in float64, whatever the input dtype (float16 and bfloat16 are read as
they are).  Two launches, no host round trip between them:

1. `power_sum_kernel` (k <= 10), one program per row: power sums, Newton's identities and their
   rounding-error bound (as in `pytorch/power_sums.py`); a row the bound accepts gets its loss and
   gradient here, a row it rejects is marked for the second kernel.  Rows with a non-finite
   score get NaN loss and gradient, as in cross-entropy.
2. `sequential_kernel`, a fixed number of programs that take the rows still marked (every row
   when k > 10): the coefficients of prod_j (1 + e_j X) truncated at degree k, one class after
   the other (no subtraction), with the prefix coefficients kept in a global scratch slot of the
   program for the gradient's prefix/suffix products; rows whose coefficients leave the float64
   range repeat it in log space.
"""

import triton
import triton.language as tl

# Below SMALLEST_SIGMA, terms lost to underflow could matter (as in the CPU kernel).
SMALLEST_SIGMA = tl.constexpr(1e-250)
LARGEST_FLOAT64 = tl.constexpr(1.7976931348623157e308)
# Per-row route codes, written to the `pending` buffer: the power-sum kernel leaves PRODUCTS on
# the rows the sequential kernel must take, which then records the path it took.
IGNORED = tl.constexpr(-1)
POWER_SUMS = tl.constexpr(0)
PRODUCTS = tl.constexpr(1)
LOG_PRODUCTS = tl.constexpr(2)
NON_FINITE = tl.constexpr(3)


@triton.jit
def _entry(vector, index, t):
    """vector[t] as a scalar."""
    return tl.sum(tl.where(index == t, vector, 0.0))


@triton.jit
def _float64(bits):
    """The float64 whose bit pattern is the integer `bits` (Triton passes float arguments as
    float32, too coarse for tau)."""
    return bits.to(tl.int64).to(tl.float64, bitcast=True)


@triton.jit
def _representable(sigma):
    return (sigma >= SMALLEST_SIGMA) & (sigma <= LARGEST_FLOAT64)


@triton.jit
def _row_summary(base, n, y, BLOCK: tl.constexpr):
    """The largest score over the classes other than y, and whether the whole row is finite."""
    peak = tl.full([BLOCK], float("-inf"), tl.float64)
    poison = tl.zeros([BLOCK], tl.float64)  # becomes NaN with any NaN or infinite score
    for start in range(0, n, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        inside = cols < n
        v = tl.load(base + cols, mask=inside, other=0.0).to(tl.float64)
        poison += v * 0.0
        peak = tl.maximum(peak, tl.where(inside & (cols != y), v, float("-inf")))
    return tl.max(peak), tl.sum(poison) == 0.0


@triton.jit
def _store(pointer, value, mask=None):
    """Store float64 values; to a narrower output by way of float32 (a direct float64 ->
    bfloat16 conversion is not supported everywhere)."""
    if pointer.dtype.element_ty != tl.float64:
        value = value.to(tl.float32)
    tl.store(pointer, value, mask=mask)


@triton.jit
def _fill_row(loss_out, grad_row, row, n, value, BLOCK: tl.constexpr):
    """Loss `value` and a gradient of `value`s for one row (0 for an ignored row, NaN for a row
    with non-finite scores)."""
    tl.store(loss_out + row, value)
    for start in range(0, n, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        _store(grad_row + cols, tl.full([BLOCK], value, tl.float64), mask=cols < n)


@triton.jit
def _softplus_and_slope(z):
    """softplus(z) and sigmoid(z) from one exponential, both to full precision (a tiny loss keeps
    its relative precision: log1p(t) = log(u) t / (u - 1) with u = 1 + t, Goldberg's formula,
    since log(1 + t) would round it to 0)."""
    tail = tl.exp(-tl.abs(z))
    grown = 1.0 + tail
    log1p_tail = tl.where(grown == 1.0, tail, tl.log(grown) * (tail / (grown - 1.0)))
    slope = tl.where(z >= 0, 1.0 / grown, tail / grown)
    return tl.maximum(z, 0.0) + log1p_tail, slope


@triton.jit(do_not_specialize=["tau_bits", "limit_bits"])  # one build for every tau
def power_sum_kernel(
    scores,
    labels,
    margins,
    margin_stride,
    loss_out,
    grad_out,
    pending,
    n,
    row_stride,
    tau_bits,
    limit_bits,
    K: tl.constexpr,
    KP: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """One program per row (k <= 10): the power-sum path where its error bound proves it, else
    the row is left marked PRODUCTS for `sequential_kernel`."""
    tau = _float64(tau_bits)
    limit = _float64(limit_bits)
    row = tl.program_id(0).to(tl.int64)
    grad_row = grad_out + row * row_stride
    y = tl.load(labels + row)
    if y < 0:  # an ignored sample
        tl.store(pending + row, tl.full([], IGNORED, tl.int8))
        _fill_row(loss_out, grad_row, row, n, 0.0, BLOCK)
    else:
        _power_sum_row(
            scores + row * row_stride,
            grad_row,
            y,
            margins + row * margin_stride,
            loss_out + row,
            pending + row,
            n,
            tau,
            limit,
            K,
            KP,
            BLOCK,
        )


@triton.jit
def _power_sum_row(
    base,
    grad_row,
    y,
    margin,
    loss_out,
    pending,
    n,
    tau,
    limit,
    K: tl.constexpr,
    KP: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """One row by power sums, if their error bound proves it; else marks it pending."""
    alpha = tl.load(margin).to(tl.float64)
    peak, finite = _row_summary(base, n, y, BLOCK)
    scale = 1.0 / (K * tau)
    index = tl.arange(0, KP)

    # Power sums p_t = sum_j e_j^t (t = 1..K at index t - 1) and the largest e_j.
    sums2d = tl.zeros([BLOCK, KP], tl.float64)
    largest = tl.zeros([BLOCK], tl.float64)
    for start in range(0, n, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        keep = (cols < n) & (cols != y)
        v = tl.load(base + cols, mask=cols < n, other=0.0).to(tl.float64)
        e = tl.where(keep, tl.exp((v - peak) * scale), 0.0)
        largest = tl.maximum(largest, e)
        sums2d += tl.cumprod(tl.broadcast_to(e[:, None], [BLOCK, KP]), axis=1)
    sums = tl.sum(sums2d, 0)
    big = tl.max(largest)

    # Newton's identities, t sigma_t = sum_{i=1}^t (-1)^(i-1) sigma_{t-i} p_i, and the same
    # recursion on absolute values (bound >= |sigma|); at index i - 1 the i-th term.
    sigma = tl.where(index == 0, 1.0, 0.0).to(tl.float64)
    bound = sigma
    sign = tl.where(index % 2 == 0, 1.0, -1.0).to(tl.float64)
    for t in tl.static_range(1, K + 1):
        earlier = tl.maximum(t - 1 - index, 0)  # t - i
        used = index < t
        signed = tl.sum(tl.where(used, sign * tl.gather(sigma, earlier, 0) * sums, 0.0))
        absolute = tl.sum(tl.where(used, tl.gather(bound, earlier, 0) * sums, 0.0))
        sigma = tl.where(index == t, signed / t, sigma)
        bound = tl.where(index == t, absolute / t, bound)
    # The leave-one-out recursion's bound at the largest e: A_t(x) = sum_i x^i bound_{t-i}.
    powers = tl.cumprod(tl.where(index == 0, 1.0, big).to(tl.float64), axis=0)  # big^i
    a_top = tl.sum(
        tl.where(index < K, powers * tl.gather(bound, tl.maximum(K - 1 - index, 0), 0), 0.0)
    )
    a_below = tl.sum(
        tl.where(index < K - 1, powers * tl.gather(bound, tl.maximum(K - 2 - index, 0), 0), 0.0)
    )
    top = _entry(sigma, index, K)
    below = _entry(sigma, index, K - 1)
    proven = (
        _representable(top)
        & _representable(below)
        & (_entry(bound, index, K) / top <= limit)
        & (_entry(bound, index, K - 1) / below <= limit)
        & (big * (a_top / top + a_below / below) <= limit)
    )
    route = tl.where(finite, tl.where(proven, POWER_SUMS, PRODUCTS), NON_FINITE)
    tl.store(pending, route.to(tl.int8))
    if finite.to(tl.int32) == 0:
        _fill_row(loss_out, grad_row, 0, n, float("nan"), BLOCK)
    if finite & proven:
        s_y = tl.load(base + y).to(tl.float64)
        z = alpha / tau + tl.log(top / below) + (peak - s_y) * scale
        value, slope = _softplus_and_slope(z)
        tl.store(loss_out, tau * value)
        weight = slope / K
        ratio_top = weight / top
        ratio_below = weight / below
        for start in range(0, n, BLOCK):
            cols = start + tl.arange(0, BLOCK)
            inside = cols < n
            v = tl.load(base + cols, mask=inside, other=0.0).to(tl.float64)
            e = tl.where(cols != y, tl.exp((v - peak) * scale), 0.0)
            # outside = e_j sigma_{K-2}(e without j), by the leave-one-out recursion.
            if K == 1:
                outside = tl.zeros([BLOCK], tl.float64)
            elif K == 2:
                outside = e
            else:
                outside = _entry(sigma, index, 1) - e
                for t in tl.static_range(2, K - 1):
                    outside = _entry(sigma, index, t) - e * outside
                outside = outside * e
            g = (below - outside) * e * ratio_top - outside * ratio_below
            g = tl.where(cols == y, -weight, g)
            _store(grad_row + cols, g, mask=inside)


@triton.jit
def _sequential_row(
    base, prefix, n, y, peak, scale, index, K: tl.constexpr, KP: tl.constexpr, LOG: tl.constexpr
):
    """sigma_0..sigma_K (their logs when LOG) by sequential products, storing at prefix[j] the
    coefficients of e_0..e_{j-1} for the gradient.  Each class multiplies the polynomial by
    (1 + e_j X): sigma_t += e_j sigma_{t-1}, a gather of the coefficient below."""
    below = tl.maximum(index - 1, 0)
    shifts = (index >= 1) & (index <= K)
    if LOG:
        sigma = tl.where(index == 0, 0.0, float("-inf")).to(tl.float64)
    else:
        sigma = tl.where(index == 0, 1.0, 0.0).to(tl.float64)
    for j in range(0, n):
        tl.store(prefix + j * KP + index, sigma)
        x = (tl.load(base + j).to(tl.float64) - peak) * scale
        if LOG:
            x = tl.where(j == y, float("-inf"), x)
            other = tl.where(shifts, x + tl.gather(sigma, below, 0), float("-inf"))
            high = tl.maximum(sigma, other)  # log(exp(sigma) + exp(other)), written out
            gap = tl.where(high == float("-inf"), float("-inf"), tl.minimum(sigma, other) - high)
            sigma = high + tl.log(1.0 + tl.exp(gap))
        else:
            e = tl.where(j == y, 0.0, tl.exp(x))
            sigma = sigma + tl.where(shifts, e * tl.gather(sigma, below, 0), 0.0)
    return sigma


@triton.jit
def _sequential_gradient(
    base,
    grad_row,
    prefix,
    n,
    y,
    peak,
    scale,
    weight,
    top,
    below,
    index,
    K: tl.constexpr,
    KP: tl.constexpr,
    LOG: tl.constexpr,
):
    """dL/ds by prefix and suffix products: sigma_r(e without j) = sum_t prefix_t suffix_{r-t},
    all terms positive.  `top`, `below` are sigma_K, sigma_{K-1} (their logs when LOG)."""
    lower = tl.maximum(index - 1, 0)
    shifts = (index >= 1) & (index <= K - 1)
    reverse_top = tl.maximum(K - 1 - index, 0)
    reverse_below = tl.maximum(K - 2 - index, 0)
    in_top = index <= K - 1
    in_below = index <= K - 2
    if LOG:
        suffix = tl.where(index == 0, 0.0, float("-inf")).to(tl.float64)
    else:
        suffix = tl.where(index == 0, 1.0, 0.0).to(tl.float64)
    for step in range(0, n):
        j = n - 1 - step
        before = tl.load(prefix + j * KP + index)
        x = (tl.load(base + j).to(tl.float64) - peak) * scale
        if LOG:
            x = tl.where(j == y, float("-inf"), x)
            terms = tl.where(in_top, before + tl.gather(suffix, reverse_top, 0), float("-inf"))
            high = tl.max(terms)
            without_top = high + tl.log(tl.sum(tl.exp(terms - high)))
            terms = tl.where(in_below, before + tl.gather(suffix, reverse_below, 0), float("-inf"))
            high = tl.max(terms)
            without_below = tl.where(
                high == float("-inf"), high, high + tl.log(tl.sum(tl.exp(terms - high)))
            )
            g = weight * (tl.exp(x + without_top - top) - tl.exp(x + without_below - below))
            other = tl.where(shifts, x + tl.gather(suffix, lower, 0), float("-inf"))
            high = tl.maximum(suffix, other)
            gap = tl.where(high == float("-inf"), float("-inf"), tl.minimum(suffix, other) - high)
            suffix = high + tl.log(1.0 + tl.exp(gap))
        else:
            e = tl.where(j == y, 0.0, tl.exp(x))
            without_top = tl.sum(tl.where(in_top, before * tl.gather(suffix, reverse_top, 0), 0.0))
            without_below = tl.sum(
                tl.where(in_below, before * tl.gather(suffix, reverse_below, 0), 0.0)
            )
            g = e * (without_top * (weight / top) - without_below * (weight / below))
            suffix = suffix + tl.where(shifts, e * tl.gather(suffix, lower, 0), 0.0)
        g = tl.where(j == y, -weight, g)
        if grad_row.dtype.element_ty != tl.float64:  # as in _store (no call: a hot loop)
            g = g.to(tl.float32)
        tl.store(grad_row + j, g)


@triton.jit(do_not_specialize=["tau_bits"])
def sequential_kernel(
    scores,
    labels,
    margins,
    margin_stride,
    loss_out,
    grad_out,
    pending,
    scratch,
    batch,
    n,
    row_stride,
    tau_bits,
    K: tl.constexpr,
    KP: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """A fixed number of programs, each taking every num_programs-th row still marked PRODUCTS
    (every row when k > 10), with its own scratch slot of n * KP float64 prefix coefficients."""
    tau = _float64(tau_bits)
    program = tl.program_id(0)
    prefix = scratch + program.to(tl.int64) * n * KP
    index = tl.arange(0, KP)
    for row in range(program, batch, tl.num_programs(0)):
        if tl.load(pending + row) == PRODUCTS:
            row64 = row * tl.full([], 1, tl.int64)  # 64-bit offsets
            base = scores + row64 * row_stride
            grad_row = grad_out + row64 * row_stride
            y = tl.load(labels + row64)
            if y < 0:  # an ignored sample (k > 10: every row is pending)
                _fill_row(loss_out, grad_row, row64, n, 0.0, BLOCK)
                tl.store(pending + row64, tl.full([], IGNORED, tl.int8))
            else:
                route = _sequential_row_loss(
                    base,
                    grad_row,
                    prefix,
                    y,
                    margins + row64 * margin_stride,
                    loss_out + row64,
                    n,
                    tau,
                    index,
                    K,
                    KP,
                    BLOCK,
                )
                tl.store(pending + row64, route.to(tl.int8))


@triton.jit
def _sequential_row_loss(
    base,
    grad_row,
    prefix,
    y,
    margin,
    loss_out,
    n,
    tau,
    index,
    K: tl.constexpr,
    KP: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """One row by sequential products (log space when they leave the float64 range); returns
    the route taken."""
    alpha = tl.load(margin).to(tl.float64)
    scale = 1.0 / (K * tau)
    peak, finite = _row_summary(base, n, y, BLOCK)
    route = tl.full([], NON_FINITE, tl.int32)
    if finite.to(tl.int32) == 0:
        _fill_row(loss_out, grad_row, 0, n, float("nan"), BLOCK)
    else:
        s_y = tl.load(base + y).to(tl.float64)
        sigma = _sequential_row(base, prefix, n, y, peak, scale, index, K, KP, False)
        top = _entry(sigma, index, K)
        below = _entry(sigma, index, K - 1)
        linear = _representable(top) & _representable(below)
        if linear:
            log_ratio = tl.log(top / below)
            route = tl.full([], PRODUCTS, tl.int32)
        else:
            route = tl.full([], LOG_PRODUCTS, tl.int32)
            log_sigma = _sequential_row(base, prefix, n, y, peak, scale, index, K, KP, True)
            top = _entry(log_sigma, index, K)
            below = _entry(log_sigma, index, K - 1)
            log_ratio = top - below
        z = alpha / tau + log_ratio + (peak - s_y) * scale
        value, slope = _softplus_and_slope(z)
        weight = slope / K
        tl.store(loss_out, tau * value)
        if linear:
            _sequential_gradient(
                base, grad_row, prefix, n, y, peak, scale, weight, top, below, index, K, KP, False
            )
        else:
            _sequential_gradient(
                base, grad_row, prefix, n, y, peak, scale, weight, top, below, index, K, KP, True
            )
    return route
