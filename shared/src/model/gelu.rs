//! The exact (erf) GELU of BERT and MPNet, vectorised on the CPU.
//!
//! burn-flex evaluates `gelu` with libm's scalar `erff`, one value at a time: 13 % of an encoding's
//! time (BENCHMARKS.md, "Where the time goes"). PyTorch uses a vectorised erf. Here, on the flex
//! device:
//! - without autodiff (inference) the activation runs a branch-free rational erf over the tensor's
//!   values instead, compiled for AVX-512 and AVX2 and picked at run time;
//! - under autodiff (training) it is an operation of its own whose forward and backward passes
//!   compute burn-flex's formulas bit for bit, vectorised ([`super::tracked`]), so that training
//!   is faster and gives the same weights.
//!
//! On the page's SwiftShader kernels it is one kernel ([`super::cube_rows::gelu`]); everywhere else
//! (wgpu, ndarray, other float types) it is burn's `gelu`.

use burn::tensor::activation::gelu as burn_gelu;
use burn::tensor::{DType, Device, Tensor, TensorData};

/// `0.5 x (1 + erf(x / √2))`, as Hugging Face's `gelu`.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    #[cfg(not(target_arch = "wasm32"))]
    if device.is_autodiff() {
        return super::tracked::gelu(x);
    }
    if let Some(y) = super::cube_rows::gelu(&x) {
        return y;
    }
    if x.dtype() != DType::F32 || device != Device::flex() {
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
    crate::widest_simd!(gelu_loop(values: &mut [f32]))
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
    fn under_autodiff_gelu_gives_burns_values_and_gradients_bit_for_bit() {
        let device = Device::flex().autodiff();
        // Over the range activations take, with the regions of libm's erff and glibc's expf.
        let values: Vec<f32> = (0..6_000).map(|i| (i as f32 - 3_000.0) / 211.0).collect();
        let weights: Vec<f32> = (0..6_000).map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0).collect();
        let run = |activation: fn(Tensor<2>) -> Tensor<2>| {
            let x = Tensor::<2>::from_data(TensorData::new(values.clone(), [60, 100]), &device).require_grad();
            let w = Tensor::<2>::from_data(TensorData::new(weights.clone(), [60, 100]), &device);
            let y = activation(x.clone());
            let grads = (y.clone() * w).sum().backward();
            let grad = x.grad(&grads).expect("gelu keeps the autodiff graph");
            (y.into_data().try_into_vec::<f32>().unwrap(), grad.into_data().try_into_vec::<f32>().unwrap())
        };
        let before = super::super::tracked::GELU_PASSES.load(std::sync::atomic::Ordering::Relaxed);
        let (ours, burns) = (run(gelu), run(burn_gelu));
        assert!(
            super::super::tracked::GELU_PASSES.load(std::sync::atomic::Ordering::Relaxed) > before,
            "the vectorised op ran"
        );
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&ours.0), bits(&burns.0), "values");
        assert_eq!(bits(&ours.1), bits(&burns.1), "gradients");
    }
}
