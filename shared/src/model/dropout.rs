//! Hidden dropout whose masks can come from the calling thread's own generator.
//!
//! burn's `Dropout` draws its masks from the device's one generator, behind a lock. Two
//! micro-batches computed at once in one process (the trainer's workers) would then take their
//! masks from it in whatever order the threads reach it, and a run would no longer repeat. After
//! [`seed_dropout`] a thread draws its masks from a generator of its own: flex's generator
//! (rand's `StdRng` seeded the same way) read through the same `TensorData::random`, so on the
//! flex device the masks, and the run, are the same bytes as with `device.seed` and burn's
//! `Dropout`. Other devices (wgpu, ndarray) and unseeded threads keep burn's path.

use burn::nn::Dropout;
use burn::tensor::{Distribution, Tensor};

#[cfg(not(target_arch = "wasm32"))]
mod thread_rng {
    use std::cell::RefCell;

    use burn::tensor::{Shape, TensorData};
    use rand::distr::Bernoulli;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    thread_local! {
        static RNG: RefCell<Option<StdRng>> = const { RefCell::new(None) };
    }

    pub fn seed(seed: u64) {
        RNG.with(|rng| *rng.borrow_mut() = Some(StdRng::seed_from_u64(seed)));
    }

    /// A mask of `shape` from the thread's generator, if it has been seeded: `scale` where a
    /// draw of `Bernoulli(keep)` is true, else 0. The draws are `TensorData::random`'s for
    /// `Distribution::Bernoulli(keep)` (one `Bernoulli` sample per value, in order), without
    /// its per-value sampler.
    pub fn mask(shape: Shape, keep: f64, scale: f32) -> Option<TensorData> {
        let bernoulli = Bernoulli::new(keep).ok()?;
        let n = shape.num_elements();
        RNG.with(|rng| {
            let mut rng = rng.borrow_mut();
            let rng = rng.as_mut()?;
            let values: Vec<f32> = (0..n).map(|_| if rng.sample(bernoulli) { scale } else { 0.0 }).collect();
            Some(TensorData::new(values, shape))
        })
    }
}

/// Seeds the calling thread's dropout masks on the flex device (one generator per thread).
pub fn seed_dropout(seed: u64) {
    #[cfg(not(target_arch = "wasm32"))]
    thread_rng::seed(seed);
    #[cfg(target_arch = "wasm32")]
    let _ = seed; // no training in the browser
}

/// `layer`'s dropout of `input`, as burn's `Dropout::forward` computes it.
pub fn dropout<const D: usize>(layer: &Dropout, input: Tensor<D>) -> Tensor<D> {
    let device = input.device();
    if !layer.training.is_enabled() || !device.is_autodiff() || layer.prob == 0.0 {
        return input;
    }
    let keep = 1.0 - layer.prob;
    // One product with the mask already scaled: `x · (m / keep)` has the bits of burn's
    // `(x · m) / keep` for m in {0, 1}, at one element-wise pass (and its gradient) fewer.
    #[cfg(not(target_arch = "wasm32"))]
    if device.clone().inner() == burn::tensor::Device::flex()
        && input.dtype() == burn::tensor::DType::F32
        && let Some(mask) = thread_rng::mask(input.shape(), keep, (1.0 / keep) as f32)
    {
        return input * Tensor::from_data(mask, &device);
    }
    let mask = input.random_like(Distribution::Bernoulli(keep));
    input * mask * (1.0 / keep)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use burn::nn::DropoutConfig;
    use burn::tensor::{Device, Tensor};

    use super::*;

    fn values(t: Tensor<2>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().expect("f32")
    }

    /// burn's `Dropout::forward` on flex after `device.seed(seed)`, spelled out: `x · m · (1 /
    /// keep)` with `m` from flex 0.22's `float_random`, which draws `TensorData::random` from
    /// `StdRng::seed_from_u64(seed)` and carries the generator over to the next draw. Spelled out
    /// rather than called, because the device's generator is shared by the tests running beside
    /// this one (any model they build draws from it).
    fn burns_dropout(rng: &mut rand::rngs::StdRng, input: Tensor<2>, prob: f64) -> Tensor<2> {
        let keep = 1.0 - prob;
        let mask = burn::tensor::TensorData::random::<f32, _, _>(input.shape(), Distribution::Bernoulli(keep), rng);
        let mask = Tensor::<2>::from_data(mask, &input.device());
        input * mask * (1.0 / keep)
    }

    fn bits(t: Tensor<2>) -> Vec<u32> {
        values(t).into_iter().map(f32::to_bits).collect()
    }

    /// The point of the thread's generator: the same masks, and the same bits, as burn's dropout
    /// seeded through the device, so runs keep their bytes.
    #[test]
    fn a_seeded_thread_draws_burns_masks_on_flex() {
        use rand::SeedableRng;
        let device = Device::flex().autodiff();
        let layer = DropoutConfig::new(0.3).init();
        // Both signs and zero, so that the order of the products shows in the bits.
        let input = || {
            Tensor::<2>::from_data(
                burn::tensor::TensorData::new(
                    (0..7 * 33).map(|i| (i as f32 - 115.0) / 7.0).collect::<Vec<_>>(),
                    [7, 33],
                ),
                &device,
            )
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let burns = bits(burns_dropout(&mut rng, input(), layer.prob));
        seed_dropout(11);
        let ours = bits(dropout(&layer, input()));
        assert_eq!(ours, burns);
        let ours_values: Vec<f32> = ours.iter().map(|&b| f32::from_bits(b)).collect();
        assert!(ours_values.iter().filter(|v| **v == 0.0).count() > 20, "some values dropped");
        assert!(ours_values.iter().filter(|v| v.abs() > 0.0).count() > 100, "most kept");
        // The next draw goes on from the generator's state, as burn's does.
        let burns_next = bits(burns_dropout(&mut rng, input(), layer.prob));
        let ours_next = bits(dropout(&layer, input()));
        assert_ne!(ours_next, ours);
        assert_eq!(ours_next, burns_next);
    }

    #[test]
    fn threads_draw_their_own_masks_whatever_the_order() {
        let device = Device::flex().autodiff();
        let layer = DropoutConfig::new(0.5).init();
        let draw = |seed: u64| {
            seed_dropout(seed);
            values(dropout(&layer, Tensor::<2>::ones([16, 16], &device)))
        };
        let (a, b) = (draw(1), draw(2));
        let (b2, a2) = std::thread::scope(|s| {
            let b = s.spawn(|| draw(2));
            let a = s.spawn(|| draw(1));
            (b.join().expect("thread"), a.join().expect("thread"))
        });
        assert_ne!(a, b);
        assert_eq!((a2, b2), (a, b));
    }

    #[test]
    fn inference_is_untouched() {
        let layer = DropoutConfig::new(0.5).init();
        let x = Tensor::<2>::ones([4, 4], &Device::flex());
        seed_dropout(3);
        assert_eq!(values(dropout(&layer, x.clone())), values(x));
    }
}
