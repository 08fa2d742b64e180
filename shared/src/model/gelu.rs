//! The exact (erf) GELU of BERT and MPNet, vectorised on the CPU for inference.
//!
//! burn-flex evaluates `gelu` with libm's scalar `erff`, one value at a time: 13 % of an encoding's
//! time (BENCHMARKS.md, "Where the time goes"). PyTorch uses a vectorised erf. Without autodiff
//! on the flex device the activation here runs a branch-free rational erf over the tensor's values
//! instead, compiled for AVX-512 and AVX2 and picked at run time; everywhere else (training, wgpu,
//! ndarray) it is burn's `gelu`.

use burn::tensor::activation::gelu as burn_gelu;
use burn::tensor::{DType, Device, Tensor, TensorData};

/// `0.5 x (1 + erf(x / √2))`, as Hugging Face's `gelu`.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    if device.is_autodiff() || x.dtype() != DType::F32 || device != Device::flex() {
        return burn_gelu(x);
    }
    let shape = x.shape();
    let mut values: Vec<f32> = match x.into_data().try_into_vec::<f32>() {
        Ok(values) => values,
        Err(error) => unreachable!("an f32 tensor reads back as f32: {error:?}"),
    };
    gelu_in_place(&mut values);
    Tensor::from_data(TensorData::new(values, shape), &device)
}

/// Applies GELU to every value, in parallel chunks where threads exist.
pub fn gelu_in_place(values: &mut [f32]) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        // Large enough that a chunk outweighs the scheduling, small enough to spread a batch.
        values.par_chunks_mut(1 << 15).for_each(gelu_chunk);
    }
    #[cfg(target_arch = "wasm32")]
    gelu_chunk(values);
}

fn gelu_chunk(values: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the processor has AVX-512F (checked just above).
            return unsafe { gelu_avx512(values) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the processor has AVX2 (checked just above).
            return unsafe { gelu_avx2(values) };
        }
    }
    gelu_loop(values);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2")]
unsafe fn gelu_avx512(values: &mut [f32]) {
    gelu_loop(values);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn gelu_avx2(values: &mut [f32]) {
    gelu_loop(values);
}

/// Inlined into each `target_feature` function so that the compiler vectorises it for that level.
#[inline(always)]
fn gelu_loop(values: &mut [f32]) {
    for v in values.iter_mut() {
        let x = *v;
        *v = 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// erf for f32 without branches: a rational approximation (odd degree-13 numerator, even degree-8
/// denominator) on [-4, 4], where erf leaves f32's range below 1; the one Eigen and XLA use
/// (`generic_fast_erf_float`). Within 1e-6 of libm's `erff` everywhere (tested below).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    // Plain multiply-adds, not `mul_add`: without a hardware FMA (wasm32, old x86) that is a
    // slow software call, and this way every path rounds the same.
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p + -2.101_024e-6;
    p = x2 * p + -5.692_506_4e-5;
    p = x2 * p + -7.349_906_3e-4;
    p = x2 * p + -2.954_6e-3;
    p = x2 * p + -1.609_603_3e-2;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = x2 * q + -1.682_827e-3;
    q = x2 * q + -7.373_329e-3;
    q = x2 * q + -1.426_473_9e-2;
    x * p / q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_is_within_1e6_of_libm_everywhere() {
        let mut worst = (0.0f32, 0.0f32);
        // Every 1/4096 from -8 to 8, then the extremes and the non-finite values' neighbours.
        let grid = (-32768..=32768).map(|i| i as f32 / 4096.0);
        for x in grid.chain([f32::MAX, f32::MIN, 1e-30, -1e-30, 0.0]) {
            let error = (erf(x) - libm::erff(x)).abs();
            if error > worst.1 {
                worst = (x, error);
            }
        }
        assert!(worst.1 <= 1e-6, "erf({}) is {} from libm's", worst.0, worst.1);
    }

    #[test]
    fn gelu_matches_burns_exact_gelu_on_flex() {
        let device = Device::flex();
        let values: Vec<f32> = (0..10_000).map(|i| (i as f32 - 5_000.0) / 700.0).collect();
        let x = Tensor::<2>::from_data(TensorData::new(values, [100, 100]), &device);
        let ours = gelu(x.clone()).into_data().try_into_vec::<f32>().unwrap();
        let burns = burn_gelu(x).into_data().try_into_vec::<f32>().unwrap();
        let worst = ours.iter().zip(&burns).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-5, "largest difference from burn's gelu: {worst}");
        // The vectorised path really ran: the two differ somewhere (burn's is libm's erff).
        assert_ne!(ours, burns);
    }

    #[test]
    fn gelu_keeps_autodiff_tensors_on_burns_path() {
        let device = Device::flex().autodiff();
        let x = Tensor::<1>::from_data(TensorData::new(vec![-1.0f32, 0.5, 2.0], [3]), &device).require_grad();
        let y = gelu(x.clone()).sum();
        let grads = y.backward();
        let grad = x.grad(&grads).expect("gelu keeps the autodiff graph").into_data().try_into_vec::<f32>().unwrap();
        // d/dx gelu(x) = Φ(x) + x φ(x)
        let expect = |x: f32| {
            0.5 * (1.0 + libm::erff(x / 2f32.sqrt())) + x * (-0.5 * x * x).exp() / (2.0 * std::f32::consts::PI).sqrt()
        };
        for (g, x) in grad.iter().zip([-1.0f32, 0.5, 2.0]) {
            assert!((g - expect(x)).abs() < 1e-5, "gelu'({x}) = {g}, expected {}", expect(x));
        }
    }
}
