//! burn-flex's exact GELU, its gradient and `exp`, bit for bit, but vectorised.
//!
//! Training (autodiff on flex) evaluates these with the scalar libm calls burn-flex makes
//! (`ops/activation.rs`, `gelu` and `gelu_backward`; `ops/unary.rs`, `exp`): the `libm` crate's
//! `erff` forward and backward, and `f32::exp` (the C library's `expf`) for the Gaussian in the
//! gradient and for attention's softmax. One value at a time they were 15 % of a training step
//! (BENCHMARKS.md, "Where the time goes"). The functions here perform the same IEEE operations in
//! the same order, every branch computed and the right one selected per lane, so the compiler can
//! vectorise them and the results are the same bits: a training run, and the shipped teacher it
//! rebuilds, do not change.
//!
//! - `erff` mirrors the `libm` crate's (FreeBSD's `s_erff.c`), including its own `expf`. The
//!   forward pass keeps its values for the gradient, which burn-flex evaluates again.
//! - `f32::exp` is glibc's `expf` on Linux (glibc 2.27 and later: Szabolcs Nagy's, in double
//!   precision with a 32-entry table), whose x86-64 build picks a variant with fused multiply-adds
//!   where the processor has FMA and AVX2. Both are mirrored; at first use the one that agrees with
//!   `f32::exp` on a spread of arguments is chosen, and where neither does (another C library) the
//!   gradient keeps calling `f32::exp` for the Gaussian, still exact, less fast.

// The constants are FreeBSD's and glibc's digit for digit, so that they can be compared with the
// sources; f32 rounds them to the same values (the bit-for-bit tests below).
#![allow(clippy::excessive_precision)]

use std::sync::OnceLock;

const SQRT_2: f32 = std::f32::consts::SQRT_2;

/// `0.5 x (1 + erf(x / √2))` for each value of `x`, written to `out`: burn-flex's `gelu`; and
/// `erf(x / √2)` to `erf`, which the gradient needs again ([`gelu_backward`]).
pub fn gelu_forward(x: &[f32], out: &mut [f32], erf: &mut [f32]) {
    assert!(x.len() == out.len() && x.len() == erf.len(), "gelu_forward: lengths differ");
    crate::widest_simd!(forward_loop(x: &[f32], out: &mut [f32], erf: &mut [f32]))
}

/// `grad · (Φ(x) + x φ(x))` for each pair, written to `out`: burn-flex's `gelu_backward`, with
/// `erf(x / √2)` as [`gelu_forward`] gave it (the same bits burn-flex evaluates again).
pub fn gelu_backward(x: &[f32], erf: &[f32], grad: &[f32], out: &mut [f32]) {
    assert!(x.len() == erf.len() && x.len() == grad.len() && x.len() == out.len(), "gelu_backward: lengths differ");
    let exp = exp_kind();
    crate::widest_simd!(backward_dispatch(
        x: &[f32],
        erf: &[f32],
        grad: &[f32],
        out: &mut [f32],
        exp: ExpKind,
    ))
}

/// `f32::exp` of each value, written to `out`: burn-flex's `float_exp`.
pub fn exp(x: &[f32], out: &mut [f32]) {
    assert_eq!(x.len(), out.len(), "exp: input and output lengths differ");
    let exp = exp_kind();
    crate::widest_simd!(exp_dispatch(x: &[f32], out: &mut [f32], exp: ExpKind))
}

#[inline(always)]
fn exp_dispatch(x: &[f32], out: &mut [f32], exp: ExpKind) {
    let tiny = may_underflow();
    match exp {
        ExpKind::GlibcFma => map_loop(x, out, |x| glibc_expf::<true>(x, tiny)),
        ExpKind::Glibc => map_loop(x, out, |x| glibc_expf::<false>(x, tiny)),
        ExpKind::Std => map_loop(x, out, f32::exp),
    }
}

/// Generic over the function's own type (not a pointer), so that it is inlined and vectorised.
#[inline(always)]
fn map_loop(x: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32) {
    for (o, &x) in out.iter_mut().zip(x) {
        *o = f(x);
    }
}

/// Inlined into each `target_feature` function so that the compiler vectorises it for that level.
#[inline(always)]
fn forward_loop(x: &[f32], out: &mut [f32], erf: &mut [f32]) {
    for ((o, e), &x) in out.iter_mut().zip(erf.iter_mut()).zip(x) {
        *e = erff(x / SQRT_2);
        *o = 0.5 * x * (1.0 + *e);
    }
}

#[inline(always)]
fn backward_dispatch(x: &[f32], erf: &[f32], grad: &[f32], out: &mut [f32], exp: ExpKind) {
    let tiny = may_underflow();
    match exp {
        ExpKind::GlibcFma => backward_loop(x, erf, grad, out, |x| glibc_expf::<true>(x, tiny)),
        ExpKind::Glibc => backward_loop(x, erf, grad, out, |x| glibc_expf::<false>(x, tiny)),
        ExpKind::Std => backward_loop(x, erf, grad, out, f32::exp),
    }
}

#[inline(always)]
fn backward_loop(x: &[f32], erf: &[f32], grad: &[f32], out: &mut [f32], exp: impl Fn(f32) -> f32) {
    // As burn-flex computes it, a constant evaluated the same way.
    let inv_sqrt_2pi: f32 = 1.0 / (2.0 * std::f32::consts::PI).sqrt();
    for (((o, &x), &e), &g) in out.iter_mut().zip(x).zip(erf).zip(grad) {
        let cdf = 0.5 * (1.0 + e);
        let pdf = inv_sqrt_2pi * exp(-0.5 * x * x);
        *o = g * (cdf + x * pdf);
    }
}

/// Which implementation `f32::exp` is on this machine, found once by comparing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExpKind {
    /// glibc's `expf`, its FMA variant.
    GlibcFma,
    /// glibc's `expf`, its plain variant.
    Glibc,
    /// Neither: call `f32::exp` itself.
    Std,
}

fn exp_kind() -> ExpKind {
    static KIND: OnceLock<ExpKind> = OnceLock::new();
    *KIND.get_or_init(|| {
        // Softmax's arguments are <= 0, the gradient's `-x²/2` too: every 1/64 from -110 to 1
        // (the underflow edges included), then small and special values. Runs once per process,
        // a few microseconds.
        let probes: Vec<f32> = (-64..=7040)
            .map(|i| -(i as f32) / 64.0)
            .chain([-1e-3, -1e-7, -1e-30, 0.0, -0.0, f32::NEG_INFINITY, f32::NAN, -87.33655, -103.27892, -103.97208])
            .collect();
        let same = |a: f32, b: f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
        let tiny = may_underflow();
        let agrees = |mirror: fn(f32, f32) -> f32| probes.iter().all(|&v| same(mirror(v, tiny), v.exp()));
        // glibc takes its FMA variant where the processor has AVX2 and FMA.
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && agrees(glibc_expf::<true>)
        {
            return ExpKind::GlibcFma;
        }
        if agrees(glibc_expf::<false>) { ExpKind::Glibc } else { ExpKind::Std }
    })
}

// ---- the `libm` crate's erff (FreeBSD s_erff.c), every branch computed, one selected ----

const ERX: f32 = 8.4506291151e-01;
const EFX8: f32 = 1.0270333290e+00;
const PP: [f32; 5] = [1.2837916613e-01, -3.2504209876e-01, -2.8481749818e-02, -5.7702702470e-03, -2.3763017452e-05];
const QQ: [f32; 5] = [3.9791721106e-01, 6.5022252500e-02, 5.0813062117e-03, 1.3249473704e-04, -3.9602282413e-06];
const PA: [f32; 7] = [
    -2.3621185683e-03, 4.1485610604e-01, -3.7220788002e-01, 3.1834661961e-01, -1.1089469492e-01, 3.5478305072e-02,
    -2.1663755178e-03,
];
const QA: [f32; 6] =
    [1.0642088205e-01, 5.4039794207e-01, 7.1828655899e-02, 1.2617121637e-01, 1.3637083583e-02, 1.1984500103e-02];
const RA: [f32; 8] = [
    -9.8649440333e-03, -6.9385856390e-01, -1.0558626175e+01, -6.2375331879e+01, -1.6239666748e+02, -1.8460508728e+02,
    -8.1287437439e+01, -9.8143291473e+00,
];
const SA: [f32; 8] = [
    1.9651271820e+01, 1.3765776062e+02, 4.3456588745e+02, 6.4538726807e+02, 4.2900814819e+02, 1.0863500214e+02,
    6.5702495575e+00, -6.0424413532e-02,
];
const RB: [f32; 7] = [
    -9.8649431020e-03, -7.9928326607e-01, -1.7757955551e+01, -1.6063638306e+02, -6.3756646729e+02, -1.0250950928e+03,
    -4.8351919556e+02,
];
const SB: [f32; 7] = [
    3.0338060379e+01, 3.2579251099e+02, 1.5367296143e+03, 3.1998581543e+03, 2.5530502930e+03, 4.7452853394e+02,
    -2.2440952301e+01,
];

/// `libm::erff(x)`, the same bits.
#[inline(always)]
pub fn erff(x: f32) -> f32 {
    let bits = x.to_bits();
    let negative = bits >> 31 != 0;
    let ix = bits & 0x7fff_ffff;

    // |x| < 2^-28
    let tiny = 0.125 * (8.0 * x + EFX8 * x);
    // |x| < 0.84375
    let z = x * x;
    let r = PP[0] + z * (PP[1] + z * (PP[2] + z * (PP[3] + z * PP[4])));
    let s = 1.0 + z * (QQ[0] + z * (QQ[1] + z * (QQ[2] + z * (QQ[3] + z * QQ[4]))));
    let small = x + x * (r / s);
    // |x| < 6: 1 - erfc(|x|), then the sign
    let ax = f32::from_bits(ix);
    let mid = 1.0 - erfc2(ix, ax);
    let mid = if negative { -mid } else { mid };
    // |x| >= 6
    let one = 1.0 - f32::from_bits(0x0380_0000);
    let big = if negative { -one } else { one };
    // erf(nan) = nan, erf(±inf) = ±1
    let special = 1.0 - 2.0 * (negative as u32 as f32) + 1.0 / x;

    if ix >= 0x7f80_0000 {
        special
    } else if ix < 0x3180_0000 {
        tiny
    } else if ix < 0x3f58_0000 {
        small
    } else if ix < 0x40c0_0000 {
        mid
    } else {
        big
    }
}

/// erfc(|x|) for 0.84375 <= |x| < 6, as `s_erff.c`'s `erfc2` (with its `erfc1` below 1.25).
#[inline(always)]
fn erfc2(ix: u32, ax: f32) -> f32 {
    // |x| < 1.25
    let s = ax - 1.0;
    let p = PA[0] + s * (PA[1] + s * (PA[2] + s * (PA[3] + s * (PA[4] + s * (PA[5] + s * PA[6])))));
    let q = 1.0 + s * (QA[0] + s * (QA[1] + s * (QA[2] + s * (QA[3] + s * (QA[4] + s * QA[5])))));
    let near = 1.0 - ERX - p / q;

    let s = 1.0 / (ax * ax);
    let ra = RA[0] + s * (RA[1] + s * (RA[2] + s * (RA[3] + s * (RA[4] + s * (RA[5] + s * (RA[6] + s * RA[7]))))));
    let sa = 1.0
        + s * (SA[0] + s * (SA[1] + s * (SA[2] + s * (SA[3] + s * (SA[4] + s * (SA[5] + s * (SA[6] + s * SA[7])))))));
    let rb = RB[0] + s * (RB[1] + s * (RB[2] + s * (RB[3] + s * (RB[4] + s * (RB[5] + s * RB[6])))));
    let sb = 1.0 + s * (SB[0] + s * (SB[1] + s * (SB[2] + s * (SB[3] + s * (SB[4] + s * (SB[5] + s * SB[6]))))));
    let (r, big_s) = if ix < 0x4036_db6d { (ra, sa) } else { (rb, sb) };
    let z = f32::from_bits(ax.to_bits() & 0xffff_e000);
    let far = libm_expf(-z * z - 0.5625) * libm_expf((z - ax) * (z + ax) + r / big_s) / ax;

    if ix < 0x3fa0_0000 { near } else { far }
}

/// The `libm` crate's `expf` (FreeBSD e_expf.c) for the arguments `erfc2` gives it, in
/// [-36.6, 1]: no overflow, no underflow, so its special cases are left out.
#[inline(always)]
fn libm_expf(x: f32) -> f32 {
    const LN2_HI: f32 = 6.9314575195e-01;
    const LN2_LO: f32 = 1.4286067653e-06;
    const INV_LN2: f32 = 1.4426950216e+00;
    const P1: f32 = 1.6666625440e-1;
    const P2: f32 = -2.7667332906e-3;

    let bits = x.to_bits();
    let sign = (bits >> 31) as i32;
    let hx = bits & 0x7fff_ffff;
    let half = if sign != 0 { -0.5 } else { 0.5 };
    // |x| > 1.5 ln2: k rounded from x / ln2; (0.5 ln2, 1.5 ln2]: ±1; (2^-14, 0.5 ln2]: 0
    let k = if hx > 0x3f85_1592 {
        (INV_LN2 * x + half) as i32
    } else if hx > 0x3eb1_7218 {
        1 - sign - sign
    } else {
        0
    };
    let kf = k as f32;
    let hi = x - kf * LN2_HI;
    let lo = kf * LN2_LO;
    let xr = hi - lo;
    let xx = xr * xr;
    let c = xr - xx * (P1 + xx * P2);
    let y = 1.0 + (xr * c / (2.0 - c) - lo + hi);
    // scalbnf(y, k) for k in the normal range: one exact multiply by 2^k
    let scaled = y * f32::from_bits(((0x7f + k) as u32) << 23);
    if hx <= 0x3900_0000 {
        1.0 + x
    } else if k == 0 {
        y
    } else {
        scaled
    }
}

// ---- glibc's expf (sysdeps/ieee754/flt-32/e_expf.c, glibc 2.27+) ----

/// `2^(i/32)` with the low bits adjusted by `i << 47`, glibc's `__exp2f_data.tab`.
const TAB: [u64; 32] = [
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51, 0x3fef72b83c7d517b,
    0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1, 0x3fef06fe0a31b715, 0x3feef1a7373aa9cb,
    0x3feedea64c123422, 0x3feece086061892d, 0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429,
    0x3feea47eb03a5585, 0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d, 0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069, 0x3fef5818dcfba487, 0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da, 0x3fefd0765b6e4540,
];

/// glibc's `expf`; `FMA` mirrors the variant its x86-64 build compiles with `-mfma`, where the
/// compiler fused `z + shift`, `z - kd` and the three polynomial steps into multiply-adds.
/// `tiny` is [`may_underflow`]'s value, computed once outside the loop: a call inside it would
/// keep the loop from being vectorised.
#[inline(always)]
fn glibc_expf<const FMA: bool>(x: f32, tiny: f32) -> f32 {
    const INV_LN2_N: f64 = f64::from_bits(0x4047_1547_652b_82fe); // 0x1.71547652b82fep+5
    const SHIFT: f64 = f64::from_bits(0x4338_0000_0000_0000); // 0x1.8p+52
    const C0: f64 = f64::from_bits(0x3ebc_6af8_4b91_2394); // 0x1.c6af84b912394p-20
    const C1: f64 = f64::from_bits(0x3f2e_bfce_50fa_c4f3); // 0x1.ebfce50fac4f3p-13
    const C2: f64 = f64::from_bits(0x3f96_2e42_ff0c_52d6); // 0x1.62e42ff0c52d6p-6

    let xd = x as f64;
    let (ki, r) = if FMA {
        let shifted = INV_LN2_N.mul_add(xd, SHIFT);
        (shifted.to_bits(), INV_LN2_N.mul_add(xd, -(shifted - SHIFT)))
    } else {
        let z = INV_LN2_N * xd;
        let shifted = z + SHIFT;
        (shifted.to_bits(), z - (shifted - SHIFT))
    };
    let s = f64::from_bits(TAB[(ki & 31) as usize].wrapping_add(ki << 47));
    let r2 = r * r;
    let y = if FMA { r.mul_add(C0, C1).mul_add(r2, r.mul_add(C2, 1.0)) } else { (C0 * r + C1) * r2 + (C2 * r + 1.0) };
    let normal = (y * s) as f32;

    let bits = x.to_bits();
    if (bits >> 20) & 0x7ff < 0x42b {
        normal
    } else if bits == f32::NEG_INFINITY.to_bits() {
        0.0
    } else if (bits >> 20) & 0x7ff >= 0x7f8 {
        x + x
    } else if x > f32::from_bits(0x42b1_7217) {
        f32::INFINITY
    } else if x < f32::from_bits(0xc2cf_f1b4) {
        0.0
    } else if x < f32::from_bits(0xc2ce_8ecf) {
        tiny
    } else {
        normal
    }
}

/// glibc's `__math_may_uflowf`: 0x1.4p-75f squared at run time, so that a flush-to-zero mode
/// applies as it does to glibc's (2^-149, or 0 under flush-to-zero).
#[inline(never)]
fn may_underflow() -> f32 {
    let tiny = std::hint::black_box(f32::from_bits(0x1a20_0000)); // 0x1.4p-75
    tiny * tiny
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `step`-th bit pattern of f32, both signs, the non-finite ones included; every one of
    /// them with `ADAM_EXHAUSTIVE=1` (a few minutes per test).
    fn every(step: u32) -> impl Iterator<Item = f32> {
        let step = if std::env::var_os("ADAM_EXHAUSTIVE").is_some_and(|v| v == "1") { 1 } else { step };
        (0..=u32::MAX / step).map(move |i| f32::from_bits(i * step))
    }

    #[test]
    fn erff_is_libms_bit_for_bit() {
        let edges = [0.0, -0.0, 0.84375, 1.25, 6.0, 1.0 / 0.35, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1e-30];
        for x in every(4099).chain(edges) {
            let (ours, libms) = (erff(x), libm::erff(x));
            assert!(
                ours.to_bits() == libms.to_bits() || (ours.is_nan() && libms.is_nan()),
                "erff({x:e}): {ours:e} against libm's {libms:e}"
            );
        }
    }

    #[test]
    fn glibc_expf_mirror_is_f32_exp_where_it_was_chosen() {
        let tiny = may_underflow();
        let exp: fn(f32, f32) -> f32 = match exp_kind() {
            ExpKind::GlibcFma => glibc_expf::<true>,
            ExpKind::Glibc => glibc_expf::<false>,
            // Another C library: the gradient calls f32::exp itself, nothing to compare.
            ExpKind::Std => return,
        };
        for x in every(4099) {
            let (ours, std) = (exp(x, tiny), x.exp());
            assert!(
                ours.to_bits() == std.to_bits() || (ours.is_nan() && std.is_nan()),
                "expf({x:e}): {ours:e} against {std:e}"
            );
        }
    }

    #[test]
    fn exp_is_f32_exp_bit_for_bit() {
        let check = |xs: &[f32]| {
            let mut out = vec![0.0; xs.len()];
            exp(xs, &mut out);
            for (x, ours) in xs.iter().zip(out) {
                let std = x.exp();
                assert!(
                    ours.to_bits() == std.to_bits() || (ours.is_nan() && std.is_nan()),
                    "exp({x:e}): {ours:e} against {std:e}"
                );
            }
        };
        let mut xs = Vec::with_capacity(1 << 20);
        for x in every(4099) {
            xs.push(x);
            if xs.len() == 1 << 20 {
                check(&xs);
                xs.clear();
            }
        }
        check(&xs);
    }

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
    fn glibc_on_x86_64_gets_the_vectorised_exp() {
        assert_ne!(exp_kind(), ExpKind::Std, "f32::exp is glibc's expf here: the mirror should match it");
    }

    #[test]
    fn forward_and_backward_are_burn_flexs_formulas_bit_for_bit() {
        let mut xs = Vec::with_capacity(1 << 20);
        for x in every(1 << 14).filter(|x| x.is_finite()) {
            xs.push(x);
            if xs.len() == 1 << 20 {
                check_forward_and_backward(&xs);
                xs.clear();
            }
        }
        check_forward_and_backward(&xs);
    }

    fn check_forward_and_backward(xs: &[f32]) {
        let grads: Vec<f32> = (0..xs.len()).map(|i| (i % 97) as f32 / 13.0 - 3.0).collect();
        let mut forward = vec![0.0; xs.len()];
        let mut erf = vec![0.0; xs.len()];
        let mut backward = vec![0.0; xs.len()];
        gelu_forward(xs, &mut forward, &mut erf);
        gelu_backward(xs, &erf, &grads, &mut backward);
        let inv_sqrt_2pi: f32 = 1.0 / (2.0 * std::f32::consts::PI).sqrt();
        for i in 0..xs.len() {
            let x = xs[i];
            let expect_forward = 0.5 * x * (1.0 + libm::erff(x / SQRT_2));
            let cdf = 0.5 * (1.0 + libm::erff(x / SQRT_2));
            let expect_backward = grads[i] * (cdf + x * (inv_sqrt_2pi * (-0.5 * x * x).exp()));
            assert_eq!(forward[i].to_bits(), expect_forward.to_bits(), "gelu({x:e})");
            assert!(
                backward[i].to_bits() == expect_backward.to_bits()
                    || (backward[i].is_nan() && expect_backward.is_nan()),
                "gelu'({x:e}) · {}: {:e} against {expect_backward:e}",
                grads[i],
                backward[i]
            );
        }
    }
}
