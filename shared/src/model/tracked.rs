//! Operations of our own under autodiff on the flex device, for training: GELU, `exp`, and
//! attention written out so that its softmax uses that `exp`.
//!
//! burn-flex computes these one value at a time with scalar libm calls; the operations here give
//! the same values and gradients bit for bit with the vectorised kernels of [`super::flex_exact`],
//! so a training run, and the shipped teacher it rebuilds, do not change. Anything else (another
//! backend, gradient checkpointing, a float type other than f32) goes to burn's own operation.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, NodeGuard, Ops, OpsKind, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::{
    Autodiff, BackendTensor, DispatchAutodiffContext, DispatchTensorKind, Flex, GradientCheckpointingStrategy,
};
use burn::tensor::activation::gelu as burn_gelu;
use burn::tensor::module::attention as burn_attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, DType, Tensor, TensorData};

use super::flex_exact;

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
    match x.try_into_primitive::<Autodiff<Flex>>() {
        Ok(tracked) => tracked.into_parts(),
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
    let mut scores = q.matmul(k.transpose()).mul_scalar(scale);
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
    (numerator / sum).matmul(v)
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
