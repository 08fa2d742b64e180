//! flex's f32 matrix product, and `Linear` for inference on flex: burn's computation, bit for
//! bit, without its output's two allocations. Training's products ([`super::tracked`]) use
//! [`matmul`] too.
//!
//! burn's `linear` (`burn-backend`, `ops/modules/linear.rs`) runs flex's `matmul` and adds the
//! bias in place. flex makes each product's output with `FlexTensor::empty`: a zeroed `Vec<u8>`
//! that `Bytes::from_bytes_vec` then copies into a 16-byte-aligned allocation, because a byte
//! vector's declared alignment is 1. The zeroing and the copy were 8 % of an encoding's time
//! (BENCHMARKS.md, "Inference `Linear` without the double allocation"). Here the same `gemm` calls
//! (flex's `matmul_2d_strided` / `matmul_batched_gemm`: the same sizes, strides, scalars and
//! threads, after burn's own choice between one folded product and one per batch) write into a
//! `Vec<f32>` that the tensor takes as it is, and the bias is added as flex adds it: the same bits.

use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Shape, TensorData};
use burn_std::{MatmulTransformAction, MatmulTransformAnalysis, MatmulTransformPolicy};

/// flex's thresholds (`ops/matmul.rs`): products of at least this many multiply-adds are split
/// over the threads by `gemm`; batches of small products over the batch.
const PARALLEL_THRESHOLD: usize = 192 * 192 * 192;
const BATCH_PARALLEL_THRESHOLD: usize = 128 * 128 * 128;

/// `x · weight + bias` for `x` of shape `[.., m, k]` (contiguous), `weight` `[k, n]` (any strides)
/// and `bias` `[n]` (contiguous). `None` for another float type, rank or layout, or a size of
/// zero: the caller then uses burn's.
pub fn linear(x: &FlexTensor, weight: &FlexTensor, bias: Option<&FlexTensor>) -> Option<FlexTensor> {
    let f32s = x.dtype() == DType::F32 && weight.dtype() == DType::F32 && bias.is_none_or(|b| b.dtype() == DType::F32);
    let (x_shape, w_shape) = (x.layout().shape(), weight.layout().shape());
    let rank = x_shape.num_dims();
    if !f32s || rank < 2 || w_shape.num_dims() != 2 || !x.is_contiguous() {
        return None;
    }
    let (m, k, n) = (x_shape[rank - 2], x_shape[rank - 1], w_shape[1]);
    let batches: usize = x_shape[..rank - 2].iter().product();
    if w_shape[0] != k || m == 0 || k == 0 || n == 0 || batches == 0 {
        return None;
    }
    if let Some(b) = bias
        && (b.layout().shape().num_dims() != 1 || b.layout().shape()[0] != n || !b.is_contiguous())
    {
        return None;
    }
    // burn's choice (`linear`): fold the batches into the rows, or one product per batch against
    // the broadcast weight.
    let folded = match MatmulTransformPolicy::default().action(&MatmulTransformAnalysis::from_shapes(x_shape, w_shape))
    {
        MatmulTransformAction::MergeBatches { rows } => Some(rows),
        MatmulTransformAction::Keep => None,
    };
    // Per batch, burn reshapes the weight to `[1, .., 1, k, n]`, which flex makes contiguous
    // first if it is strided (a transposed view): the product then reads those strides.
    let weight = match folded {
        None if rank > 2 => {
            let mut dims = vec![1; rank - 2];
            dims.extend([k, n]);
            weight.reshape(Shape::from(dims))
        }
        _ => weight.clone(),
    };
    let (mut out, _) = match folded {
        Some(rows) => product_values(&x.reshape(Shape::from(vec![rows, k])), &weight)?,
        None => product_values(x, &weight)?,
    };
    if let Some(bias) = bias {
        let bias = &bias.storage::<f32>()[bias.layout().start_offset()..][..n];
        // flex's `add` of the `[1, n]` bias, in place: one rounding per value, as here.
        for row in out.chunks_exact_mut(n) {
            for (o, b) in row.iter_mut().zip(bias) {
                *o += b;
            }
        }
    }
    let mut dims = x_shape.to_vec();
    dims[rank - 1] = n;
    Some(FlexTensor::from_data(TensorData::new(out, Shape::from(dims))))
}

/// flex's `matmul` of two f32 tensors, `[.., m, k] · [.., k, n]` with the batch dimensions
/// broadcast and any strides, into a tensor that owns its `Vec<f32>`: the same `gemm` calls as
/// flex's `matmul_2d_strided` / `matmul_batched_gemm`, so the same bits. `None` for another
/// float type, a rank below 2, sizes that do not match or a size of zero: the caller then uses
/// flex's.
pub fn matmul(lhs: &FlexTensor, rhs: &FlexTensor) -> Option<FlexTensor> {
    let (values, dims) = product_values(lhs, rhs)?;
    Some(FlexTensor::from_data(TensorData::new(values, Shape::from(dims))))
}

/// [`matmul`]'s values and shape.
fn product_values(lhs: &FlexTensor, rhs: &FlexTensor) -> Option<(Vec<f32>, Vec<usize>)> {
    let plan = Products::new(lhs, rhs)?;
    let size = plan.m * plan.n;
    let mut out: Vec<f32> = Vec::with_capacity(plan.batches * size);
    let dst = out.as_mut_ptr() as usize;
    // SAFETY (each call): `dst` has room for `batches × m × n` values, product `b` writes its own.
    let one = |b: usize, parallelism| unsafe { plan.product(b, (dst as *mut f32).wrapping_add(b * size), parallelism) };
    match plan.threads() {
        Threads::EachProduct => (0..plan.batches).for_each(|b| one(b, gemm::Parallelism::Rayon(0))),
        Threads::Batches => {
            use rayon::prelude::*;
            (0..plan.batches).into_par_iter().for_each(|b| one(b, gemm::Parallelism::None));
        }
        Threads::None => (0..plan.batches).for_each(|b| one(b, gemm::Parallelism::None)),
    }
    // SAFETY: the products above wrote every one of the `batches × m × n` values.
    unsafe { out.set_len(plan.batches * size) };
    let mut dims = plan.batch_dims.clone();
    dims.extend([plan.m, plan.n]);
    Some((out, dims))
}

/// `Σ_b lhs_b · rhs_b` over the batch of `lhs` `[B, m, k]` and `rhs` `[B, k, n]` (B ≥ 2, any
/// strides), shaped `[1, m, n]`: flex's `matmul` followed by flex's `sum_dim(0)` (a zeroed
/// accumulator to which each product is added in batch order), the same bits without the
/// `[B, m, n]` products held at once: each is added as soon as it and those before it are made.
/// This is a `Linear`'s weight gradient under autodiff (burn-autodiff's `Matmul` backward for a
/// weight broadcast over the batch). `None` for other shapes.
pub fn batch_summed_matmul(lhs: &FlexTensor, rhs: &FlexTensor) -> Option<FlexTensor> {
    let (l_shape, r_shape) = (lhs.layout().shape(), rhs.layout().shape());
    if l_shape.num_dims() != 3 || r_shape.num_dims() != 3 || l_shape[0] != r_shape[0] || l_shape[0] < 2 {
        return None;
    }
    let plan = Products::new(lhs, rhs)?;
    let size = plan.m * plan.n;
    let mut sum = vec![0.0f32; size];
    let add = |sum: &mut [f32], product: &[f32]| sum.iter_mut().zip(product).for_each(|(s, p)| *s += p);
    // Products made `group` at a time, with flex's thread choice for each, then added in order.
    let (group, parallelism) = match plan.threads() {
        Threads::Batches => (rayon::current_num_threads().max(1), gemm::Parallelism::None),
        Threads::EachProduct => (1, gemm::Parallelism::Rayon(0)),
        Threads::None => (1, gemm::Parallelism::None),
    };
    let mut products = vec![0.0f32; group.min(plan.batches) * size];
    for first in (0..plan.batches).step_by(group) {
        let count = group.min(plan.batches - first);
        let dst = products.as_mut_ptr() as usize;
        // SAFETY (each call): `products` has room for `count × m × n` values, each its own.
        let one = |i: usize| unsafe {
            plan.product(first + i, (dst as *mut f32).wrapping_add(i * size), parallelism);
        };
        if count > 1 {
            use rayon::prelude::*;
            (0..count).into_par_iter().for_each(one);
        } else {
            one(0);
        }
        products[..count * size].chunks_exact(size).for_each(|p| add(&mut sum, p));
    }
    Some(FlexTensor::from_data(TensorData::new(sum, Shape::from(vec![1, plan.m, plan.n]))))
}

/// How flex spreads a batch of products over the threads (`matmul_batched_gemm`).
enum Threads {
    /// One product after the other, each split over the threads by `gemm`.
    EachProduct,
    /// The products side by side, one thread each.
    Batches,
    /// One thread.
    None,
}

/// A product of two tensors as flex's `matmul` reads them: sizes, the broadcast batch, where
/// each batch's matrices start and their strides.
struct Products {
    m: usize,
    n: usize,
    k: usize,
    batch_dims: Vec<usize>,
    batches: usize,
    two_dimensional: bool,
    /// Per operand: the first value's address, the batch dimensions' strides, and the matrix's
    /// row and column strides.
    lhs: (usize, Vec<isize>, isize, isize),
    rhs: (usize, Vec<isize>, isize, isize),
}

impl Products {
    /// `None` for another float type, a rank below 2, sizes that do not match, batch dimensions
    /// that do not broadcast, or a size of zero.
    fn new(lhs: &FlexTensor, rhs: &FlexTensor) -> Option<Self> {
        let (l_shape, r_shape) = (lhs.layout().shape(), rhs.layout().shape());
        let (l_rank, r_rank) = (l_shape.num_dims(), r_shape.num_dims());
        if lhs.dtype() != DType::F32 || rhs.dtype() != DType::F32 || l_rank < 2 || r_rank < 2 {
            return None;
        }
        let (m, k, n) = (l_shape[l_rank - 2], l_shape[l_rank - 1], r_shape[r_rank - 1]);
        if r_shape[r_rank - 2] != k || m == 0 || k == 0 || n == 0 {
            return None;
        }
        // flex's `broadcast_batch_dims` and `broadcast_batch_elem_strides`: the batch dimensions
        // padded with ones on the left, a dimension of one read with stride 0.
        let (l_batch, r_batch) = (&l_shape[..l_rank - 2], &r_shape[..r_rank - 2]);
        let len = l_batch.len().max(r_batch.len());
        let padded = |batch: &[usize], i: usize| if i < len - batch.len() { 1 } else { batch[i - (len - batch.len())] };
        let mut batch_dims = Vec::with_capacity(len + 2);
        for i in 0..len {
            let (a, b) = (padded(l_batch, i), padded(r_batch, i));
            if a != b && a != 1 && b != 1 {
                return None;
            }
            batch_dims.push(a.max(b));
        }
        let batches: usize = batch_dims.iter().product();
        if batches == 0 {
            return None;
        }
        let operand = |t: &FlexTensor, batch: &[usize]| {
            let strides = t.layout().strides();
            let rank = strides.len();
            let batch_strides = (0..len)
                .map(|i| match (i + batch.len()).checked_sub(len) {
                    Some(j) if batch[j] > 1 => strides[j],
                    _ => 0,
                })
                .collect();
            let base = t.storage::<f32>().as_ptr().wrapping_add(t.layout().start_offset()) as usize;
            (base, batch_strides, strides[rank - 2], strides[rank - 1])
        };
        Some(Self {
            m,
            n,
            k,
            batches,
            two_dimensional: l_rank == 2 && r_rank == 2,
            lhs: operand(lhs, l_batch),
            rhs: operand(rhs, r_batch),
            batch_dims,
        })
    }

    /// flex's choice: `matmul_2d_strided` splits a large product over the threads;
    /// `matmul_batched_gemm` does too unless a batch of at least four is large enough to spread.
    fn threads(&self) -> Threads {
        let per_matrix = self.m.saturating_mul(self.n).saturating_mul(self.k);
        let total = self.batches.saturating_mul(per_matrix);
        let prefer_batches = !self.two_dimensional && self.batches >= 4 && total >= BATCH_PARALLEL_THRESHOLD;
        if per_matrix >= PARALLEL_THRESHOLD && !prefer_batches {
            Threads::EachProduct
        } else if !self.two_dimensional && total >= BATCH_PARALLEL_THRESHOLD && self.batches > 1 {
            Threads::Batches
        } else {
            Threads::None
        }
    }

    /// Batch `b`'s product into `dst` (`m × n`, rows contiguous).
    ///
    /// # Safety
    /// `dst` must have room for `m × n` values that nothing else reads or writes meanwhile.
    unsafe fn product(&self, b: usize, dst: *mut f32, parallelism: gemm::Parallelism) {
        // flex's `batch_elem_offset`: a flat batch index to an element offset.
        let offset = |strides: &[isize]| {
            let (mut offset, mut rest) = (0isize, b);
            for i in (0..self.batch_dims.len()).rev() {
                offset += (rest % self.batch_dims[i]) as isize * strides[i];
                rest /= self.batch_dims[i];
            }
            offset
        };
        let (l_base, l_batch, l_rs, l_cs) = &self.lhs;
        let (r_base, r_batch, r_rs, r_cs) = &self.rhs;
        let l = (*l_base as *const f32).wrapping_offset(offset(l_batch));
        let r = (*r_base as *const f32).wrapping_offset(offset(r_batch));
        // SAFETY: the pointers and strides are the tensors' own layouts (flex reads them the same
        // way); `dst` is the caller's guarantee.
        unsafe {
            product(
                [self.m, self.n, self.k],
                (dst, 1, self.n as isize),
                (l, *l_cs, *l_rs),
                (r, *r_cs, *r_rs),
                parallelism,
            )
        }
    }
}

/// `dst = lhs · rhs` for an `m × k` and a `k × n` matrix, each given as (pointer, column stride,
/// row stride): the `gemm` call burn-flex makes for its products (`ops/matmul.rs`, `gemm_call`;
/// `ops/attention.rs`, `block_gemm`: alpha 0, so `dst` is written and never read, beta 1, nothing
/// conjugated), so that ours round as flex's.
///
/// # Safety
/// The pointers and strides must address valid elements for the given sizes.
pub(super) unsafe fn product(
    [m, n, k]: [usize; 3],
    dst: (*mut f32, isize, isize),
    lhs: (*const f32, isize, isize),
    rhs: (*const f32, isize, isize),
    parallelism: gemm::Parallelism,
) {
    // SAFETY: the caller's guarantee.
    unsafe {
        gemm::gemm(
            m, n, k, dst.0, dst.1, dst.2, false, lhs.0, lhs.1, lhs.2, rhs.0, rhs.1, rhs.2, 0.0f32, 1.0f32, false,
            false, false, parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::tensor::module::linear as burn_linear;
    use burn::tensor::{Device, Tensor, TensorData};

    fn values(n: usize, salt: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 7919 + salt * 104729) % 2003) as f32 / 1001.0 - 1.0).collect()
    }

    fn bits<const D: usize>(t: Tensor<D>) -> Vec<u32> {
        t.into_data().try_into_vec::<f32>().unwrap().into_iter().map(f32::to_bits).collect()
    }

    fn ours<const D: usize>(x: &Tensor<D>, w: &Tensor<2>, b: Option<&Tensor<1>>) -> Option<Tensor<D>> {
        let flex = |t: Tensor<D>| t.try_into_primitive::<Flex>().unwrap();
        let bias = b.map(|b| b.clone().try_into_primitive::<Flex>().unwrap());
        let w = w.clone().try_into_primitive::<Flex>().unwrap();
        super::linear(&flex(x.clone()), &w, bias.as_ref()).map(Tensor::from_primitive::<Flex>)
    }

    /// Every path of flex's products as burn's `linear` reaches them — batches folded into the
    /// rows, one product per batch in turn, batches spread over the threads, one product split by
    /// `gemm` over the threads, a single matrix — with and without bias, and a weight that is a
    /// transposed view (read through its strides, or made contiguous where flex's reshape does
    /// so): burn's bits each time.
    #[test]
    fn gives_burns_linear_on_flex_bit_for_bit() {
        let device = Device::flex();
        let shapes: [(&[usize], usize); 6] = [
            (&[3, 19, 24], 40),   // rows 19: folded into one [57, 24] product
            (&[6, 64, 128], 64),  // rows a multiple of 32: a product per batch, batches in parallel
            (&[2, 96, 384], 256), // a product per batch, each split over the threads
            (&[2, 32, 16], 8),    // small: a product per batch, one thread
            (&[50, 200], 300),    // one matrix
            (&[200, 384], 384),   // one matrix, split over the threads
        ];
        for (i, (x_dims, n)) in shapes.into_iter().enumerate() {
            let k = *x_dims.last().unwrap();
            let x_len: usize = x_dims.iter().product();
            let w = Tensor::<2>::from_data(TensorData::new(values(k * n, i), [k, n]), &device);
            let w_t = Tensor::<2>::from_data(TensorData::new(values(k * n, i + 7), [n, k]), &device).transpose();
            let b = Tensor::<1>::from_data(TensorData::new(values(n, i + 3), [n]), &device);
            for (v, (weight, bias)) in [(&w, Some(&b)), (&w_t, Some(&b)), (&w, None)].into_iter().enumerate() {
                let check = |got: Vec<u32>, want: Vec<u32>| {
                    let bad: Vec<_> = got
                        .iter()
                        .zip(&want)
                        .enumerate()
                        .filter(|(_, (a, b))| a != b)
                        .map(|(i, (a, b))| (i, f32::from_bits(*a), f32::from_bits(*b)))
                        .take(3)
                        .collect();
                    assert!(got == want, "shape {x_dims:?} · [{k}, {n}] variant {v}: {bad:?}")
                };
                if x_dims.len() == 3 {
                    let x = Tensor::<3>::from_data(TensorData::new(values(x_len, i + 1), x_dims.to_vec()), &device);
                    let want = bits(burn_linear(x.clone(), weight.clone(), bias.cloned()));
                    check(bits(ours(&x, weight, bias).expect("taken")), want);
                } else {
                    let x = Tensor::<2>::from_data(TensorData::new(values(x_len, i + 1), x_dims.to_vec()), &device);
                    let want = bits(burn_linear(x.clone(), weight.clone(), bias.cloned()));
                    check(bits(ours(&x, weight, bias).expect("taken")), want);
                }
            }
        }
    }

    /// A strided input goes back to burn; `apply_linear` then still gives burn's result.
    #[test]
    fn declines_a_strided_input() {
        let device = Device::flex();
        let x = Tensor::<3>::from_data(TensorData::new(values(5 * 7 * 12, 1), [5, 7, 12]), &device).swap_dims(0, 1);
        let w = Tensor::<2>::from_data(TensorData::new(values(12 * 9, 2), [12, 9]), &device);
        assert!(ours(&x, &w, None).is_none());
        let layer = burn::nn::Linear { weight: burn::module::Param::from_tensor(w.clone()), bias: None };
        assert_eq!(bits(crate::model::apply_linear(&layer, x.clone())), bits(burn_linear(x, w, None)));
    }
}
