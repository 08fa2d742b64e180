//! Operations of our own under autodiff on the flex device, for training: GELU, `exp`, the matrix
//! product, and attention and `Linear` written out so that they use them.
//!
//! burn-flex computes GELU and `exp` one value at a time with scalar libm calls, and makes each
//! product's output twice (a zeroed byte vector, then a copy into an aligned one); the operations
//! here give the same values and gradients bit for bit with the vectorised kernels of
//! [`super::flex_exact`] and the same `gemm` calls as flex ([`super::flex_linear::matmul`]), so a
//! training run, and the shipped teacher it rebuilds, do not change. Anything else (another
//! backend, gradient checkpointing, a float type other than f32) goes to burn's own operation.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, NodeGuard, Ops, OpsKind, binary, broadcast_shape, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::{
    Autodiff, BackendTensor, DispatchAutodiffContext, DispatchTensorKind, Flex, GradientCheckpointingStrategy,
};
use burn::nn::Linear;
use burn::tensor::activation::gelu as burn_gelu;
use burn::tensor::module::attention as burn_attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, DType, Shape, Tensor, TensorData};
use burn_std::{MatmulTransformAction, MatmulTransformAnalysis, MatmulTransformPolicy};

use super::{flex_exact, flex_linear};

/// How many times the GELU operation ran, so that a test can tell it from burn's.
#[cfg(test)]
pub static GELU_PASSES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Whether `x` is an f32 tensor tracked on flex without gradient checkpointing (the trainer's).
fn is_tracked_flex<const D: usize>(x: &Tensor<D>) -> bool {
    x.dtype() == DType::F32 && x.device().is_autodiff() && {
        let dispatch = x.clone().into_dispatch();
        dispatch.autodiff == DispatchAutodiffContext::Enabled(GradientCheckpointingStrategy::Disabled)
            && matches!(&dispatch.kind, DispatchTensorKind::Autodiff(inner)
                if matches!(**inner, DispatchTensorKind::Flex(BackendTensor::Autodiff(_))))
    }
}

/// The flex tensor and graph node of a tensor [`is_tracked_flex`] accepted.
fn primitive<const D: usize>(x: Tensor<D>) -> (FlexTensor, NodeGuard) {
    let (x, node, _) = parts(x);
    (x, node)
}

/// [`primitive`], and whether the tensor is tracked (needs a gradient).
fn parts<const D: usize>(x: Tensor<D>) -> (FlexTensor, NodeGuard, bool) {
    match x.try_into_primitive::<Autodiff<Flex>>() {
        Ok(tracked) => {
            let is_tracked = tracked.is_tracked();
            let (x, node) = tracked.into_parts();
            (x, node, is_tracked)
        }
        Err(error) => unreachable!("an autodiff flex tensor converts to its primitive: {error:?}"),
    }
}

/// GELU: ours on a tracked flex tensor, burn's otherwise.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !is_tracked_flex(&x) {
        return burn_gelu(x);
    }
    let (x, guard) = primitive(x);
    let x = contiguous(&x);
    let shape = x.layout().shape().clone();
    let (mut y, mut erf) = (vec![0.0f32; f32s(&x).len()], vec![0.0f32; f32s(&x).len()]);
    flex_exact::gelu_forward(f32s(&x), &mut y, &mut erf);
    let y = FlexTensor::from_data(TensorData::new(y, shape.clone()));
    let y = match GeluBackward.prepare::<NoCheckpointing>([guard]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((x, FlexTensor::from_data(TensorData::new(erf, shape))), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    #[cfg(test)]
    GELU_PASSES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Tensor::from_primitive::<Autodiff<Flex>>(y)
}

/// Keeps the input, which the gradient needs (burn's GELU keeps it too), and `erf(x / √2)` from
/// the forward pass, which burn-flex evaluates again in the backward pass (the same bits; one
/// more tensor of the activation's size held until then).
#[derive(Debug)]
struct GeluBackward;

impl Backward<Flex, 1> for GeluBackward {
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, erf) = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            zip(&x, &grad, |x, grad, out| flex_exact::gelu_backward(x, f32s(&erf), grad, out))
        });
    }
}

/// `exp`: ours on a tracked flex tensor, burn's otherwise.
pub fn exp<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !is_tracked_flex(&x) {
        return x.exp();
    }
    let (x, guard) = primitive(x);
    let y = map(&x, flex_exact::exp);
    let y = match ExpBackward.prepare::<NoCheckpointing>([guard]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(y.clone(), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Tensor::from_primitive::<Autodiff<Flex>>(y)
}

/// Keeps the output: the gradient is `grad · exp(x)`. burn's keeps the input and evaluates `exp`
/// again in the backward pass; the output is the same bits, and softmax keeps it alive anyway.
#[derive(Debug)]
struct ExpBackward;

impl Backward<Flex, 1> for ExpBackward {
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let y = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            zip(&y, &grad, |y, g, out| out.iter_mut().zip(y).zip(g).for_each(|((o, y), g)| *o = g * y))
        });
    }
}

/// Scaled dot-product attention, `q`, `k`, `v`: `[b, heads, s, d]`, `mask` true where a key is
/// padding, `bias` added to the scores. On a tracked flex tensor it is burn's own fallback
/// (`burn_backend::ops::attention_fallback`, what burn-autodiff runs) step by step with our `exp`;
/// otherwise burn's `attention`.
pub fn attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    mask: Option<Tensor<4, Bool>>,
    bias: Option<Tensor<4>>,
) -> Tensor<4> {
    if !is_tracked_flex(&q) {
        return burn_attention(q, k, v, mask, bias, AttentionModuleOptions::default());
    }
    let scale = 1.0 / (q.dims()[3] as f64).sqrt();
    let mut scores = matmul(q, k.transpose()).mul_scalar(scale);
    if let Some(mask) = mask {
        scores = scores.mask_fill(mask, f32::NEG_INFINITY);
    }
    if let Some(bias) = bias {
        scores = scores + bias;
    }
    // NaN-safe as burn's: a fully masked row gives zeros.
    let max = scores.clone().max_dim(3).clamp_min(f32::MIN);
    let numerator = exp(scores - max);
    let sum = numerator.clone().sum_dim(3).clamp_min(f32::MIN_POSITIVE);
    matmul(numerator / sum, v)
}

/// `x.matmul(y)`: ours on tracked flex tensors, burn's otherwise (and for the shapes where
/// burn's `matmul` swaps a dimension of one first).
pub fn matmul<const D: usize>(x: Tensor<D>, y: Tensor<D>) -> Tensor<D> {
    let swapped_by_burn = D >= 3 && x.dims()[D - 2] == 1 && y.dims()[D - 3] == 1;
    if swapped_by_burn || !is_tracked_flex(&x) || !is_tracked_flex(&y) {
        return x.matmul(y);
    }
    tracked_matmul(x, y)
}

/// burn-autodiff's `float_matmul` (its `Matmul` operation: each operand kept for the other's
/// gradient, the gradients `grad · yᵀ` and `xᵀ · grad` summed over broadcast dimensions) with
/// flex's products made by [`flex_linear::matmul`].
fn tracked_matmul<const D: usize>(x: Tensor<D>, y: Tensor<D>) -> Tensor<D> {
    let ((x, x_node, x_tracked), (y, y_node, y_tracked)) = (parts(x), parts(y));
    let shapes = (x.layout().shape().clone(), y.layout().shape().clone());
    let Some(out) = flex_linear::matmul(&x, &y) else {
        unreachable!("two tracked f32 tensors that burn's checks let through have a product")
    };
    let out = match MatmulBackward.prepare::<NoCheckpointing>([x_node, y_node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((y_tracked.then_some(x), x_tracked.then_some(y), shapes), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive::<Autodiff<Flex>>(out)
}

#[derive(Debug)]
struct MatmulBackward;

impl Backward<Flex, 2> for MatmulBackward {
    /// The left operand (kept if the right one needs a gradient), the right one (if the left one
    /// does), and both shapes.
    type State = (Option<FlexTensor>, Option<FlexTensor>, (Shape, Shape));

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, y, (x_shape, y_shape)) = ops.state;
        // flex's `float_transpose`: the last two dimensions swapped, a view.
        let transposed = |t: FlexTensor| {
            let rank = t.layout().num_dims();
            t.transpose(rank - 2, rank - 1)
        };
        let product = |a: &FlexTensor, b: &FlexTensor| match flex_linear::matmul(a, b) {
            Some(p) => p,
            None => unreachable!("a gradient's product has its forward product's sizes"),
        };
        binary::<Flex, _, _>(
            ops.parents,
            ops.node,
            grads,
            |grad| broadcast_shape::<Flex>(product(&grad, &transposed(y.expect("kept for x's gradient"))), &x_shape),
            |grad| {
                let x = transposed(x.expect("kept for y's gradient"));
                // A weight broadcast over the batch: its gradient's products summed as made.
                let summed = (y_shape.num_dims() == 3 && y_shape[0] == 1 && x_shape[0] > 1)
                    .then(|| flex_linear::batch_summed_matmul(&x, &grad))
                    .flatten();
                summed.unwrap_or_else(|| broadcast_shape::<Flex>(product(&x, &grad), &y_shape))
            },
        );
    }
}

/// `layer.forward(x)` on a tracked flex tensor: burn's `linear` as burn-autodiff runs it (burn's
/// dispatch backend decomposes it: one product of the folded rows, or one per batch against the
/// weight broadcast, then the bias added), with [`matmul`]'s products. `None` elsewhere.
pub fn linear<const D: usize>(layer: &Linear, x: &Tensor<D>) -> Option<Tensor<D>> {
    let weight = layer.weight.val();
    if D < 2 || !is_tracked_flex(x) || !is_tracked_flex(&weight) {
        return None;
    }
    let bias = layer.bias.as_ref().map(|b| b.val());
    if bias.as_ref().is_some_and(|b| !is_tracked_flex(b)) {
        return None;
    }
    let (dims, [k, n]) = (x.dims(), weight.dims());
    let x = x.clone();
    Some(
        match MatmulTransformPolicy::default()
            .action(&MatmulTransformAnalysis::from_shapes(&x.shape(), &weight.shape()))
        {
            MatmulTransformAction::MergeBatches { rows } => {
                let mut out = tracked_matmul(x.reshape([rows, k]), weight);
                if let Some(bias) = bias {
                    out = out + bias.reshape([1, n]);
                }
                let mut out_dims = dims;
                out_dims[D - 1] = n;
                out.reshape(out_dims)
            }
            MatmulTransformAction::Keep => {
                // burn's `unsqueeze_leading` leaves a weight of the input's rank as it is (no reshape
                // operation in the graph).
                let weight = if D > 2 {
                    weight.unsqueeze::<D>()
                } else {
                    match weight.try_into_primitive::<Autodiff<Flex>>() {
                        Ok(w) => Tensor::from_primitive::<Autodiff<Flex>>(w),
                        Err(error) => unreachable!("a tracked flex weight converts to its primitive: {error:?}"),
                    }
                };
                let out = tracked_matmul(x, weight);
                match bias {
                    Some(bias) => out + bias.unsqueeze::<D>(),
                    None => out,
                }
            }
        },
    )
}

/// `kernel` over a flex tensor's values, into a new contiguous tensor of its shape.
fn map(x: &FlexTensor, kernel: fn(&[f32], &mut [f32])) -> FlexTensor {
    let x = contiguous(x);
    let mut out = vec![0.0f32; f32s(&x).len()];
    kernel(f32s(&x), &mut out);
    FlexTensor::from_data(TensorData::new(out, x.layout().shape().clone()))
}

/// `kernel` over two flex tensors of one shape, into a new contiguous tensor of that shape.
fn zip(a: &FlexTensor, b: &FlexTensor, kernel: impl Fn(&[f32], &[f32], &mut [f32])) -> FlexTensor {
    let (a, b) = (contiguous(a), contiguous(b));
    assert_eq!(a.layout().shape(), b.layout().shape(), "a gradient has its operation's shape");
    let mut out = vec![0.0f32; f32s(&a).len()];
    kernel(f32s(&a), f32s(&b), &mut out);
    FlexTensor::from_data(TensorData::new(out, a.layout().shape().clone()))
}

fn contiguous(t: &FlexTensor) -> FlexTensor {
    if t.as_slice::<f32>().is_some() { t.clone() } else { t.to_contiguous() }
}

fn f32s(t: &FlexTensor) -> &[f32] {
    match t.as_slice::<f32>() {
        Some(values) => values,
        None => unreachable!("a contiguous f32 tensor has a slice"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn bits<const D: usize>(t: Tensor<D>) -> Vec<u32> {
        t.into_data().try_into_vec::<f32>().unwrap().into_iter().map(f32::to_bits).collect()
    }

    fn values(n: usize, salt: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|i| (((i * 7919 + salt * 104729) % 2003) as f32 / 1001.0 - 1.0) * scale).collect()
    }

    #[test]
    fn attention_gives_burns_values_and_gradients_bit_for_bit() {
        let device = Device::flex().autodiff();
        let shape = [2, 3, 7, 8];
        let n = shape.iter().product();
        // Padding in the second sequence, and one fully masked row (burn's NaN-safe case).
        let mask: Vec<bool> = (0..2 * 3 * 7 * 7)
            .map(|i| (i / 147 == 1 && i % 7 >= 5) || (i / 7) % 7 == 3 && i / 147 == 0 && i % 2 == 0)
            .collect();
        for with_bias in [false, true] {
            let run = |ours: bool| {
                let t =
                    |salt| Tensor::<4>::from_data(TensorData::new(values(n, salt, 3.0), shape), &device).require_grad();
                let (q, k, v) = (t(1), t(2), t(3));
                let mask = Tensor::<4, Bool>::from_data(TensorData::new(mask.clone(), [2, 3, 7, 7]), &device);
                let bias = with_bias.then(|| {
                    Tensor::<4>::from_data(TensorData::new(values(2 * 3 * 7 * 7, 4, 1.0), [2, 3, 7, 7]), &device)
                        .require_grad()
                });
                let out = if ours {
                    attention(q.clone(), k.clone(), v.clone(), Some(mask), bias.clone())
                } else {
                    burn_attention(
                        q.clone(),
                        k.clone(),
                        v.clone(),
                        Some(mask),
                        bias.clone(),
                        AttentionModuleOptions::default(),
                    )
                };
                let weights = Tensor::<4>::from_data(TensorData::new(values(n, 5, 1.0), shape), &device);
                let grads = (out.clone() * weights).sum().backward();
                let mut all = vec![bits(out)];
                for t in [&q, &k, &v] {
                    all.push(bits(t.grad(&grads).unwrap()));
                }
                if let Some(bias) = &bias {
                    all.push(bits(bias.grad(&grads).unwrap()));
                }
                all
            };
            let (ours, burns) = (run(true), run(false));
            for (i, name) in ["output", "dq", "dk", "dv", "dbias"].iter().enumerate().take(ours.len()) {
                assert_eq!(ours[i], burns[i], "{name}, bias {with_bias}");
            }
        }
    }

    /// Products as training makes them — batches against a broadcast weight, broadcast on both
    /// sides, transposed operands, one operand without a gradient, a single matrix — against
    /// burn's `matmul` under autodiff: values and both gradients, bit for bit.
    #[test]
    fn matmul_gives_burns_values_and_gradients_bit_for_bit() {
        let device = Device::flex().autodiff();
        let cases: [(&[usize], &[usize], bool, bool); 6] = [
            (&[4, 64, 96], &[1, 96, 48], false, false), // a Linear's product per batch
            (&[2, 3, 40, 16], &[2, 3, 16, 40], false, false), // attention's scores
            (&[2, 1, 9, 12], &[1, 3, 12, 5], false, false), // broadcast on both sides
            (&[3, 20, 30], &[3, 20, 30], true, false),  // a transposed right operand
            (&[200, 300], &[300, 250], false, false),   // one matrix, split over the threads
            (&[6, 17, 8], &[6, 8, 5], false, true),     // the right operand without a gradient
        ];
        for (i, (x_dims, y_dims, transpose_y, y_fixed)) in cases.into_iter().enumerate() {
            let run = |ours: bool| {
                let t = |dims: &[usize], salt| {
                    let n = dims.iter().product();
                    Tensor::<4>::from_data(TensorData::new(values(n, salt, 1.0), pad(dims)), &device)
                };
                let x = t(x_dims, i).require_grad();
                let y = if y_fixed { t(y_dims, i + 1) } else { t(y_dims, i + 1).require_grad() };
                let y_used = if transpose_y { y.clone().transpose() } else { y.clone() };
                let out = if ours { matmul(x.clone(), y_used) } else { x.clone().matmul(y_used) };
                let w = Tensor::<4>::from_data(
                    TensorData::new(values(out.shape().num_elements(), i + 2, 1.0), out.shape()),
                    &device,
                );
                let grads = (out.clone() * w).sum().backward();
                let mut all = vec![bits(out), bits(x.grad(&grads).unwrap())];
                if !y_fixed {
                    all.push(bits(y.grad(&grads).unwrap()));
                }
                all
            };
            assert_eq!(run(true), run(false), "case {i}: {x_dims:?} · {y_dims:?}");
        }
    }

    /// The leading ones that make a shape four-dimensional.
    fn pad(dims: &[usize]) -> [usize; 4] {
        let mut out = [1; 4];
        out[4 - dims.len()..].copy_from_slice(dims);
        out
    }

    /// `Linear` as training runs it (the rows folded, or a product per batch; with and without
    /// bias; one input into three layers, as a query, key and value, so that the input's
    /// gradient sums three parts) against burn's `Linear::forward` under autodiff: values and
    /// every gradient, bit for bit.
    #[test]
    fn linear_gives_burns_values_and_gradients_bit_for_bit() {
        let device = Device::flex().autodiff();
        // Batches of 6 and 5 are large enough for flex to spread the weight gradient's products
        // over the threads (the last group of 5 is short).
        let shapes: [(&[usize], usize); 6] = [
            (&[3, 19, 24], 40),
            (&[4, 64, 96], 48),
            (&[2, 96, 384], 256),
            (&[50, 60], 30),
            (&[6, 64, 128], 64),
            (&[5, 64, 128], 64),
        ];
        for (i, (x_dims, n)) in shapes.into_iter().enumerate() {
            let k = *x_dims.last().unwrap();
            for with_bias in [true, false] {
                let run = |ours: bool| {
                    let layers: Vec<Linear> = (0..3)
                        .map(|l| Linear {
                            weight: burn::module::Param::from_tensor(Tensor::<2>::from_data(
                                TensorData::new(values(k * n, i * 10 + l, 0.5), [k, n]),
                                &device,
                            )),
                            bias: with_bias.then(|| {
                                burn::module::Param::from_tensor(Tensor::<1>::from_data(
                                    TensorData::new(values(n, i * 10 + l + 5, 1.0), [n]),
                                    &device,
                                ))
                            }),
                        })
                        .collect();
                    let x_len: usize = x_dims.iter().product();
                    let x = Tensor::<3>::from_data(
                        TensorData::new(values(x_len, i, 1.0), pad(x_dims)[1..].to_vec()),
                        &device,
                    )
                    .require_grad();
                    let apply = |layer: &Linear| {
                        if ours { super::linear(layer, &x).expect("tracked flex") } else { layer.forward(x.clone()) }
                    };
                    let outs: Vec<Tensor<3>> = layers.iter().map(apply).collect();
                    let total = outs[0].clone() * outs[1].clone() + outs[2].clone();
                    let grads = total.clone().sum().backward();
                    let mut all = vec![bits(total), bits(x.grad(&grads).unwrap())];
                    for layer in &layers {
                        all.push(bits(layer.weight.val().grad(&grads).unwrap()));
                        if let Some(b) = &layer.bias {
                            all.push(bits(b.val().grad(&grads).unwrap()));
                        }
                    }
                    all
                };
                assert_eq!(run(true), run(false), "shape {x_dims:?} · [{k}, {n}], bias {with_bias}");
            }
        }
    }

    #[test]
    fn exp_gives_burns_values_and_gradients_bit_for_bit() {
        let device = Device::flex().autodiff();
        let run = |ours: bool| {
            let x = Tensor::<2>::from_data(TensorData::new(values(6_000, 1, 40.0), [60, 100]), &device).require_grad();
            let w = Tensor::<2>::from_data(TensorData::new(values(6_000, 2, 1.0), [60, 100]), &device);
            let y = if ours { exp(x.clone()) } else { x.clone().exp() };
            let grads = (y.clone() * w).sum().backward();
            (bits(y), bits(x.grad(&grads).unwrap()))
        };
        assert_eq!(run(true), run(false));
    }
}
