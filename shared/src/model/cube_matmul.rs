//! Matrix products on Chromium's software GPU (SwiftShader) by a register-block kernel of our own.
//!
//! burn, built without `autotune`, launches cubek's default product for every shape: tiles staged
//! through workgroup memory with barriers. SwiftShader runs four units in one SIMD register, turns
//! every load whose address differs between them into four scalar loads, and switches coroutines
//! at every barrier; its time on the page is 99 % these products. [`register_block_matmul`] has
//! each unit keep a 4 or 8 × 8 block of the output in registers and read its operands straight
//! from the buffers: on SwiftShader 2-6x faster than cubek's register-tiled `CpuGemm` and 8-44x
//! faster than burn's default, with the same bits on the models' shapes (BENCHMARKS.md, "A kernel
//! for SwiftShader", issue 19). A hardware GPU wants burn's, so this is a switch that the page
//! turns on when its WebGPU adapter is SwiftShader, not a rule.

use std::cell::Cell;

use burn::backend::Cube;
use burn::nn::Linear;
use burn::tensor::{Bool, Tensor};

thread_local! {
    static REGISTER_BLOCKS: Cell<bool> = const { Cell::new(false) };
}

/// Makes the models' products on the wgpu device use [`register_block_matmul`] (`true`) or
/// burn's kernel, on the calling thread (the page has one).
pub fn use_register_blocks(on: bool) {
    REGISTER_BLOCKS.with(|c| c.set(on));
}

/// Whether [`use_register_blocks`] is on for the calling thread.
pub fn register_blocks() -> bool {
    REGISTER_BLOCKS.with(Cell::get)
}

/// `x · y` by [`register_block_matmul`] when it is switched on and both are f32 tensors of the
/// wgpu device with equal batch dimensions; `None` otherwise (the caller multiplies with burn).
pub fn matmul<const D: usize>(x: &Tensor<D>, y: &Tensor<D>) -> Option<Tensor<D>> {
    if !register_blocks() {
        return None;
    }
    let lhs = x.clone().try_into_primitive::<Cube>().ok()?;
    let rhs = y.clone().try_into_primitive::<Cube>().ok()?;
    // 8 × 8 blocks where there are rows enough, 4 × 8 for a query's few rows: near the best of
    // eight blocks on each of the page's shapes, none best on all (BENCHMARKS.md).
    let rows = if x.dims()[D - 2] < 32 { 4 } else { 8 };
    register_block_matmul(&lhs, &rhs, rows, 8).map(Tensor::from_primitive::<Cube>)
}

/// burn's `Linear` (`x · W + b`, the rows folded into one product) by [`matmul`]; `None` where it
/// is off or declines.
pub fn linear<const D: usize>(layer: &Linear, x: &Tensor<D>) -> Option<Tensor<D>> {
    if !register_blocks() {
        return None;
    }
    let weight = layer.weight.val();
    let dims = x.dims();
    let (k, n) = (dims[D - 1], weight.dims()[1]);
    let rows = dims[..D - 1].iter().product();
    let y = matmul(&x.clone().reshape([rows, k]), &weight)?;
    let y = match &layer.bias {
        Some(b) => y + b.val().unsqueeze::<2>(),
        None => y,
    };
    let mut out = dims;
    out[D - 1] = n;
    Some(y.reshape(out))
}

/// Scaled dot-product attention as burn's `attention_fallback` (the unfused attention burn's
/// kernel profiles show on software GPUs: two products per layer) with [`matmul`]'s products;
/// `None` where it is off or declines.
pub fn attention(
    q: &Tensor<4>,
    k: &Tensor<4>,
    v: &Tensor<4>,
    mask: &Tensor<4, Bool>,
    bias: Option<&Tensor<4>>,
) -> Option<Tensor<4>> {
    if !register_blocks() {
        return None;
    }
    let scale = 1.0 / (q.dims()[3] as f64).sqrt();
    let mut scores = matmul(q, &k.clone().transpose())?.mul_scalar(scale).mask_fill(mask.clone(), f32::NEG_INFINITY);
    if let Some(bias) = bias {
        scores = scores + bias.clone();
    }
    // NaN-safe as burn's: a fully masked row gives zeros.
    let max = scores.clone().max_dim(3).clamp_min(f32::MIN);
    let numerator = (scores - max).exp();
    let sum = numerator.clone().sum_dim(3).clamp_min(f32::MIN_POSITIVE);
    matmul(&(numerator / sum), v)
}

pub use register_block::register_block_matmul;

mod register_block {
    use burn::tensor::DType;
    use burn_cubecl::cubecl;
    use burn_cubecl::cubecl::ir::FloatKind;
    use burn_cubecl::cubecl::prelude::*;
    use burn_cubecl::cubecl::{CubeDim, calculate_cube_count_elemwise};
    use burn_cubecl::kernel::matmul::init_matmul_output;
    use burn_cubecl::tensor::CubeTensor;

    /// `c = a · b` with each unit holding a `tm` × `tn` block of `c` in registers, reading `a` and `b`
    /// straight from the buffers: no workgroup memory, no barriers. Written for SwiftShader, which
    /// runs four units in one SIMD register and turns every load whose address differs between them
    /// into four scalar loads (`SIMD::Pointer::Load`, `rr::Gather`), and whose barriers switch
    /// coroutines: a block of `tm · tn` products per `tm + tn` loads keeps the loads from dominating.
    /// Rows and columns past the edge read the last row or column (clamped once, so the `k` loop has
    /// no branch) and are not stored. Batch dimensions of `a`, `b` and `c` must be equal.
    #[cube(launch_unchecked)]
    // The arithmetic is cubecl's expansion, which has `+` and `/` on indices but no `div_ceil`.
    #[allow(clippy::too_many_arguments, clippy::manual_div_ceil)]
    fn register_block_kernel<E: Float>(
        a: &Tensor<E>,
        b: &Tensor<E>,
        c: &mut Tensor<E>,
        #[comptime] rank: usize,
        #[comptime] tm: usize,
        #[comptime] tn: usize,
        #[define(E)] _dtype: ElemType,
    ) {
        let m = c.shape(rank - 2);
        let n = c.shape(rank - 1);
        let depth = a.shape(rank - 1);
        let blocks_n = (n + tn - 1) / tn;
        let blocks = ((m + tm - 1) / tm) * blocks_n;
        let batch = ABSOLUTE_POS / blocks;
        if batch * m * n >= c.len() {
            terminate!();
        }
        let block = ABSOLUTE_POS % blocks;
        let row0 = (block / blocks_n) * tm;
        let col0 = (block % blocks_n) * tn;

        let mut off_a = 0;
        let mut off_b = 0;
        let mut off_c = 0;
        let mut rest = batch;
        #[unroll]
        for i in 0..rank - 2 {
            let d = comptime![rank - 3 - i];
            let index = rest % c.shape(d);
            rest /= c.shape(d);
            off_a += index * a.stride(d);
            off_b += index * b.stride(d);
            off_c += index * c.stride(d);
        }
        let (a_row, a_k) = (a.stride(rank - 2), a.stride(rank - 1));
        let (b_k, b_col) = (b.stride(rank - 2), b.stride(rank - 1));

        let mut a_at = Array::<usize>::new(tm);
        #[unroll]
        for i in 0..tm {
            let row = select(row0 + i < m, row0 + i, m - 1);
            a_at[i] = off_a + row * a_row;
        }
        let mut b_at = Array::<usize>::new(tn);
        #[unroll]
        for j in 0..tn {
            let col = select(col0 + j < n, col0 + j, n - 1);
            b_at[j] = off_b + col * b_col;
        }
        let mut acc = Array::<E>::new(tm * tn);
        #[unroll]
        for i in 0..tm * tn {
            acc[i] = E::new(0.0);
        }
        let mut a_vals = Array::<E>::new(tm);
        for kk in 0..depth {
            #[unroll]
            for i in 0..tm {
                a_vals[i] = a[a_at[i] + kk * a_k];
            }
            #[unroll]
            for j in 0..tn {
                let bv = b[b_at[j] + kk * b_k];
                #[unroll]
                for i in 0..tm {
                    acc[i * tn + j] += a_vals[i] * bv;
                }
            }
        }
        let (c_row, c_col) = (c.stride(rank - 2), c.stride(rank - 1));
        #[unroll]
        for i in 0..tm {
            #[unroll]
            for j in 0..tn {
                if row0 + i < m && col0 + j < n {
                    c[off_c + (row0 + i) * c_row + (col0 + j) * c_col] = acc[i * tn + j];
                }
            }
        }
    }

    /// `a · b` of two f32 tensors of a cube device by [`register_block_kernel`], `tm` × `tn` outputs
    /// per unit; `None` where their batch dimensions differ (broadcasting is burn's to do).
    pub fn register_block_matmul(a: &CubeTensor, b: &CubeTensor, tm: usize, tn: usize) -> Option<CubeTensor> {
        let (sa, sb) = (a.meta.shape(), b.meta.shape());
        let rank = sa.len();
        if a.dtype != DType::F32
            || b.dtype != DType::F32
            || rank < 2
            || sb.len() != rank
            || sa[..rank - 2] != sb[..rank - 2]
        {
            return None;
        }
        let (m, n) = (sa[rank - 2], sb[rank - 1]);
        if m == 0 || n == 0 {
            return None;
        }
        let c = init_matmul_output(a, b, DType::F32);
        let batches: usize = sa[..rank - 2].iter().product();
        let units = batches * m.div_ceil(tm) * n.div_ceil(tn);
        let client = &c.client;
        let cube_dim = CubeDim::new(client, units);
        let cube_count = calculate_cube_count_elemwise(client, units, cube_dim);
        // Safety: every index is clamped into its tensor (rows and columns past the edge read the
        // last one; the batch is checked against `c`'s length) and stores are guarded.
        unsafe {
            register_block_kernel::launch_unchecked(
                client,
                cube_count,
                cube_dim,
                a.clone().into_tensor_arg(),
                b.clone().into_tensor_arg(),
                c.clone().into_tensor_arg(),
                rank,
                tm,
                tn,
                ElemType::Float(FloatKind::F32),
            );
        }
        Some(c)
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::nn::LinearConfig;
    use burn::tensor::module::attention as burn_attention;
    use burn::tensor::ops::AttentionModuleOptions;
    use burn::tensor::{Device, Distribution, TensorData};

    fn max_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
        let (a, b) = (a.into_data().try_to_vec::<f32>().unwrap(), b.into_data().try_to_vec::<f32>().unwrap());
        assert_eq!(a.len(), b.len());
        a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    /// The register-block kernel's `Linear` and attention against burn's on the wgpu device
    /// (lavapipe without a GPU): the switch is needed, and on they give burn's values, on shapes
    /// that fill no block exactly (21 and 45 rows, 83 columns, a transposed operand, two batch
    /// dimensions).
    #[test]
    fn register_block_linear_and_attention_match_burn_on_wgpu() {
        let device = Device::wgpu_options().init().expect("a wgpu adapter (mesa-vulkan-drivers on Debian)");
        let layer = LinearConfig::new(48, 83).init(&device);
        let x: Tensor<3> = Tensor::random([3, 7, 48], Distribution::Normal(0.0, 1.0), &device);
        assert!(linear(&layer, &x).is_none(), "off by default");
        use_register_blocks(true);
        let ours = linear(&layer, &x).expect("the kernel takes the wgpu device's f32 tensors");
        assert_eq!(ours.dims(), [3, 7, 83]);
        assert!(max_diff(ours, layer.forward(x.clone())) <= 1e-5);
        // 45 rows: blocks of 8 rows.
        let tall: Tensor<3> = Tensor::random([5, 9, 48], Distribution::Normal(0.0, 1.0), &device);
        assert!(max_diff(linear(&layer, &tall).expect("on"), layer.forward(tall)) <= 1e-5);
        // Not a wgpu tensor: declined, burn's path takes it.
        let flex = Tensor::<3>::from_data(x.to_data(), &Device::flex());
        assert!(linear(&layer.clone().to_device(&Device::flex()), &flex).is_none());

        let [q, k, v]: [Tensor<4>; 3] =
            std::array::from_fn(|_| Tensor::random([2, 3, 5, 8], Distribution::Normal(0.0, 1.0), &device));
        // The second sequence's last two keys are padding.
        let mut pad = vec![false; 2 * 5];
        pad[8] = true;
        pad[9] = true;
        let mask = Tensor::<2, Bool>::from_data(TensorData::new(pad, [2, 5]), &device)
            .reshape([2, 1, 1, 5])
            .expand([2, 3, 5, 5]);
        let bias: Tensor<4> = Tensor::random([1, 3, 5, 5], Distribution::Normal(0.0, 1.0), &device);
        for bias in [None, Some(bias)] {
            let ours = attention(&q, &k, &v, &mask, bias.as_ref()).expect("on");
            let burns = burn_attention(
                q.clone(),
                k.clone(),
                v.clone(),
                Some(mask.clone()),
                bias.clone(),
                AttentionModuleOptions::default(),
            );
            assert!(max_diff(ours, burns) <= 1e-5);
        }
        use_register_blocks(false);
        assert!(attention(&q, &k, &v, &mask, None).is_none());
    }
}
