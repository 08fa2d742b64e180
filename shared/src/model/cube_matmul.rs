//! Matrix products on Chromium's software GPU (SwiftShader) by a register-block kernel of our own.
//!
//! burn, built without `autotune`, launches cubek's default product for every shape: tiles staged
//! through workgroup memory with barriers. SwiftShader runs four units in one SIMD register, turns
//! every load whose address differs between them into four scalar loads, and switches coroutines
//! at every barrier; its time on the page is 99 % these products. [`register_block_matmul`] has
//! each unit keep a 4 or 16 × 8 block of the output in registers and read its operands straight
//! from the buffers: on SwiftShader 2-6x faster than cubek's register-tiled `CpuGemm` and 8-44x
//! faster than burn's default, with the same bits on the models' shapes (BENCHMARKS.md, "A kernel
//! for SwiftShader", issue 19). Where the device has subgroups of one known width, the four units
//! SwiftShader runs together share the rows' values by subgroup broadcasts, and each block entry
//! takes four products per store: a slider move on the page 1.2-1.6x faster again ("Subgroups and
//! four steps at a time"). Blocks of 16 rows, a `Linear`'s bias added in the kernel and
//! [`super::cube_rows`]' one-kernel softmax and LayerNorm took a quarter off a slider move again
//! ("Sixteen rows a block"). Operands whose layout allows it are read four values a load
//! (WGSL's `vec4`): one load instruction where there were four, a slider move about a tenth
//! faster again ("Four values a load").
//! A hardware GPU wants burn's, so this is a switch that the page turns on when its WebGPU adapter
//! is SwiftShader, not a rule.

use std::cell::Cell;

use burn::backend::Cube;
use burn::nn::Linear;
use burn::tensor::{Bool, Tensor};

thread_local! {
    static REGISTER_BLOCKS: Cell<bool> = const { Cell::new(false) };
    static PLANE_LANES: Cell<usize> = const { Cell::new(1) };
    static WIDE_LOADS: Cell<bool> = const { Cell::new(true) };
}

/// Lets [`register_block_matmul`] read operands four values a load where their layout allows
/// (`true`, the default) on the calling thread; `false` reads one at a time, for comparisons.
pub fn use_wide_loads(on: bool) {
    WIDE_LOADS.with(|c| c.set(on));
}

/// Lets [`register_block_matmul`] share `a`'s values across planes (subgroups) of `lanes` units
/// on the calling thread: only where the device's planes are exactly `lanes` wide and shaders may
/// use subgroup operations (SwiftShader: 4, with WebGPU's `subgroups` feature); 1, the default,
/// shares nothing.
pub fn use_plane_lanes(lanes: usize) {
    PLANE_LANES.with(|c| c.set(lanes.max(1)));
}

/// The plane width set by [`use_plane_lanes`] for the calling thread.
pub fn plane_lanes() -> usize {
    PLANE_LANES.with(Cell::get)
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

/// The width of the wgpu device's planes (subgroups) when the device states one fixed width
/// (SwiftShader 4, lavapipe 8 here); `None` on other devices or widths that vary.
pub fn fixed_plane_width(device: &burn::tensor::Device) -> Option<usize> {
    let probe = Tensor::<1>::zeros([1], device).try_into_primitive::<Cube>().ok()?;
    let hardware = &probe.client.properties().hardware;
    (hardware.plane_size_min == hardware.plane_size_max).then_some(hardware.plane_size_max as usize)
}

/// `x · y` by [`register_block_matmul`] when it is switched on and both are f32 tensors of the
/// wgpu device with equal batch dimensions; `None` otherwise (the caller multiplies with burn).
pub fn matmul<const D: usize>(x: &Tensor<D>, y: &Tensor<D>) -> Option<Tensor<D>> {
    matmul_bias(x, y, None, [true, true])
}

/// [`matmul`], then `+ bias` (`[n]`) in the kernel; `wide`: whether `x` and `y` may be read four
/// values a load (see [`register_block_matmul`]).
fn matmul_bias<const D: usize>(
    x: &Tensor<D>,
    y: &Tensor<D>,
    bias: Option<&Tensor<1>>,
    wide: [bool; 2],
) -> Option<Tensor<D>> {
    if !register_blocks() {
        return None;
    }
    let bias = match bias {
        Some(b) => Some(b.clone().try_into_primitive::<Cube>().ok()?),
        None => None,
    };
    let lhs = x.clone().try_into_primitive::<Cube>().ok()?;
    let rhs = y.clone().try_into_primitive::<Cube>().ok()?;
    // 16 × 8 blocks where there are rows enough, 4 × 8 for a query's few rows: each block is a
    // kernel SwiftShader compiles on first use, so two (BENCHMARKS.md, "Sixteen rows a block").
    let rows = if x.dims()[D - 2] < 32 { 4 } else { 16 };
    // Planes share rows only where the columns fill several planes' blocks: attention's narrow
    // products would leave lanes idle.
    let lanes = plane_lanes();
    let lanes = if y.dims()[D - 1] >= 4 * 8 * lanes { lanes } else { 1 };
    let wide = wide.map(|w| w && WIDE_LOADS.with(Cell::get));
    register_block_matmul(&lhs, &rhs, bias.as_ref(), rows, 8, lanes, wide).map(Tensor::from_primitive::<Cube>)
}

/// burn's `Linear` (`x · W + b`, the rows folded into one product, the bias added in the kernel)
/// by [`matmul`]; `None` where it is off or declines.
pub fn linear<const D: usize>(layer: &Linear, x: &Tensor<D>) -> Option<Tensor<D>> {
    if !register_blocks() {
        return None;
    }
    let weight = layer.weight.val();
    let dims = x.dims();
    let (k, n) = (dims[D - 1], weight.dims()[1]);
    let rows = dims[..D - 1].iter().product();
    let bias = layer.bias.as_ref().map(|b| b.val());
    let y = matmul_bias(&x.clone().reshape([rows, k]), &weight, bias.as_ref(), [true, true])?;
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
    let raw = matmul(q, &k.clone().transpose())?;
    // The weights' depth is the sequence length: read four a load only where it is a multiple of
    // four, they would make a kernel variant (compiled on first use) per length class.
    let weighted = |weights: &Tensor<4>| matmul_bias(weights, v, None, [false, true]);
    if bias.is_none()
        && let Some(weights) = super::cube_rows::masked_softmax(&raw, mask, scale as f32)
    {
        return weighted(&weights);
    }
    // Masked before the scaling, which leaves -inf as it is: burn's values.
    let mut scores = raw.mask_fill(mask.clone(), f32::NEG_INFINITY).mul_scalar(scale);
    if let Some(bias) = bias {
        scores = scores + bias.clone();
    }
    // NaN-safe as burn's: a fully masked row gives zeros.
    let max = scores.clone().max_dim(3).clamp_min(f32::MIN);
    let numerator = (scores - max).exp();
    let sum = numerator.clone().sum_dim(3).clamp_min(f32::MIN_POSITIVE);
    weighted(&(numerator / sum))
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
    /// With `lanes` > 1 the units of a plane (subgroup) of that many lanes take neighbouring column
    /// blocks of the same rows, so each lane loads `tm / lanes` of the rows' `a` values and a plane
    /// broadcast hands them round: `tm / lanes + tn` loads per step instead of `tm + tn`. That needs
    /// planes of exactly `lanes` consecutive units and control flow uniform across them, so no unit
    /// returns early: rows, columns and batches past the edge read the last one (clamped once, so
    /// the `k` loop has no branch) and are not stored. Batch dimensions of `a`, `b` and `c` must be
    /// equal. `wide_a`: `a` is read as vectors of four along its depth (`NA` = 4: one load gives a
    /// row's four steps); `wide_b`: `b` as vectors of four along its columns (`NB` = 4); else
    /// `NA`, `NB` = 1.
    #[cube(launch_unchecked)]
    // The arithmetic is cubecl's expansion, which has `+` and `/` on indices but no `div_ceil`.
    #[allow(clippy::too_many_arguments, clippy::manual_div_ceil)]
    fn register_block_kernel<E: Float, NA: Size, NB: Size>(
        a: &Tensor<Vector<E, NA>>,
        b: &Tensor<Vector<E, NB>>,
        bias: &Tensor<E>,
        c: &mut Tensor<E>,
        #[comptime] rank: usize,
        #[comptime] has_bias: bool,
        #[comptime] tm: usize,
        #[comptime] tn: usize,
        #[comptime] lanes: usize,
        #[comptime] wide_a: bool,
        #[comptime] wide_b: bool,
        #[define(E)] _dtype: ElemType,
    ) {
        let m = c.shape(rank - 2);
        let n = c.shape(rank - 1);
        let depth = a.shape(rank - 1);
        let groups_n = (n + tn * lanes - 1) / (tn * lanes);
        let per_batch = ((m + tm - 1) / tm) * groups_n;
        let batches = c.len() / (m * n);
        let plane = ABSOLUTE_POS / lanes;
        let lane = ABSOLUTE_POS % lanes;
        let inside = plane < per_batch * batches;
        let batch = select(inside, plane / per_batch, batches - 1);
        let group = plane % per_batch;
        let row0 = (group / groups_n) * tm;
        let col0 = ((group % groups_n) * lanes + lane) * tn;

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

        // The rows of `a` this lane loads: every `lanes`-th of the block from its own. Offsets and
        // each step's values are sequences (values, not arrays): SwiftShader stores to an array
        // under the loop's lane mask. Wide operands are indexed in vectors of four (the host
        // checked that every offset and stride is a multiple of four).
        let loads = comptime![(tm + lanes - 1) / lanes];
        let mut a_at = Sequence::<usize>::new();
        #[unroll]
        for q in 0..loads {
            let row = row0 + q * lanes + lane;
            let at = off_a + select(row < m, row, m - 1) * a_row;
            if comptime![wide_a] {
                a_at.push(at / 4);
            } else {
                a_at.push(at);
            }
        }
        let mut b_at = Sequence::<usize>::new();
        if comptime![wide_b] {
            // Four columns a vector; past the edge, the last four (read, not stored).
            #[unroll]
            for j in 0..tn / 4 {
                let col = select(col0 + j * 4 < n, col0 + j * 4, n - 4);
                b_at.push((off_b + col) / 4);
            }
        } else {
            #[unroll]
            for j in 0..tn {
                let col = select(col0 + j < n, col0 + j, n - 1);
                b_at.push(off_b + col * b_col);
            }
        }
        let b_step = select(wide_b, b_k / 4, b_k);
        let mut acc = Array::<E>::new(tm * tn);
        #[unroll]
        for i in 0..tm * tn {
            acc[i] = E::new(0.0);
        }
        // Four steps of the depth at a time, each block entry read and written once per four
        // products (SwiftShader stores to the array under the loop's lane mask), added in the
        // order of one step at a time; then the steps left over (none where `a` is wide).
        let quads = depth / 4;
        for quad in 0..quads {
            let mut a_vals = Sequence::<E>::new();
            let mut b_vals = Sequence::<E>::new();
            if comptime![wide_a] {
                // One load gives a row's four steps.
                let mut rows = Sequence::<Vector<E, NA>>::new();
                #[unroll]
                for q in 0..loads {
                    rows.push(a[*a_at.index(q) + quad]);
                }
                #[unroll]
                for u in 0..4usize {
                    let mut loaded = Sequence::<E>::new();
                    #[unroll]
                    for q in 0..loads {
                        loaded.push(rows.index(q).extract(u));
                    }
                    share_rows::<E>(&loaded, &mut a_vals, tm, lanes);
                }
            } else {
                #[unroll]
                for u in 0..4 {
                    a_step_values::<E, NA>(a, &a_at, (quad * 4 + u) * a_k, &mut a_vals, tm, lanes);
                }
            }
            #[unroll]
            for u in 0..4 {
                b_step_values::<E, NB>(b, &b_at, (quad * 4 + u) * b_step, &mut b_vals, tn, wide_b);
            }
            #[unroll]
            for i in 0..tm {
                #[unroll]
                for j in 0..tn {
                    let at = comptime![i * tn + j];
                    acc[at] = acc[at]
                        + *a_vals.index(i) * *b_vals.index(j)
                        + *a_vals.index(comptime![tm + i]) * *b_vals.index(comptime![tn + j])
                        + *a_vals.index(comptime![2 * tm + i]) * *b_vals.index(comptime![2 * tn + j])
                        + *a_vals.index(comptime![3 * tm + i]) * *b_vals.index(comptime![3 * tn + j]);
                }
            }
        }
        if comptime![!wide_a] {
            for kk in quads * 4..depth {
                let mut a_vals = Sequence::<E>::new();
                let mut b_vals = Sequence::<E>::new();
                a_step_values::<E, NA>(a, &a_at, kk * a_k, &mut a_vals, tm, lanes);
                b_step_values::<E, NB>(b, &b_at, kk * b_step, &mut b_vals, tn, wide_b);
                #[unroll]
                for i in 0..tm {
                    #[unroll]
                    for j in 0..tn {
                        acc[i * tn + j] += *a_vals.index(i) * *b_vals.index(j);
                    }
                }
            }
        }
        // A `Linear`'s bias, added as burn's `x + bias` adds it.
        let mut bias_vals = Sequence::<E>::new();
        if comptime![has_bias] {
            #[unroll]
            for j in 0..tn {
                let col = select(col0 + j < n, col0 + j, n - 1);
                bias_vals.push(bias[col * bias.stride(0)]);
            }
        }
        let (c_row, c_col) = (c.stride(rank - 2), c.stride(rank - 1));
        #[unroll]
        for i in 0..tm {
            #[unroll]
            for j in 0..tn {
                let mut value = acc[i * tn + j];
                if comptime![has_bias] {
                    value += *bias_vals.index(j);
                }
                if inside && row0 + i < m && col0 + j < n {
                    c[off_c + (row0 + i) * c_row + (col0 + j) * c_col] = value;
                }
            }
        }
    }

    /// One step of the depth of a narrow `a` (vectors of one): the block's `tm` values, loaded
    /// `tm / lanes` per lane and shared across the plane, appended to `a_vals`.
    #[cube]
    fn a_step_values<E: Float, NA: Size>(
        a: &Tensor<Vector<E, NA>>,
        a_at: &Sequence<usize>,
        step: usize,
        a_vals: &mut Sequence<E>,
        #[comptime] tm: usize,
        #[comptime] lanes: usize,
    ) {
        let mut loaded = Sequence::<E>::new();
        #[unroll]
        for q in 0..a_at.len() {
            loaded.push(a[*a_at.index(q) + step].extract(0usize));
        }
        share_rows::<E>(&loaded, a_vals, tm, lanes);
    }

    /// The block's `tm` row values of one step from this lane's `tm / lanes`: a plane broadcast
    /// hands each lane's to the others (or, with one lane, they are all its own).
    #[cube]
    fn share_rows<E: Float>(
        loaded: &Sequence<E>,
        a_vals: &mut Sequence<E>,
        #[comptime] tm: usize,
        #[comptime] lanes: usize,
    ) {
        #[unroll]
        for i in 0..tm {
            if comptime![lanes == 1] {
                a_vals.push(*loaded.index(i));
            } else {
                a_vals.push(plane_broadcast(*loaded.index(comptime![i / lanes]), comptime![(i % lanes) as u32]));
            }
        }
    }

    /// One step of the depth: the block's `tn` values of `b`, from `tn / 4` vectors where `b` is
    /// wide, appended to `b_vals`.
    #[cube]
    fn b_step_values<E: Float, NB: Size>(
        b: &Tensor<Vector<E, NB>>,
        b_at: &Sequence<usize>,
        step: usize,
        b_vals: &mut Sequence<E>,
        #[comptime] tn: usize,
        #[comptime] wide_b: bool,
    ) {
        if comptime![wide_b] {
            #[unroll]
            for j in 0..tn / 4 {
                let columns = b[*b_at.index(j) + step];
                #[unroll]
                for r in 0..4usize {
                    b_vals.push(columns.extract(r));
                }
            }
        } else {
            #[unroll]
            for j in 0..tn {
                b_vals.push(b[*b_at.index(j) + step].extract(0usize));
            }
        }
    }

    /// `a · b` of two f32 tensors of a cube device by [`register_block_kernel`], plus `bias` (one
    /// value per column, `[n]`; in the kernel, which saves a pass over the output and on the page a
    /// dispatch), `tm` × `tn` outputs per unit, the `a` values shared across planes of `lanes` units
    /// (1: not shared; more only where the device's planes are exactly that wide); `wide[0]`,
    /// `wide[1]`: `a`, `b` read four values a load where their layout allows it (see [`width`];
    /// the same values, fewer loads for SwiftShader; which kernel variant runs then depends on the
    /// shapes, so a caller whose shapes vary in that respect keeps it off); `None` where their
    /// batch dimensions differ (broadcasting is burn's to do) or the bias is not an f32 `[n]`.
    #[allow(clippy::too_many_arguments)]
    pub fn register_block_matmul(
        a: &CubeTensor,
        b: &CubeTensor,
        bias: Option<&CubeTensor>,
        tm: usize,
        tn: usize,
        lanes: usize,
        wide: [bool; 2],
    ) -> Option<CubeTensor> {
        let (sa, sb) = (a.meta.shape(), b.meta.shape());
        let rank = sa.len();
        if a.dtype != DType::F32
            || b.dtype != DType::F32
            || rank < 2
            || sb.len() != rank
            || sa[..rank - 2] != sb[..rank - 2]
            || lanes == 0
        {
            return None;
        }
        let (m, n) = (sa[rank - 2], sb[rank - 1]);
        if m == 0 || n == 0 {
            return None;
        }
        if let Some(bias) = bias
            && (bias.dtype != DType::F32 || bias.meta.shape().as_slice() != [n])
        {
            return None;
        }
        let client = &a.client;
        let max_units = client.properties().hardware.max_units_per_cube as usize;
        if lanes > max_units {
            return None;
        }
        // `a` along its depth (a row's four steps a load), `b` along its columns.
        let wide_a = wide[0] && width(a) == 4;
        let wide_b = wide[1] && tn.is_multiple_of(4) && width(b) == 4;
        let c = init_matmul_output(a, b, DType::F32);
        let batches: usize = sa[..rank - 2].iter().product();
        let units = batches * m.div_ceil(tm) * n.div_ceil(tn * lanes) * lanes;
        // Planes must not straddle cubes: a cube of whole planes, up to eight.
        let cube_dim = if lanes == 1 {
            CubeDim::new(client, units)
        } else {
            CubeDim::new_2d(lanes as u32, (max_units / lanes).min(8) as u32)
        };
        let cube_count = calculate_cube_count_elemwise(client, units, cube_dim);
        // Safety: every index is clamped into its tensor (rows, columns and batches past the edge
        // read the last one) and stores are guarded.
        unsafe {
            register_block_kernel::launch_unchecked(
                client,
                cube_count,
                cube_dim,
                if wide_a { 4 } else { 1 },
                if wide_b { 4 } else { 1 },
                a.clone().into_tensor_arg(),
                b.clone().into_tensor_arg(),
                // Without a bias the kernel never reads this binding.
                bias.unwrap_or(a).clone().into_tensor_arg(),
                c.clone().into_tensor_arg(),
                rank,
                bias.is_some(),
                tm,
                tn,
                lanes,
                wide_a,
                wide_b,
                ElemType::Float(FloatKind::F32),
            );
        }
        Some(c)
    }

    /// 4 where `t` can be read as vectors of four along its last dimension (stride 1, that
    /// extent, every other stride and the buffer offset multiples of four values), else 1.
    pub(super) fn width(t: &CubeTensor) -> usize {
        let (shape, strides) = (t.meta.shape(), t.meta.strides());
        let last = shape.len() - 1;
        let fits = t.handle.offset_start.unwrap_or(0).is_multiple_of(16)
            && strides[last] == 1
            && shape[last].is_multiple_of(4)
            && (0..last).all(|d| strides[d].is_multiple_of(4));
        if fits { 4 } else { 1 }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
pub(super) mod tests {
    use super::*;
    use burn::module::Module;
    use burn::nn::LinearConfig;
    use burn::tensor::module::attention as burn_attention;
    use burn::tensor::ops::AttentionModuleOptions;
    use burn::tensor::{Device, Distribution, TensorData};

    /// The wgpu device (lavapipe without a GPU), initialised once: burn registers it once per
    /// process and these tests run side by side.
    pub(in crate::model) fn wgpu() -> Device {
        static DEVICE: std::sync::OnceLock<Device> = std::sync::OnceLock::new();
        DEVICE
            .get_or_init(|| Device::wgpu_options().init().expect("a wgpu adapter (mesa-vulkan-drivers on Debian)"))
            .clone()
    }

    pub(in crate::model) fn max_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
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
        let device = wgpu();
        let layer = LinearConfig::new(48, 83).init(&device);
        let x: Tensor<3> = Tensor::random([3, 7, 48], Distribution::Normal(0.0, 1.0), &device);
        assert!(linear(&layer, &x).is_none(), "off by default");
        use_register_blocks(true);
        let ours = linear(&layer, &x).expect("the kernel takes the wgpu device's f32 tensors");
        assert_eq!(ours.dims(), [3, 7, 83]);
        assert!(max_diff(ours, layer.forward(x.clone())) <= 1e-5);
        // 45 rows: blocks of 16 rows, the last one ragged.
        let tall: Tensor<3> = Tensor::random([5, 9, 48], Distribution::Normal(0.0, 1.0), &device);
        assert!(max_diff(linear(&layer, &tall).expect("on"), layer.forward(tall.clone())) <= 1e-5);
        let no_bias = LinearConfig::new(48, 83).with_bias(false).init(&device);
        assert!(max_diff(linear(&no_bias, &tall).expect("on"), no_bias.forward(tall)) <= 1e-5);
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

    /// Rows' values shared across planes of the device's width (lavapipe: 8 lanes), on ragged
    /// shapes and a depth that is no multiple of the kernel's four steps: burn's values.
    #[test]
    fn register_blocks_shared_across_planes_match_burn_on_wgpu() {
        let device = wgpu();
        let lanes = fixed_plane_width(&device).expect("lavapipe states one subgroup width");
        assert!(lanes > 1);
        for (m, n) in [(21, 83), (45, 300)] {
            let a: Tensor<3> = Tensor::random([3, m, 50], Distribution::Normal(0.0, 1.0), &device);
            let b: Tensor<3> = Tensor::random([3, 50, n], Distribution::Normal(0.0, 1.0), &device);
            let burns = a.clone().matmul(b.clone());
            let (pa, pb) = (a.try_into_primitive::<Cube>().unwrap(), b.try_into_primitive::<Cube>().unwrap());
            for (tm, tn) in [(4, 8), (8, 8), (16, 4)] {
                let ours = register_block_matmul(&pa, &pb, None, tm, tn, lanes, [true; 2]).expect("equal batches");
                assert!(max_diff(Tensor::from_primitive::<Cube>(ours), burns.clone()) <= 1e-5, "{tm}x{tn}, {m} x {n}");
            }
        }
        // Through `Linear`, wide enough for the planes to be used.
        let layer = LinearConfig::new(48, 300).init(&device);
        let x: Tensor<3> = Tensor::random([2, 19, 48], Distribution::Normal(0.0, 1.0), &device);
        use_register_blocks(true);
        use_plane_lanes(lanes);
        let ours = linear(&layer, &x).expect("on");
        use_plane_lanes(1);
        use_register_blocks(false);
        assert!(max_diff(ours, layer.forward(x)) <= 1e-5);
    }

    /// Operands read four values a load where their layouts allow (`a` along its depth, `b`
    /// along its columns) give the very values of one a load, which give burn's: contiguous and
    /// ragged shapes, a transposed operand, a depth and widths that are no multiple of four,
    /// views at an offset, and attention's views (heads split from the rows).
    #[test]
    fn wide_loads_give_the_same_values_on_wgpu() {
        let device = wgpu();
        let lanes = fixed_plane_width(&device).expect("lavapipe states one subgroup width");
        let prim = |t: Tensor<3>| t.try_into_primitive::<Cube>().unwrap();
        let random = |shape: [usize; 3]| Tensor::<3>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        // (a, b, the widths `a` and `b` may be read in)
        let cases: Vec<(Tensor<3>, Tensor<3>, usize, usize)> = vec![
            (random([2, 45, 48]), random([2, 48, 300]), 4, 4),
            (random([2, 21, 48]), random([2, 48, 84]), 4, 4),
            (random([2, 21, 50]), random([2, 50, 84]), 1, 4),
            (random([2, 21, 48]), random([2, 48, 83]), 4, 1),
            (random([2, 21, 48]), random([2, 300, 48]).swap_dims(1, 2), 4, 1),
            (random([2, 48, 21]).swap_dims(1, 2), random([2, 48, 64]), 1, 4),
            // A view at an offset (burn keeps a slice as a view only at an aligned offset).
            (random([3, 16, 64]).slice([1..3, 0..16, 0..64]), random([3, 64, 40]).slice([1..3, 0..64, 0..40]), 4, 4),
        ];
        for (i, (a, b, want_a, want_b)) in cases.into_iter().enumerate() {
            let burns = a.clone().matmul(b.clone());
            let (pa, pb) = (prim(a), prim(b));
            assert_eq!((register_block::width(&pa), register_block::width(&pb)), (want_a, want_b), "case {i}");
            if i == 6 {
                assert!(pa.handle.offset_start.is_some_and(|o| o > 0), "a view, not a copy");
            }
            for (tm, tn, lanes) in [(16, 8, lanes), (4, 8, 1), (8, 4, 1)] {
                let narrow = register_block_matmul(&pa, &pb, None, tm, tn, lanes, [false; 2]).expect("equal batches");
                let wide = register_block_matmul(&pa, &pb, None, tm, tn, lanes, [true; 2]).expect("equal batches");
                let (narrow, wide) =
                    (Tensor::<3>::from_primitive::<Cube>(narrow), Tensor::<3>::from_primitive::<Cube>(wide));
                assert_eq!(max_diff(wide, narrow.clone()), 0.0, "case {i}, {tm}x{tn}, {lanes} lanes");
                assert!(max_diff(narrow, burns.clone()) <= 1e-5, "case {i}");
            }
        }
        // Attention as the models call it: heads split from `[b, s, h]` rows.
        let [b, s, heads, dh] = [2, 20, 3, 8];
        let split = |t: Tensor<3>| t.reshape([b, s, heads, dh]).swap_dims(1, 2);
        let (q, k, v) =
            (split(random([b, s, heads * dh])), split(random([b, s, heads * dh])), split(random([b, s, heads * dh])));
        let mask = Tensor::<4, Bool>::from_data(TensorData::new(vec![false; b * s], [b, 1, 1, s]), &device)
            .expand([b, heads, s, s]);
        use_register_blocks(true);
        let ours = attention(&q, &k, &v, &mask, None).expect("on");
        use_register_blocks(false);
        let burns = burn_attention(q, k, v, Some(mask), None, AttentionModuleOptions::default());
        assert!(max_diff(ours, burns) <= 1e-5);
    }
}
