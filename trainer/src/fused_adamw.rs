//! burn's AdamW in one pass over each parameter, with the same bits.
//!
//! burn-optim's `AdamW::step` updates a parameter with about fourteen tensor operations (moments,
//! bias corrections, square root, decay, learning rate), each a pass over the parameter's values
//! with a buffer of its own: 0.14 s of a MiniLM training step against PyTorch's 0.08 s
//! (BENCHMARKS.md, "Training speed"). On flex f32 tensors this optimizer performs the same IEEE
//! operations per value, in the same order, in one loop; its state is burn's `AdamWState`, so
//! checkpoints are written and read as before, and a run gives the same weights. Anything else
//! (another backend, AMSGrad, cautious decay) is burn's own `AdamW`.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::optim::{AdamW, AdamWConfig, AdamWState, AdaptiveMomentumState, LearningRate, Optimizer};
use burn::tensor::{DType, Device, Tensor, TensorData};

/// AdamW with decoupled weight decay, as `AdamWConfig::new().with_…(…).build()` configures it.
#[derive(Clone)]
pub struct FusedAdamW {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
    /// burn's, for the tensors this one does not handle.
    burns: AdamW,
}

impl FusedAdamW {
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32, weight_decay: f32) -> Self {
        let burns = AdamWConfig::new()
            .with_beta_1(beta_1)
            .with_beta_2(beta_2)
            .with_epsilon(epsilon)
            .with_weight_decay(weight_decay)
            .build();
        Self { beta_1, beta_2, epsilon, weight_decay, burns }
    }
}

impl Optimizer for FusedAdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let on_flex = |t: &Tensor<D>| t.dtype() == DType::F32 && t.device() == Device::flex();
        let fused = on_flex(&tensor)
            && on_flex(&grad)
            && state.as_ref().is_none_or(|s| {
                let m = &s.momentum;
                m.max_moment_2.is_none() && on_flex(&m.moment_1) && on_flex(&m.moment_2)
            });
        if !fused {
            return self.burns.step(lr, tensor, grad, state);
        }
        #[cfg(test)]
        tests::FUSED_STEPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let shape = tensor.shape();
        let mut param = values(tensor);
        let grad = values(grad);
        let (time, mut moment_1, mut moment_2) = match state {
            Some(state) => {
                let m = state.momentum;
                (m.time + 1, values(m.moment_1), values(m.moment_2))
            }
            None => (1, vec![0.0; param.len()], vec![0.0; param.len()]),
        };

        // The scalars as burn computes them: f32 arithmetic for the moments' factors and bias
        // corrections, f64 for the decay, each rounded to f32 where flex applies it.
        let decay_rate = lr * (self.weight_decay as f64);
        let step = Step {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            factor_1: 1.0 - self.beta_1,
            factor_2: 1.0 - self.beta_2,
            correction_1: 1f32 - self.beta_1.powi(time as i32),
            correction_2: 1f32 - self.beta_2.powi(time as i32),
            epsilon: self.epsilon,
            keep: (1.0 - decay_rate) as f32,
            decays: decay_rate != 0.0,
            lr: lr as f32,
            first: time == 1,
        };
        update(&step, &mut param, &grad, &mut moment_1, &mut moment_2);

        let tensor = |values: Vec<f32>| {
            Tensor::<D>::from_primitive::<Flex>(FlexTensor::from_data(TensorData::new(values, shape.clone())))
        };
        let momentum = AdaptiveMomentumState::new(time, tensor(moment_1), tensor(moment_2));
        (tensor(param), Some(AdamWState::new(momentum)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        <AdamW as Optimizer>::to_device(state, device)
    }
}

/// One update's constants.
struct Step {
    beta_1: f32,
    beta_2: f32,
    factor_1: f32,
    factor_2: f32,
    correction_1: f32,
    correction_2: f32,
    epsilon: f32,
    /// `1 - lr · weight_decay`, and whether that product is not zero (burn skips the product then).
    keep: f32,
    decays: bool,
    lr: f32,
    /// The first step: the moments start from the gradient alone.
    first: bool,
}

/// The update in place, vectorised for the processor (AVX-512 or AVX2 picked at run time).
fn update(step: &Step, param: &mut [f32], grad: &[f32], moment_1: &mut [f32], moment_2: &mut [f32]) {
    adam_core::widest_simd!(update_loop(
        step: &Step,
        param: &mut [f32],
        grad: &[f32],
        moment_1: &mut [f32],
        moment_2: &mut [f32],
    ))
}

/// burn's operations per value, in its order (`AdaptiveMomentumW::transform`, `AdamW::step`).
#[inline(always)]
fn update_loop(s: &Step, param: &mut [f32], grad: &[f32], moment_1: &mut [f32], moment_2: &mut [f32]) {
    let values = param.iter_mut().zip(grad).zip(moment_1.iter_mut().zip(moment_2.iter_mut()));
    for ((p, &g), (m, v)) in values {
        (*m, *v) = if s.first {
            (g * s.factor_1, (g * g) * s.factor_2)
        } else {
            (*m * s.beta_1 + g * s.factor_1, *v * s.beta_2 + (g * g) * s.factor_2)
        };
        let delta = (*m / s.correction_1) / ((*v / s.correction_2).sqrt() + s.epsilon);
        let decayed = if s.decays { *p * s.keep } else { *p };
        *p = decayed - delta * s.lr;
    }
}

/// A flex f32 tensor's values in row-major order (a copy only where it is not contiguous).
fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    match t.into_data().try_into_vec::<f32>() {
        Ok(values) => values,
        Err(error) => unreachable!("an f32 tensor reads back as f32: {error:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::{GradientsParams, ModuleOptimizer};

    /// Parameter updates this optimizer made itself, so that a test can tell it from burn's.
    pub static FUSED_STEPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    fn bits(t: Tensor<1>) -> Vec<u32> {
        t.into_data().try_into_vec::<f32>().unwrap().into_iter().map(f32::to_bits).collect()
    }

    fn ours(decay: f32) -> ModuleOptimizer {
        ModuleOptimizer::from(FusedAdamW::new(0.9, 0.999, 1e-8, decay))
    }

    fn burns(decay: f32) -> ModuleOptimizer {
        ModuleOptimizer::from(
            AdamWConfig::new().with_beta_1(0.9).with_beta_2(0.999).with_epsilon(1e-8).with_weight_decay(decay).build(),
        )
    }

    /// `steps` of `optim` on `layer`, a learning rate that changes every step (as the schedule
    /// does); the layer's values and the optimizer's saved state after them.
    fn train(
        mut layer: Linear,
        mut optim: ModuleOptimizer,
        steps: std::ops::Range<usize>,
    ) -> (Linear, burn::tensor::Bytes) {
        let device = layer.weight.device();
        for step in steps {
            let x = Tensor::<2>::from_data(
                TensorData::new((0..8 * 37).map(|i| ((i * 31 + step * 17) % 23) as f32 / 7.0 - 1.5).collect(), [8, 37]),
                &device,
            );
            let loss = layer.forward(x).powi_scalar(2).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &layer);
            layer = optim.step(2e-3 / step as f64, layer, grads);
        }
        (layer, optim.into_bytes().unwrap())
    }

    fn values(layer: &Linear) -> Vec<u32> {
        let mut all = bits(layer.weight.val().inner().flatten(0, 1));
        all.extend(bits(layer.bias.as_ref().unwrap().val().inner()));
        all
    }

    /// Five steps with each give the same weights; a state saved by one and loaded by the other
    /// goes on to the same weights (checkpoints keep their format).
    #[test]
    fn same_weights_as_burns_adamw_bit_for_bit_and_the_same_saved_state() {
        let device = Device::flex().autodiff();
        for decay in [0.0f32, 0.01] {
            let layer: Linear = LinearConfig::new(37, 29).init(&device);
            let (all_burns, _) = train(layer.clone(), burns(decay), 1..6);
            let before = FUSED_STEPS.load(std::sync::atomic::Ordering::Relaxed);
            let (all_ours, _) = train(layer.clone(), ours(decay), 1..6);
            assert!(FUSED_STEPS.load(std::sync::atomic::Ordering::Relaxed) >= before + 10, "the fused pass ran");
            assert_eq!(values(&all_ours), values(&all_burns), "five steps, decay {decay}");

            let (half, saved) = train(layer.clone(), ours(decay), 1..3);
            let (resumed, _) = train(half, burns(decay).from_bytes(saved).unwrap(), 3..6);
            assert_eq!(values(&resumed), values(&all_burns), "ours saved, burn's resumed, decay {decay}");
            let (half, saved) = train(layer.clone(), burns(decay), 1..3);
            let (resumed, _) = train(half, ours(decay).from_bytes(saved).unwrap(), 3..6);
            assert_eq!(values(&resumed), values(&all_burns), "burn's saved, ours resumed, decay {decay}");
        }
    }
}
