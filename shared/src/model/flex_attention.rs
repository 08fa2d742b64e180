//! Attention for inference on flex: burn-flex's own computation, bit for bit, without its copies
//! and with softmax's `exp` vectorised.
//!
//! burn-flex's `attention` (`ops/attention.rs`, `attention_naive` for up to 512 × 512 scores) first
//! copies the query, key and value heads out of the projections' `[b, s, heads · d]` layout and
//! writes a `[b, heads, s, d]` context that the model copies back, and its softmax calls `expf` one
//! score at a time: together about a fifth of an encoding (BENCHMARKS.md, "Where the time goes").
//! Here the same two `gemm` calls per head read the heads through their strides and write the
//! context straight into `[b, s, heads, d]` order, and the softmax does flex's operations in flex's
//! order with the exponentials from [`super::flex_exact::exp`]: the same bits, so soft labels and
//! encodings do not change.

use burn::backend::flex::{FlexTensor, Layout};
use burn::tensor::{BoolStore, DType, Shape};

use super::flex_linear::product;

/// flex's threshold: above this many scores per head it runs its tiled (flash) attention instead,
/// which rounds differently; this one then declines.
const NAIVE_SCORE_BUDGET: usize = 256 * 1024;

/// `softmax(q kᵀ / √d + mask + bias) v` for `q`, `k`, `v` of shape `[b, heads, s, d]` (any
/// non-negative strides), `mask` (`[b or 1, heads or 1, s, s]`, true where a key is padding) and
/// `bias` (the same shapes, f32). The result has shape `[b, heads, s, d]` with its values laid out
/// as `[b, s, heads, d]`. `None` where flex would not run its naive attention (longer sequences,
/// another float type, another layout) or a size is zero: the caller then uses burn's.
pub fn attention(
    q: &FlexTensor,
    k: &FlexTensor,
    v: &FlexTensor,
    mask: Option<&FlexTensor>,
    bias: Option<&FlexTensor>,
) -> Option<FlexTensor> {
    let f32s = [q, k, v].iter().all(|t| t.dtype() == DType::F32) && bias.is_none_or(|b| b.dtype() == DType::F32);
    // One byte per value, as flex reads a mask.
    let mask_bytes = mask.is_none_or(|m| matches!(m.dtype(), DType::Bool(BoolStore::Native | BoolStore::U8)));
    let dims = |t: &FlexTensor| -> Option<[usize; 4]> {
        let s = t.layout().shape();
        (s.num_dims() == 4).then(|| [s[0], s[1], s[2], s[3]])
    };
    let (qd, kd, vd) = (dims(q)?, dims(k)?, dims(v)?);
    let [batch, heads, seq_q, head_dim] = qd;
    let seq_kv = kd[2];
    let shapes_agree = kd == [batch, heads, seq_kv, head_dim] && vd[..3] == [batch, heads, seq_kv];
    let positive = [q, k, v].iter().all(|t| t.layout().strides().iter().all(|&s| s >= 0));
    let empty = [batch, heads, seq_q, seq_kv, head_dim, vd[3]].contains(&0);
    if !f32s || !mask_bytes || !shapes_agree || !positive || seq_q * seq_kv > NAIVE_SCORE_BUDGET || empty {
        return None;
    }
    let broadcasts = |t: &FlexTensor| {
        dims(t).is_some_and(|d| {
            (d[0] == batch || d[0] == 1) && (d[1] == heads || d[1] == 1) && d[2] == seq_q && d[3] == seq_kv
        }) && t.layout().strides().iter().all(|&s| s >= 0)
    };
    if !mask.is_none_or(broadcasts) || !bias.is_none_or(broadcasts) {
        return None;
    }
    let val_dim = vd[3];

    let mut out = vec![0.0f32; batch * seq_q * heads * val_dim];
    let scale = (1.0 / (head_dim as f64).sqrt()) as f32;
    let (qs, ks, vs) = (view(q), view(k), view(v));
    let mask = mask.map(|m| (m.storage::<u8>(), Strides::of(m)));
    let bias = bias.map(|b| (b.storage::<f32>(), Strides::of(b)));

    // One batch row of the output is contiguous in `[b, s, heads, d]`: the rows go to the cores.
    let row = seq_q * heads * val_dim;
    let run = |b: usize, out_b: &mut [f32], (scores, exps, rows): &mut Scratch| {
        for h in 0..heads {
            let (q0, k0, v0) = (qs.1.at(b, h), ks.1.at(b, h), vs.1.at(b, h));
            // scores = q kᵀ, as flex's first gemm (one thread: the batch rows are spread instead)
            // SAFETY: the offsets and strides address elements of the tensors' own storage (their
            // layouts describe them), and `scores` holds seq_q × seq_kv values.
            unsafe {
                product(
                    [seq_q, seq_kv, head_dim],
                    (scores.as_mut_ptr(), 1, seq_kv as isize),
                    (qs.0.as_ptr().add(q0), qs.1.s[3], qs.1.s[2]),
                    (ks.0.as_ptr().add(k0), ks.1.s[2], ks.1.s[3]),
                    gemm::Parallelism::None,
                );
            }
            softmax_rows(
                scores,
                exps,
                rows,
                scale,
                seq_q,
                seq_kv,
                |qi, mask_row, bias_row| {
                    if let Some((m, st)) = mask {
                        gather(m, st, b, h, qi, mask_row);
                    }
                    if let Some((bd, st)) = bias {
                        gather(bd, st, b, h, qi, bias_row);
                    }
                },
                mask.is_some(),
                bias.is_some(),
            );
            // context = p v into [b, s, h, d], as flex's second gemm
            // SAFETY: as above; the destination is head h's columns of this batch row.
            unsafe {
                product(
                    [seq_q, val_dim, seq_kv],
                    (out_b.as_mut_ptr().add(h * val_dim), 1, (heads * val_dim) as isize),
                    (scores.as_ptr(), 1, seq_kv as isize),
                    (vs.0.as_ptr().add(v0), vs.1.s[3], vs.1.s[2]),
                    gemm::Parallelism::None,
                );
            }
        }
    };
    {
        use rayon::prelude::*;
        out.par_chunks_mut(row).enumerate().for_each_init(
            || (vec![0.0f32; seq_q * seq_kv], vec![0.0f32; seq_q * seq_kv], Rows::new(seq_kv)),
            |scratch, (b, out_b)| run(b, out_b, scratch),
        );
    }

    let shape = Shape::new([batch, heads, seq_q, val_dim]);
    let strides = vec![(seq_q * heads * val_dim) as isize, val_dim as isize, (heads * val_dim) as isize, 1];
    let contiguous = FlexTensor::from_data(burn::tensor::TensorData::new(out, [batch * seq_q * heads * val_dim]));
    Some(contiguous.with_layout(Layout::new(shape, strides, 0)))
}

/// A head's scores, their exponentials, and one row of mask and bias.
type Scratch = (Vec<f32>, Vec<f32>, Rows);

struct Rows {
    mask: Vec<u8>,
    bias: Vec<f32>,
}

impl Rows {
    fn new(seq_kv: usize) -> Self {
        Self { mask: vec![0; seq_kv], bias: vec![0.0; seq_kv] }
    }
}

/// Row `qi` of (b, h)'s mask or bias, read through its strides.
fn gather<T: Copy>(data: &[T], st: Strides, b: usize, h: usize, qi: usize, row: &mut [T]) {
    let start = st.at4(b, h, qi, 0);
    if st.s[3] == 1 {
        row.copy_from_slice(&data[start..start + row.len()]);
    } else {
        for (ki, r) in row.iter_mut().enumerate() {
            *r = data[start + ki * st.s[3] as usize];
        }
    }
}

/// flex's `naive_attention_head` softmax over a head's `seq_q` rows: per row scale, mask, bias
/// and the maximum, then `exp(s - max)` (vectorised, the whole head at once) summed in flex's
/// order, then the products with `1 / sum`; a row whose every key is masked becomes zeros. The
/// element-wise steps and the maximum run in vector lanes ([`crate::widest_simd!`]): the same
/// values.
#[allow(clippy::too_many_arguments)]
fn softmax_rows(
    scores: &mut [f32],
    exps: &mut [f32],
    rows: &mut Rows,
    scale: f32,
    seq_q: usize,
    seq_kv: usize,
    fill: impl Fn(usize, &mut [u8], &mut [f32]),
    masked: bool,
    biased: bool,
) {
    let mut empty = vec![false; seq_q];
    for (qi, row) in scores.chunks_exact_mut(seq_kv).enumerate() {
        fill(qi, &mut rows.mask, &mut rows.bias);
        let (mask, bias) = (&rows.mask[..], &rows.bias[..]);
        let row_max = crate::widest_simd!(
            scores_and_max(row: &mut [f32], mask: &[u8], bias: &[f32], scale: f32, masked: bool, biased: bool) -> f32
        );
        empty[qi] = row_max == f32::NEG_INFINITY;
        if !empty[qi] {
            crate::widest_simd!(subtract(row: &mut [f32], row_max: f32));
        }
    }
    super::flex_exact::exp(scores, exps);
    for ((row, e), empty) in scores.chunks_exact_mut(seq_kv).zip(exps.chunks_exact(seq_kv)).zip(empty) {
        if empty {
            row.fill(0.0);
            continue;
        }
        let mut sum = 0.0f32;
        for (s, &e) in row.iter_mut().zip(e) {
            *s = e;
            sum += e;
        }
        let inv_sum = 1.0 / sum;
        crate::widest_simd!(multiply(row: &mut [f32], inv_sum: f32));
    }
}

/// A row's scaled, masked, biased scores, and their maximum. The maximum is taken in 16 lanes:
/// the same value as flex's running maximum (a maximum does not depend on the order; of two
/// zeros it may keep the other sign, which `s - max` and its `exp` do not see).
#[inline(always)]
fn scores_and_max(row: &mut [f32], mask: &[u8], bias: &[f32], scale: f32, masked: bool, biased: bool) -> f32 {
    for (ki, s) in row.iter_mut().enumerate() {
        let mut val = *s * scale;
        if masked && mask[ki] != 0 {
            val = f32::NEG_INFINITY;
        }
        if biased {
            val += bias[ki];
        }
        *s = val;
    }
    let mut lanes = [f32::NEG_INFINITY; 16];
    let mut chunks = row.chunks_exact(16);
    for chunk in &mut chunks {
        for (m, &v) in lanes.iter_mut().zip(chunk) {
            if v > *m {
                *m = v;
            }
        }
    }
    let mut max = f32::NEG_INFINITY;
    for &v in lanes.iter().chain(chunks.remainder()) {
        if v > max {
            max = v;
        }
    }
    max
}

/// `s - max` for each score (inlined, for [`crate::widest_simd!`]).
#[inline(always)]
fn subtract(row: &mut [f32], max: f32) {
    for s in row.iter_mut() {
        *s -= max;
    }
}

/// `s · factor` for each score (inlined, for [`crate::widest_simd!`]).
#[inline(always)]
fn multiply(row: &mut [f32], factor: f32) {
    for s in row.iter_mut() {
        *s *= factor;
    }
}

/// A tensor's storage and strides, for addressing one (batch, head) block.
fn view(t: &FlexTensor) -> (&[f32], Strides) {
    (t.storage::<f32>(), Strides::of(t))
}

#[derive(Clone, Copy)]
struct Strides {
    s: [isize; 4],
    /// Size-1 leading dimensions broadcast: their index is ignored.
    broadcast: [bool; 2],
    offset: usize,
}

impl Strides {
    fn of(t: &FlexTensor) -> Self {
        let l = t.layout();
        let st = l.strides();
        let shape = l.shape();
        Self { s: [st[0], st[1], st[2], st[3]], broadcast: [shape[0] == 1, shape[1] == 1], offset: l.start_offset() }
    }

    /// The storage index of element (b, h, 0, 0).
    fn at(&self, b: usize, h: usize) -> usize {
        let b = if self.broadcast[0] { 0 } else { b };
        let h = if self.broadcast[1] { 0 } else { h };
        self.offset + (b as isize * self.s[0] + h as isize * self.s[1]) as usize
    }

    fn at4(&self, b: usize, h: usize, i: usize, j: usize) -> usize {
        self.at(b, h) + (i as isize * self.s[2] + j as isize * self.s[3]) as usize
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::tensor::module::attention as burn_attention;
    use burn::tensor::ops::AttentionModuleOptions;
    use burn::tensor::{Bool, Device, Tensor, TensorData};

    fn values(n: usize, salt: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|i| (((i * 7919 + salt * 104729) % 2003) as f32 / 1001.0 - 1.0) * scale).collect()
    }

    fn bits(t: Tensor<4>) -> Vec<u32> {
        t.into_data().try_into_vec::<f32>().unwrap().into_iter().map(f32::to_bits).collect()
    }

    /// As the encoders call it: heads split from `[b, s, heads · d]` projections (strided views),
    /// the padding mask expanded from `[b, 1, 1, s]`, MPNet's bias from `[1, heads, s, s]`; one
    /// sequence all padding (flex's zero rows). The same bits as burn's attention on flex.
    #[test]
    fn gives_flexs_attention_bit_for_bit() {
        let device = Device::flex();
        let (b, heads, s, d) = (3, 4, 19, 8);
        let project = |salt| {
            Tensor::<3>::from_data(TensorData::new(values(b * s * heads * d, salt, 4.0), [b, s, heads * d]), &device)
                .reshape([b, s, heads, d])
                .swap_dims(1, 2)
        };
        let (q, k, v) = (project(1), project(2), project(3));
        let padding: Vec<bool> = (0..b * s).map(|i| (i / s == 1 && i % s >= 13) || i / s == 2).collect();
        let mask = Tensor::<2, Bool>::from_data(TensorData::new(padding, [b, s]), &device)
            .reshape([b, 1, 1, s])
            .expand([b, heads, s, s]);
        let bias = Tensor::<4>::from_data(TensorData::new(values(heads * s * s, 4, 2.0), [1, heads, s, s]), &device)
            .expand([b, heads, s, s]);
        for bias in [None, Some(bias)] {
            let flex = |t: &Tensor<4>| t.clone().try_into_primitive::<Flex>().unwrap();
            let ours = super::attention(
                &flex(&q),
                &flex(&k),
                &flex(&v),
                Some(&mask.clone().try_into_primitive::<Flex>().unwrap()),
                bias.as_ref().map(flex).as_ref(),
            )
            .expect("flex's naive attention's case");
            let ours = Tensor::<4>::from_primitive::<Flex>(ours);
            let burns = burn_attention(
                q.clone(),
                k.clone(),
                v.clone(),
                Some(mask.clone()),
                bias.clone(),
                AttentionModuleOptions::default(),
            );
            assert_eq!(bits(ours.clone()), bits(burns), "bias: {}", bias.is_some());
            // The context comes back laid out as [b, s, heads, d]: merging the heads is free.
            let merged = ours.swap_dims(1, 2).reshape([b, s, heads * d]);
            assert!(merged.try_into_primitive::<Flex>().unwrap().is_contiguous());
        }
    }

    /// No sequence, no head: declined (burn's attention takes it), never a zero-sized chunk.
    #[test]
    fn declines_empty_inputs() {
        let device = Device::flex();
        let flex = |t: Tensor<4>| t.try_into_primitive::<Flex>().unwrap();
        for [b, heads, s, d] in [[2, 3, 0, 4], [0, 3, 5, 4], [2, 3, 5, 0]] {
            let t = || flex(Tensor::<4>::zeros([b, heads, s, d], &device));
            assert!(super::attention(&t(), &t(), &t(), None, None).is_none(), "{:?}", [b, heads, s, d]);
        }
    }
}
