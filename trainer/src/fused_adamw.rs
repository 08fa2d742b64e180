//! burn's AdamW in one pass over each parameter, with the same bits.
//!
//! burn-optim's `AdamW::step` updates a parameter with about fourteen tensor operations (moments,
//! bias corrections, square root, decay, learning rate), each a pass over the parameter's values
//! with a buffer of its own: 0.14 s of a MiniLM training step against PyTorch's 0.08 s
//! (BENCHMARKS.md, "Training speed"). On flex f32 tensors this optimizer performs the same IEEE
//! operations per value, in the same order, in one loop; its state is burn's `AdamWState`, so
//! checkpoints are written and read as before, and a run gives the same weights. On the wgpu
//! device one kernel does the same per value (`cube`): burn's fourteen kernel launches per
//! parameter were 0.045 s of a 0.13 s training step on an H200 (issue 19, point 3). Anything else
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
            if cube::takes(&tensor, &grad, state.as_ref()) {
                #[cfg(test)]
                tests::KERNEL_STEPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return cube::step(self, lr, tensor, grad, state);
            }
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

        let step = self.constants(lr, time);
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

impl FusedAdamW {
    /// The scalars as burn computes them: f32 arithmetic for the moments' factors and bias
    /// corrections, f64 for the decay, each rounded to f32 where burn applies it.
    fn constants(&self, lr: LearningRate, time: usize) -> Step {
        let decay_rate = lr * (self.weight_decay as f64);
        Step {
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
        }
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

/// The update as one kernel on the wgpu device: burn's operations per value, in its order, as
/// `update_loop` does them.
mod cube {
    use burn::backend::Cube;
    use burn::optim::{AdamWState, AdaptiveMomentumState, LearningRate};
    use burn::tensor::{DType, Shape, Tensor as BurnTensor};
    use burn_cubecl::cubecl;
    use burn_cubecl::cubecl::ir::{ElemType, FloatKind};
    use burn_cubecl::cubecl::prelude::*;
    use burn_cubecl::cubecl::{CubeDim, calculate_cube_count_elemwise};
    use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
    use burn_cubecl::tensor::CubeTensor;

    use super::{FusedAdamW, Step};

    #[derive(CubeLaunch, CubeType)]
    struct Constants {
        beta_1: InputScalar,
        beta_2: InputScalar,
        factor_1: InputScalar,
        factor_2: InputScalar,
        correction_1: InputScalar,
        correction_2: InputScalar,
        epsilon: InputScalar,
        keep: InputScalar,
        lr: InputScalar,
    }

    /// One unit per value of contiguous tensors, updated in place. On the first step the moments
    /// are not read (they start from the gradient alone).
    #[cube(launch_unchecked)]
    fn adamw_kernel<E: Float>(
        param: &mut Tensor<E>,
        grad: &Tensor<E>,
        moment_1: &mut Tensor<E>,
        moment_2: &mut Tensor<E>,
        c: &Constants,
        #[comptime] first: bool,
        #[comptime] decays: bool,
        #[define(E)] _dtype: ElemType,
    ) {
        let i = ABSOLUTE_POS;
        if i >= param.len() {
            terminate!();
        }
        let g = grad[i];
        let mut m = g * c.factor_1.get::<E>();
        let mut v = (g * g) * c.factor_2.get::<E>();
        if comptime![!first] {
            m = moment_1[i] * c.beta_1.get::<E>() + g * c.factor_1.get::<E>();
            v = moment_2[i] * c.beta_2.get::<E>() + (g * g) * c.factor_2.get::<E>();
        }
        let delta = (m / c.correction_1.get::<E>()) / ((v / c.correction_2.get::<E>()).sqrt() + c.epsilon.get::<E>());
        let mut decayed = param[i];
        if comptime![decays] {
            decayed *= c.keep.get::<E>();
        }
        param[i] = decayed - delta * c.lr.get::<E>();
        moment_1[i] = m;
        moment_2[i] = v;
    }

    /// A contiguous f32 tensor of a cube device, with its shape.
    fn cube_f32<const D: usize>(t: &BurnTensor<D>) -> Option<Shape> {
        let t = t.clone().try_into_primitive::<Cube>().ok()?;
        (t.dtype == DType::F32 && t.is_contiguous()).then(|| t.meta.shape().clone())
    }

    /// Whether [`step`] takes this update: the parameter, its gradient and its moments are
    /// contiguous f32 tensors of a cube device of one shape, and the state has no AMSGrad moment.
    pub(super) fn takes<const D: usize>(
        tensor: &BurnTensor<D>,
        grad: &BurnTensor<D>,
        state: Option<&AdamWState<D>>,
    ) -> bool {
        let Some(shape) = cube_f32(tensor).filter(|s| s.num_elements() > 0) else { return false };
        let same = |t: &BurnTensor<D>| cube_f32(t).is_some_and(|s| s == shape);
        same(grad)
            && state.is_none_or(|s| {
                let m = &s.momentum;
                m.max_moment_2.is_none() && same(&m.moment_1) && same(&m.moment_2)
            })
    }

    /// The fused update of what [`takes`] accepted, in place: the parameter and its moments are
    /// written where they are, unless something else still holds their buffers (then a copy).
    pub(super) fn step<const D: usize>(
        optim: &FusedAdamW,
        lr: LearningRate,
        tensor: BurnTensor<D>,
        grad: BurnTensor<D>,
        state: Option<AdamWState<D>>,
    ) -> (BurnTensor<D>, Option<AdamWState<D>>) {
        let cube = |t: BurnTensor<D>| match t.try_into_primitive::<Cube>() {
            Ok(t) => t,
            Err(e) => unreachable!("`takes` checked it is a cube tensor: {e:?}"),
        };
        let own = |t: CubeTensor| if t.can_mut() { t } else { t.copy() };
        let param = own(cube(tensor));
        let gradient = cube(grad);
        let (client, device, shape) = (param.client.clone(), param.device.clone(), param.meta.shape().clone());
        let (time, moment_1, moment_2) = match state {
            Some(state) => {
                let m = state.momentum;
                (m.time + 1, own(cube(m.moment_1)), own(cube(m.moment_2)))
            }
            None => {
                let fresh = || empty_device_contiguous_dtype(client.clone(), device.clone(), shape.clone(), DType::F32);
                (1, fresh(), fresh())
            }
        };
        let Step { beta_1, beta_2, factor_1, factor_2, correction_1, correction_2, epsilon, keep, decays, lr, first } =
            optim.constants(lr, time);
        let f32_type = ElemType::Float(FloatKind::F32);
        let scalar = |v: f32| InputScalar::new(v, f32_type);
        let units = shape.num_elements();
        let cube_dim = CubeDim::new(&client, units);
        // Safety: one unit per value, those past the end stop at once; the four tensors are
        // contiguous and of one shape (`takes`), and the three written are not shared (`own`).
        unsafe {
            adamw_kernel::launch_unchecked(
                &client,
                calculate_cube_count_elemwise(&client, units, cube_dim),
                cube_dim,
                param.clone().into_tensor_arg(),
                gradient.into_tensor_arg(),
                moment_1.clone().into_tensor_arg(),
                moment_2.clone().into_tensor_arg(),
                ConstantsLaunch::new(
                    scalar(beta_1),
                    scalar(beta_2),
                    scalar(factor_1),
                    scalar(factor_2),
                    scalar(correction_1),
                    scalar(correction_2),
                    scalar(epsilon),
                    scalar(keep),
                    scalar(lr),
                ),
                first,
                decays,
                f32_type,
            );
        }
        let tensor = |t: CubeTensor| BurnTensor::<D>::from_primitive::<Cube>(t);
        let momentum = AdaptiveMomentumState::new(time, tensor(moment_1), tensor(moment_2));
        (tensor(param), Some(AdamWState::new(momentum)))
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

    /// Parameter updates this optimizer made itself on flex, so that a test can tell it from burn's.
    pub static FUSED_STEPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    /// The same on the wgpu device, by the kernel.
    pub static KERNEL_STEPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

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

    /// On the wgpu device (lavapipe without a GPU) the kernel takes every parameter, and five
    /// steps give burn's weights (within 1e-6: a GPU compiler may fuse a multiply and an add); a
    /// state saved by one goes on in the other.
    #[test]
    fn on_wgpu_one_kernel_gives_burns_weights() {
        // Another test's tensors on the default device (wgpu) may have registered its runtime
        // first, which a second `init` refuses: that device is the one wanted.
        let device = crate::backend::Backend::Wgpu.device().unwrap_or_else(|_| Device::default());
        assert!(format!("{device:?}").contains("Wgpu"), "a wgpu device (lavapipe without a GPU): {device:?}");
        let device = device.autodiff();
        let floats = |layer: &Linear| values(layer).into_iter().map(f32::from_bits).collect::<Vec<_>>();
        let close = |a: &Linear, b: &Linear, what: &str| {
            let diff = floats(a).iter().zip(floats(b)).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
            assert!(diff <= 1e-6, "{what}: {diff}");
        };
        for decay in [0.0f32, 0.01] {
            let layer: Linear = LinearConfig::new(37, 29).init(&device);
            let (all_burns, _) = train(layer.clone(), burns(decay), 1..6);
            let before = KERNEL_STEPS.load(std::sync::atomic::Ordering::Relaxed);
            let (all_ours, _) = train(layer.clone(), ours(decay), 1..6);
            assert_eq!(KERNEL_STEPS.load(std::sync::atomic::Ordering::Relaxed), before + 10, "the kernel took all");
            assert!(floats(&all_ours) != floats(&layer), "the weights moved");
            close(&all_ours, &all_burns, &format!("five steps, decay {decay}"));
            let (half, saved) = train(layer.clone(), ours(decay), 1..3);
            let (resumed, _) = train(half, burns(decay).from_bytes(saved).unwrap(), 3..6);
            close(&resumed, &all_burns, &format!("ours saved, burn's resumed, decay {decay}"));
            let (half, saved) = train(layer.clone(), burns(decay), 1..3);
            let (resumed, _) = train(half, ours(decay).from_bytes(saved).unwrap(), 3..6);
            close(&resumed, &all_burns, &format!("burn's saved, ours resumed, decay {decay}"));
        }
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
