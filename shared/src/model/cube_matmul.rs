//! Matrix products on Chromium's software GPU (SwiftShader) through cubek's `CpuGemm` kernel.
//!
//! burn, built without `autotune`, launches cubek's default product for every shape: tiles staged
//! through workgroup memory with barriers. SwiftShader runs those 2.4-16x slower than cubek's
//! `CpuGemm` (a register-tiled kernel "that needs no accelerator", which burn's autotune offers
//! to CPU runtimes only), with the same bits on the models' shapes; Mesa's lavapipe, the other
//! software GPU, is the other way round (up to 6x slower with it), and a hardware GPU wants
//! burn's. So this is a switch that the page turns on when its WebGPU adapter is SwiftShader,
//! not a rule for software GPUs (BENCHMARKS.md, "SwiftShader's own kernel", issue 19).

use std::cell::Cell;

use burn::backend::Cube;
use burn::nn::Linear;
use burn::tensor::{Bool, DType, Tensor};
use burn_cubecl::cubecl::ir::{ElemType, FloatKind};
use burn_cubecl::kernel::matmul::init_matmul_output;
use cubek::matmul::definition::{MatmulElems, MatmulGlobalElems};
use cubek::matmul::routine::BlueprintStrategy;
use cubek::matmul::strategy::Strategy;
use cubek::matmul::tiled::Strategy as Tiled;
use cubek::matmul::tiled::cpu_gemm::CpuGemmStrategy;
use cubek::std::InputBinding;

thread_local! {
    static CPU_GEMM: Cell<bool> = const { Cell::new(false) };
}

/// Makes the models' products on the wgpu device use `CpuGemm` (`true`) or burn's kernel, on the
/// calling thread (the page has one).
pub fn use_cpu_gemm(on: bool) {
    CPU_GEMM.with(|c| c.set(on));
}

/// Whether [`use_cpu_gemm`] is on for the calling thread.
pub fn cpu_gemm() -> bool {
    CPU_GEMM.with(Cell::get)
}

/// `x · y` by `CpuGemm` when it is switched on and both are f32 tensors of the wgpu device; `None`
/// otherwise, or where cubek declines the operands (the caller then multiplies with burn).
pub fn matmul<const D: usize>(x: &Tensor<D>, y: &Tensor<D>) -> Option<Tensor<D>> {
    if !cpu_gemm() {
        return None;
    }
    let lhs = x.clone().try_into_primitive::<Cube>().ok()?;
    let rhs = y.clone().try_into_primitive::<Cube>().ok()?;
    if lhs.dtype != DType::F32 || rhs.dtype != DType::F32 {
        return None;
    }
    let out = init_matmul_output(&lhs, &rhs, DType::F32);
    let f32 = ElemType::Float(FloatKind::F32);
    let mut dtypes = MatmulElems::from_globals(&MatmulGlobalElems { lhs: f32, rhs: f32, out: f32 });
    let strategy: Strategy = Tiled::CpuGemm(BlueprintStrategy::Inferred(CpuGemmStrategy::default())).into();
    let (l, r) = (InputBinding::new(lhs.clone().binding(), f32), InputBinding::new(rhs.clone().binding(), f32));
    cubek::matmul::launch::launch_ref(&strategy, &out.client, l, r, out.clone().binding(), &mut dtypes).ok()?;
    Some(Tensor::from_primitive::<Cube>(out))
}

/// burn's `Linear` (`x · W + b`, the rows folded into one product) by [`matmul`]; `None` where it
/// is off or declines.
pub fn linear<const D: usize>(layer: &Linear, x: &Tensor<D>) -> Option<Tensor<D>> {
    if !cpu_gemm() {
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
    if !cpu_gemm() {
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

    /// `CpuGemm`'s `Linear` and attention against burn's on the wgpu device (lavapipe without a
    /// GPU): the switch is needed, and on they give burn's values.
    #[test]
    fn cpu_gemm_linear_and_attention_match_burn_on_wgpu() {
        let device = Device::wgpu_options().init().expect("a wgpu adapter (mesa-vulkan-drivers on Debian)");
        let layer = LinearConfig::new(48, 80).init(&device);
        let x: Tensor<3> = Tensor::random([3, 7, 48], Distribution::Normal(0.0, 1.0), &device);
        assert!(linear(&layer, &x).is_none(), "off by default");
        use_cpu_gemm(true);
        let ours = linear(&layer, &x).expect("CpuGemm takes the wgpu device's f32 tensors");
        assert_eq!(ours.dims(), [3, 7, 80]);
        assert!(max_diff(ours, layer.forward(x.clone())) <= 1e-5);
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
        use_cpu_gemm(false);
        assert!(attention(&q, &k, &v, &mask, None).is_none());
    }
}
