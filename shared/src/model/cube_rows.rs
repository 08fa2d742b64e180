//! Attention's masked softmax, a residual add with its LayerNorm, GELU, mean pooling and L2
//! normalisation as one kernel each, on the wgpu device where
//! [`super::cube_matmul::use_register_blocks`] is on (the page on SwiftShader).
//!
//! burn runs these as chains of element-wise kernels, eleven for the masked, scaled softmax (the
//! mask, the scaling, the maximum, two for its clamp, subtract, `exp`, the sum, two for its clamp,
//! divide), ten for the residual and LayerNorm, five for GELU, seven for the mean pooling and
//! five for the norm, each a pass over the tensor and, on the page, a dispatch; and some of them
//! are compiled per shape (per vector width), so a new sequence length (a slider move) pays for
//! compiling them again. Here one unit takes one row (one value, for GELU and pooling) and the
//! arithmetic is burn's, in burn's order; only the sums are added in another order
//! (BENCHMARKS.md, "Sixteen rows a block" and "The mask, pooling and GELU", issue 19).

use burn::backend::Cube;
use burn::nn::LayerNorm;
use burn::tensor::{Bool, BoolStore, DType, Shape, Tensor};
use burn_cubecl::cubecl::ir::{ElemType, FloatKind, UIntKind};
use burn_cubecl::cubecl::prelude::{CubeCount, InputScalar};
use burn_cubecl::cubecl::{CubeDim, calculate_cube_count_elemwise};
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;

use super::cube_matmul::register_blocks;
use kernels::{gelu_kernel, l2_normalize_kernel, masked_softmax_kernel, mean_pool_kernel, residual_layer_norm_kernel};

mod kernels {
    use burn_cubecl::cubecl;
    use burn_cubecl::cubecl::prelude::*;

    /// The offset of row `row` of `t` (every dimension but the last), from its strides. The outputs
    /// are contiguous: row `row` starts at `row · len`.
    #[cube]
    fn row_offset<T: CubePrimitive>(t: &Tensor<T>, row: usize, #[comptime] rank: usize) -> usize {
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

    /// `softmax(x · scale)` along the last dimension with `-inf` where `mask` is set (a stored
    /// bool: not zero), NaN-safe as burn's attention: the maximum is clamped to `f32::MIN` and the
    /// sum to `f32::MIN_POSITIVE`, so a row of `-inf` gives zeros. burn fills the mask before the
    /// scaling, which leaves `-inf` as it is: the same values.
    #[cube(launch_unchecked)]
    pub fn masked_softmax_kernel<E: Float, B: Int>(
        x: &Tensor<E>,
        mask: &Tensor<B>,
        out: &mut Tensor<E>,
        scale: InputScalar,
        #[comptime] rank: usize,
        #[define(E, B)] _dtypes: [ElemType; 2],
    ) {
        let len = x.shape(rank - 1);
        let rows = x.len() / len;
        if ABSOLUTE_POS >= rows {
            terminate!();
        }
        let (at, step) = (row_offset::<E>(x, ABSOLUTE_POS, rank), x.stride(rank - 1));
        let (m_at, m_step) = (row_offset::<B>(mask, ABSOLUTE_POS, rank), mask.stride(rank - 1));
        let out_at = ABSOLUTE_POS * len;
        let scale = scale.get::<E>();
        // A masked value would be -inf (WGSL has no such constant): it leaves the maximum as it
        // is and its `exp(-inf - max)` is 0.
        let unset = B::new(0);
        let mut max = E::new(f32::MIN);
        for j in 0..len {
            if mask[m_at + j * m_step] == unset {
                max = max.max(x[at + j * step] * scale);
            }
        }
        let mut sum = E::new(0.0);
        for j in 0..len {
            let mut e = E::new(0.0);
            if mask[m_at + j * m_step] == unset {
                e = (x[at + j * step] * scale - max).exp();
            }
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

    /// Mean pooling of `tokens` `[b, s, h]` over the positions where `padding` `[b, s]` is not
    /// set, one unit per output value: the kept values' sum over their count, clamped to at least
    /// 1e-9 as in `pooling::pool`.
    #[cube(launch_unchecked)]
    pub fn mean_pool_kernel<E: Float, B: Int>(
        tokens: &Tensor<E>,
        padding: &Tensor<B>,
        out: &mut Tensor<E>,
        #[define(E, B)] _dtypes: [ElemType; 2],
    ) {
        if ABSOLUTE_POS >= out.len() {
            terminate!();
        }
        let hidden = tokens.shape(2);
        let (b, c) = (ABSOLUTE_POS / hidden, ABSOLUTE_POS % hidden);
        let (at, step) = (b * tokens.stride(0) + c * tokens.stride(2), tokens.stride(1));
        let (p_at, p_step) = (b * padding.stride(0), padding.stride(1));
        let unset = B::new(0);
        let mut sum = E::new(0.0);
        let mut count = E::new(0.0);
        for s in 0..tokens.shape(1) {
            if padding[p_at + s * p_step] == unset {
                sum += tokens[at + s * step];
                count += E::new(1.0);
            }
        }
        out[ABSOLUTE_POS] = sum / count.max(E::new(1e-9));
    }

    /// Each row of a matrix over its L2 norm, clamped to at least 1e-12 as in
    /// `pooling::l2_normalize`: one unit per row.
    #[cube(launch_unchecked)]
    pub fn l2_normalize_kernel<E: Float>(x: &Tensor<E>, out: &mut Tensor<E>, #[define(E)] _dtype: ElemType) {
        if ABSOLUTE_POS >= x.shape(0) {
            terminate!();
        }
        let len = x.shape(1);
        let (at, step) = (ABSOLUTE_POS * x.stride(0), x.stride(1));
        let mut squares = E::new(0.0);
        for j in 0..len {
            let v = x[at + j * step];
            squares += v * v;
        }
        let norm = squares.sqrt().max(E::new(1e-12));
        for j in 0..len {
            out[ABSOLUTE_POS * len + j] = x[at + j * step] / norm;
        }
    }

    /// burn's `gelu`, `x · (erf(x / √2) + 1) / 2` in burn's order and with its `erf`, one unit
    /// per value of a contiguous tensor.
    #[cube(launch_unchecked)]
    pub fn gelu_kernel<E: Float>(
        x: &Tensor<E>,
        out: &mut Tensor<E>,
        sqrt_2: InputScalar,
        #[define(E)] _dtype: ElemType,
    ) {
        if ABSOLUTE_POS >= out.len() {
            terminate!();
        }
        let v = x[ABSOLUTE_POS];
        out[ABSOLUTE_POS] = v * ((v / sqrt_2.get::<E>()).erf() + E::new(1.0)) / E::new(2.0);
    }
}

/// A contiguous f32 output of `shape` on `t`'s device, and `units` units in cubes of the device's
/// size.
fn launch_shape(t: &CubeTensor, shape: Shape, units: usize) -> (CubeTensor, CubeCount, CubeDim) {
    let out = empty_device_contiguous_dtype(t.client.clone(), t.device.clone(), shape, DType::F32);
    let cube_dim = CubeDim::new(&t.client, units);
    (out, calculate_cube_count_elemwise(&t.client, units, cube_dim), cube_dim)
}

/// An output shaped as `t`, one unit per row of `t`.
fn row_launch(t: &CubeTensor) -> (CubeTensor, CubeCount, CubeDim) {
    let shape = t.meta.shape();
    launch_shape(t, shape.clone(), shape[..shape.len() - 1].iter().product())
}

fn cube_f32<const D: usize>(t: &Tensor<D>) -> Option<CubeTensor> {
    let t = t.clone().try_into_primitive::<Cube>().ok()?;
    (t.dtype == DType::F32 && t.meta.shape().iter().all(|&d| d > 0)).then_some(t)
}

/// A bool tensor of the wgpu device and the type its values are stored as.
fn cube_bool<const D: usize>(t: &Tensor<D, Bool>) -> Option<(CubeTensor, ElemType)> {
    let t = t.clone().try_into_primitive::<Cube>().ok()?;
    let stored = match t.dtype {
        DType::Bool(BoolStore::U32) => ElemType::UInt(UIntKind::U32),
        DType::Bool(BoolStore::U8) => ElemType::UInt(UIntKind::U8),
        _ => return None,
    };
    Some((t, stored))
}

const F32: ElemType = ElemType::Float(FloatKind::F32);

/// `softmax(x.mask_fill(mask, -inf) · scale, last dimension)` in one kernel where the
/// register-block kernels are on and `x` is an f32 tensor of the wgpu device, `mask` of its shape
/// (an expanded view is read through its strides); `None` otherwise. burn's `mask_fill` is
/// compiled per vector width, which a new sequence length may change (a slider move).
pub fn masked_softmax<const D: usize>(x: &Tensor<D>, mask: &Tensor<D, Bool>, scale: f32) -> Option<Tensor<D>> {
    if !register_blocks() || x.dims() != mask.dims() {
        return None;
    }
    let x = cube_f32(x)?;
    let (mask, stored) = cube_bool(mask)?;
    let (out, count, dim) = row_launch(&x);
    // Safety: one unit per row, those past the last row stop at once; every index is inside its
    // row, and `mask` has `x`'s shape.
    unsafe {
        masked_softmax_kernel::launch_unchecked(
            &x.client,
            count,
            dim,
            x.clone().into_tensor_arg(),
            mask.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            InputScalar::new(scale, F32),
            D,
            [F32, stored],
        );
    }
    Some(Tensor::from_primitive::<Cube>(out))
}

/// Mean pooling (`pooling::pool`) in one kernel where the register-block kernels are on and the
/// tensors are of the wgpu device: burn's masked sum and count are a dozen kernels, some compiled
/// again for each new shape. `None` otherwise.
pub fn mean_pool(tokens: &Tensor<3>, padding: &Tensor<2, Bool>) -> Option<Tensor<2>> {
    let [batch, seq, hidden] = tokens.dims();
    if !register_blocks() || padding.dims() != [batch, seq] {
        return None;
    }
    let tokens = cube_f32(tokens)?;
    let (padding, stored) = cube_bool(padding)?;
    let (out, count, cube_dim) = launch_shape(&tokens, [batch, hidden].into(), batch * hidden);
    // Safety: one unit per output value, those past the last stop at once; `padding` is
    // `[batch, seq]` as `tokens` is `[batch, seq, hidden]`.
    unsafe {
        mean_pool_kernel::launch_unchecked(
            &tokens.client,
            count,
            cube_dim,
            tokens.clone().into_tensor_arg(),
            padding.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            [F32, stored],
        );
    }
    Some(Tensor::from_primitive::<Cube>(out))
}

/// `pooling::l2_normalize` in one kernel where the register-block kernels are on and `x` is an
/// f32 matrix of the wgpu device; `None` otherwise.
pub fn l2_normalize(x: &Tensor<2>) -> Option<Tensor<2>> {
    if !register_blocks() {
        return None;
    }
    let x = cube_f32(x)?;
    let (out, count, dim) = row_launch(&x);
    // Safety: one unit per row, those past the last row stop at once; every index is inside its row.
    unsafe {
        l2_normalize_kernel::launch_unchecked(
            &x.client,
            count,
            dim,
            x.clone().into_tensor_arg(),
            out.clone().into_tensor_arg(),
            F32,
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
            InputScalar::new(epsilon, F32),
            D,
            F32,
        );
    }
    Some(Tensor::from_primitive::<Cube>(out))
}

/// burn's `gelu` in one kernel where the register-block kernels are on and `x` is a contiguous
/// f32 tensor of the wgpu device (the feed-forward product's output); `None` otherwise. burn's is
/// five element-wise kernels, a quarter of a slider move's launches on the page.
pub fn gelu<const D: usize>(x: &Tensor<D>) -> Option<Tensor<D>> {
    if !register_blocks() {
        return None;
    }
    let x = cube_f32(x)?;
    if !x.is_contiguous() {
        return None;
    }
    let shape = x.meta.shape().clone();
    let (out, count, cube_dim) = launch_shape(&x, shape.clone(), shape.iter().product());
    // Safety: one unit per value, those past the last stop at once; `x` is contiguous.
    unsafe {
        gelu_kernel::launch_unchecked(
            &x.client,
            count,
            cube_dim,
            x.clone().into_tensor_arg(),
            out.clone().into_tensor_arg(),
            InputScalar::new(std::f64::consts::SQRT_2, F32),
            F32,
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

    /// The kernels against burn's on the wgpu device (lavapipe without a GPU): off by default,
    /// then on contiguous and strided inputs; a row whose keys are all padding gives zeros; the
    /// attention mask as the models make it, an expanded `[b, 1, 1, s]` view.
    #[test]
    fn row_kernels_match_burn_on_wgpu() {
        let device = wgpu();
        let x: Tensor<4> = Tensor::random([2, 3, 5, 7], Distribution::Normal(0.0, 3.0), &device);
        let norm = LayerNormConfig::new(48).with_epsilon(1e-12).init(&device);
        let h: Tensor<3> = Tensor::random([3, 7, 48], Distribution::Normal(0.0, 1.0), &device);
        let mut pad = vec![false; 2 * 3 * 5 * 7];
        pad[..7].fill(true);
        pad[40] = true;
        let mask = Tensor::<4, Bool>::from_data(TensorData::new(pad, [2, 3, 5, 7]), &device);
        let padding = Tensor::<2, Bool>::from_data(
            TensorData::new([[false; 7], [false, false, false, false, true, true, true], [false; 7]].concat(), [3, 7]),
            &device,
        );
        assert!(masked_softmax(&x, &mask, 0.5).is_none(), "off");
        assert!(residual_layer_norm(&norm, 1e-12, &h, &h).is_none(), "off");
        assert!(
            gelu(&h).is_none()
                && mean_pool(&h, &padding).is_none()
                && l2_normalize(&h.clone().sum_dim(1).reshape([3, 48])).is_none()
        );
        use_register_blocks(true);

        let burns = |x: &Tensor<4>, mask: &Tensor<4, Bool>| {
            softmax(x.clone().mask_fill(mask.clone(), f32::NEG_INFINITY).mul_scalar(0.35), 3)
        };
        let none = Tensor::<4, Bool>::from_data(TensorData::new(vec![false; 2 * 3 * 5 * 7], [2, 3, 5, 7]), &device);
        let swapped = |t: &Tensor<4>| t.clone().swap_dims(2, 3);
        let swapped_mask = |t: &Tensor<4, Bool>| t.clone().swap_dims(2, 3);
        for (x, mask) in [
            (x.clone(), none.clone()),
            (x.clone(), mask.clone()),
            (swapped(&x), swapped_mask(&none)),
            (swapped(&x), swapped_mask(&mask)),
        ] {
            assert!(max_diff(masked_softmax(&x, &mask, 0.35).expect("on"), burns(&x, &mask)) <= 1e-6);
        }
        let masked = masked_softmax(&x, &mask, 0.35).expect("on");
        let values = masked.into_data().try_to_vec::<f32>().unwrap();
        assert!(values[..7].iter().all(|&v| v == 0.0), "a fully masked row: zeros, not NaN");
        assert_eq!(values[40], 0.0);
        assert!((values[35..42].iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let keys = padding.clone().reshape([3, 1, 1, 7]).expand([3, 2, 7, 7]);
        let scores: Tensor<4> = Tensor::random([3, 2, 7, 7], Distribution::Normal(0.0, 3.0), &device);
        assert!(max_diff(masked_softmax(&scores, &keys, 0.35).expect("on"), burns(&scores, &keys)) <= 1e-6);

        // Pooling and the norm against the models' own, contiguous and strided.
        let pooled = |tokens: &Tensor<3>| {
            let keep = padding.clone().bool_not().float().unsqueeze_dim::<3>(2);
            let counts = keep.clone().sum_dim(1).reshape([3, 1]).clamp_min(1e-9);
            (tokens.clone() * keep).sum_dim(1).reshape([3, 48]) / counts
        };
        let normalized = |x: Tensor<2>| x.clone() / x.square().sum_dim(1).sqrt().clamp_min(1e-12);
        let transposed: Tensor<3> = Tensor::random([3, 48, 7], Distribution::Normal(0.0, 2.0), &device).swap_dims(1, 2);
        for tokens in [h.clone(), transposed] {
            let ours = mean_pool(&tokens, &padding).expect("on");
            assert!(max_diff(ours.clone(), pooled(&tokens)) <= 1e-5);
            assert!(max_diff(l2_normalize(&ours).expect("on"), normalized(pooled(&tokens))) <= 1e-6);
            let columns = ours.clone().transpose();
            assert!(max_diff(l2_normalize(&columns).expect("on"), normalized(columns)) <= 1e-6);
        }
        assert_eq!(
            l2_normalize(&Tensor::zeros([2, 5], &device)).expect("on").into_data().try_to_vec::<f32>().unwrap(),
            [0.0; 10]
        );

        // GELU as burn's, on a contiguous tensor; a transposed one is left to burn.
        let wide: Tensor<3> = Tensor::random([3, 7, 40], Distribution::Normal(0.0, 2.0), &device);
        assert!(max_diff(gelu(&wide).expect("on"), burn::tensor::activation::gelu(wide.clone())) <= 1e-6);
        assert!(gelu(&wide.swap_dims(1, 2)).is_none());

        // LayerNorm with weights not 1 and 0, a residual read through strides.
        let mut norm = norm;
        norm.gamma = burn::module::Param::from_tensor(Tensor::random([48], Distribution::Normal(1.0, 0.5), &device));
        norm.beta =
            Some(burn::module::Param::from_tensor(Tensor::random([48], Distribution::Normal(0.0, 0.5), &device)));
        let residual: Tensor<3> = Tensor::random([3, 48, 7], Distribution::Normal(0.0, 2.0), &device).swap_dims(1, 2);
        let ours = residual_layer_norm(&norm, 1e-12, &h, &residual).expect("on");
        assert!(max_diff(ours, norm.forward(h.clone() + residual.clone())) <= 1e-5);
        // A residual broadcast over the batch (a zero stride), as the embeddings' positions.
        let row: Tensor<3> = Tensor::random([1, 7, 48], Distribution::Normal(0.0, 2.0), &device);
        let ours = residual_layer_norm(&norm, 1e-12, &h, &row.clone().expand([3, 7, 48])).expect("on");
        assert!(max_diff(ours, norm.forward(h.clone() + row)) <= 1e-5);
        use_register_blocks(false);
    }
}
