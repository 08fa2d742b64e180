//! Attention's softmax and a residual add with its LayerNorm as one kernel each, on the wgpu
//! device where [`super::cube_matmul::use_register_blocks`] is on (the page on SwiftShader).
//!
//! burn runs these as chains of element-wise kernels, ten for the scaled softmax (the scaling,
//! the maximum, two for its clamp, subtract, `exp`, the sum, two for its clamp, divide) and ten for
//! the residual and LayerNorm, each a pass over the tensor and, on the page, a dispatch; and some of
//! them are compiled per shape, so a new batch shape (the first slider move) pays for compiling
//! them again. Here one unit takes one row and the arithmetic is burn's, in burn's order; only
//! the sums are added in another order (BENCHMARKS.md, "Sixteen rows a block", issue 19).

use burn::backend::Cube;
use burn::nn::LayerNorm;
use burn::tensor::{DType, Tensor};
use burn_cubecl::cubecl::ir::{ElemType, FloatKind};
use burn_cubecl::cubecl::prelude::{CubeCount, InputScalar};
use burn_cubecl::cubecl::{CubeDim, calculate_cube_count_elemwise};
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;

use super::cube_matmul::register_blocks;
use kernels::{residual_layer_norm_kernel, scaled_softmax_kernel};

mod kernels {
    use burn_cubecl::cubecl;
    use burn_cubecl::cubecl::prelude::*;

    /// The offset of row `row` of `t` (every dimension but the last), from its strides. The outputs
    /// are contiguous: row `row` starts at `row · len`.
    #[cube]
    fn row_offset<E: Float>(t: &Tensor<E>, row: usize, #[comptime] rank: usize) -> usize {
        let mut offset = 0;
        let mut rest = row;
        #[unroll]
        for i in 0..rank - 1 {
            let d = comptime![rank - 2 - i];
            offset += (rest % t.shape(d)) * t.stride(d);
            rest /= t.shape(d);
        }
        offset
    }

    /// `softmax(x · scale)` along the last dimension, NaN-safe as burn's attention: the maximum is
    /// clamped to `f32::MIN` and the sum to `f32::MIN_POSITIVE`, so a row of `-inf` gives zeros.
    #[cube(launch_unchecked)]
    pub fn scaled_softmax_kernel<E: Float>(
        x: &Tensor<E>,
        out: &mut Tensor<E>,
        scale: InputScalar,
        #[comptime] rank: usize,
        #[define(E)] _dtype: ElemType,
    ) {
        let len = x.shape(rank - 1);
        let rows = x.len() / len;
        if ABSOLUTE_POS >= rows {
            terminate!();
        }
        let (at, step) = (row_offset::<E>(x, ABSOLUTE_POS, rank), x.stride(rank - 1));
        let out_at = ABSOLUTE_POS * len;
        let scale = scale.get::<E>();
        let mut max = E::new(f32::MIN);
        for j in 0..len {
            max = max.max(x[at + j * step] * scale);
        }
        let mut sum = E::new(0.0);
        for j in 0..len {
            let e = (x[at + j * step] * scale - max).exp();
            out[out_at + j] = e;
            sum += e;
        }
        let sum = sum.max(E::new(f32::MIN_POSITIVE));
        for j in 0..len {
            out[out_at + j] /= sum;
        }
    }

    /// `layer_norm(x + residual)` along the last dimension, as burn's `layer_norm`: the mean, the
    /// centred values, their mean square, `/ sqrt(var + eps)`, `· gamma + beta`.
    #[cube(launch_unchecked)]
    pub fn residual_layer_norm_kernel<E: Float>(
        x: &Tensor<E>,
        residual: &Tensor<E>,
        gamma: &Tensor<E>,
        beta: &Tensor<E>,
        out: &mut Tensor<E>,
        epsilon: InputScalar,
        #[comptime] rank: usize,
        #[define(E)] _dtype: ElemType,
    ) {
        let len = x.shape(rank - 1);
        let rows = x.len() / len;
        if ABSOLUTE_POS >= rows {
            terminate!();
        }
        let (x_at, x_step) = (row_offset::<E>(x, ABSOLUTE_POS, rank), x.stride(rank - 1));
        let (r_at, r_step) = (row_offset::<E>(residual, ABSOLUTE_POS, rank), residual.stride(rank - 1));
        let out_at = ABSOLUTE_POS * len;
        let count = E::cast_from(len);
        // `x + residual` once, kept in the output row, which the later passes read.
        let mut sum = E::new(0.0);
        for j in 0..len {
            let v = x[x_at + j * x_step] + residual[r_at + j * r_step];
            out[out_at + j] = v;
            sum += v;
        }
        let mean = sum / count;
        let mut squares = E::new(0.0);
        for j in 0..len {
            let centred = out[out_at + j] - mean;
            squares += centred * centred;
        }
        let denom = (squares / count + epsilon.get::<E>()).sqrt();
        for j in 0..len {
            let centred = out[out_at + j] - mean;
            out[out_at + j] = centred / denom * gamma[j * gamma.stride(0)] + beta[j * beta.stride(0)];
        }
    }
}

/// A contiguous f32 output shaped as `t`, and one unit per row of `t` in cubes of the device's size.
fn row_launch(t: &CubeTensor) -> (CubeTensor, CubeCount, CubeDim) {
    let shape = t.meta.shape();
    let out = empty_device_contiguous_dtype(t.client.clone(), t.device.clone(), shape.clone(), DType::F32);
    let rows = shape[..shape.len() - 1].iter().product::<usize>();
    let cube_dim = CubeDim::new(&t.client, rows);
    (out, calculate_cube_count_elemwise(&t.client, rows, cube_dim), cube_dim)
}

fn cube_f32<const D: usize>(t: &Tensor<D>) -> Option<CubeTensor> {
    let t = t.clone().try_into_primitive::<Cube>().ok()?;
    (t.dtype == DType::F32 && t.meta.shape().iter().all(|&d| d > 0)).then_some(t)
}

/// `softmax(x · scale, last dimension)` in one kernel where the register-block kernels are on and
/// `x` is an f32 tensor of the wgpu device; `None` otherwise.
pub fn scaled_softmax<const D: usize>(x: &Tensor<D>, scale: f32) -> Option<Tensor<D>> {
    if !register_blocks() {
        return None;
    }
    let x = cube_f32(x)?;
    let (out, count, dim) = row_launch(&x);
    // Safety: one unit per row, those past the last row stop at once; every index is inside its row.
    unsafe {
        scaled_softmax_kernel::launch_unchecked(
            &x.client,
            count,
            dim,
            x.clone().into_tensor_arg(),
            out.clone().into_tensor_arg(),
            InputScalar::new(scale, ElemType::Float(FloatKind::F32)),
            D,
            ElemType::Float(FloatKind::F32),
        );
    }
    Some(Tensor::from_primitive::<Cube>(out))
}

/// `norm.forward(x + residual)` in one kernel where the register-block kernels are on, the
/// tensors are f32 on the wgpu device and `norm` has a bias; `None` otherwise. burn's `LayerNorm`
/// keeps its epsilon private, so the caller passes the one it was built with.
pub fn residual_layer_norm<const D: usize>(
    norm: &LayerNorm,
    epsilon: f64,
    x: &Tensor<D>,
    residual: &Tensor<D>,
) -> Option<Tensor<D>> {
    if !register_blocks() || x.dims() != residual.dims() {
        return None;
    }
    let (x, residual) = (cube_f32(x)?, cube_f32(residual)?);
    let gamma = cube_f32(&norm.gamma.val())?;
    let beta = cube_f32(&norm.beta.as_ref()?.val())?;
    let width = x.meta.shape()[D - 1];
    if gamma.meta.shape().as_slice() != [width] || beta.meta.shape().as_slice() != [width] {
        return None;
    }
    let (out, count, dim) = row_launch(&x);
    // Safety: one unit per row, those past the last row stop at once; every index is inside its
    // row, and `gamma` and `beta` are as wide as a row.
    unsafe {
        residual_layer_norm_kernel::launch_unchecked(
            &x.client,
            count,
            dim,
            x.clone().into_tensor_arg(),
            residual.into_tensor_arg(),
            gamma.into_tensor_arg(),
            beta.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            InputScalar::new(epsilon, ElemType::Float(FloatKind::F32)),
            D,
            ElemType::Float(FloatKind::F32),
        );
    }
    Some(Tensor::from_primitive::<Cube>(out))
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::model::cube_matmul::tests::{max_diff, wgpu};
    use crate::model::cube_matmul::use_register_blocks;
    use burn::nn::LayerNormConfig;
    use burn::tensor::activation::softmax;
    use burn::tensor::{Bool, Distribution, TensorData};

    /// Both kernels against burn's on the wgpu device (lavapipe without a GPU): off by default,
    /// then on contiguous and strided inputs, and a row of `-inf` (all keys padding) gives zeros.
    #[test]
    fn row_kernels_match_burn_on_wgpu() {
        let device = wgpu();
        let x: Tensor<4> = Tensor::random([2, 3, 5, 7], Distribution::Normal(0.0, 3.0), &device);
        let norm = LayerNormConfig::new(48).with_epsilon(1e-12).init(&device);
        let h: Tensor<3> = Tensor::random([3, 7, 48], Distribution::Normal(0.0, 1.0), &device);
        assert!(scaled_softmax(&x, 0.5).is_none() && residual_layer_norm(&norm, 1e-12, &h, &h).is_none(), "off");
        use_register_blocks(true);

        let strided = x.clone().swap_dims(2, 3);
        for x in [x.clone(), strided] {
            let burns = softmax(x.clone().mul_scalar(0.35), 3);
            assert!(max_diff(scaled_softmax(&x, 0.35).expect("on"), burns) <= 1e-6);
        }
        let mut pad = vec![false; 2 * 3 * 5 * 7];
        pad[..7].fill(true);
        pad[40] = true;
        let mask = Tensor::<4, Bool>::from_data(TensorData::new(pad, [2, 3, 5, 7]), &device);
        let masked = scaled_softmax(&x.clone().mask_fill(mask, f32::NEG_INFINITY), 0.35).expect("on");
        let values = masked.into_data().try_to_vec::<f32>().unwrap();
        assert!(values[..7].iter().all(|&v| v == 0.0), "a fully masked row: zeros, not NaN");
        assert_eq!(values[40], 0.0);
        assert!((values[35..42].iter().sum::<f32>() - 1.0).abs() < 1e-6);

        // LayerNorm with weights not 1 and 0, a residual read through strides.
        let mut norm = norm;
        norm.gamma = burn::module::Param::from_tensor(Tensor::random([48], Distribution::Normal(1.0, 0.5), &device));
        norm.beta =
            Some(burn::module::Param::from_tensor(Tensor::random([48], Distribution::Normal(0.0, 0.5), &device)));
        let residual: Tensor<3> = Tensor::random([3, 48, 7], Distribution::Normal(0.0, 2.0), &device).swap_dims(1, 2);
        let ours = residual_layer_norm(&norm, 1e-12, &h, &residual).expect("on");
        assert!(max_diff(ours, norm.forward(h.clone() + residual.clone())) <= 1e-5);
        use_register_blocks(false);
    }
}
