//! Issue 19, point 2: does another matrix-product kernel (one of cubek's, or adam's register-block
//! kernel in several blocks) run the page's shapes faster on a software GPU than the one burn
//! launches? burn (without `autotune`) always takes cubek's default; this launches each kernel on the same operands of the wgpu device and prints the mean
//! time of a product and its read-back, and the largest difference from burn's result. Without a
//! GPU the device is Mesa's lavapipe; Chromium's own software GPU, SwiftShader, is a Vulkan driver
//! too, which the Vulkan loader takes instead when told:
//!
//!     cargo run --release --example wgpu_matmul_strategies [-- ROUNDS [KERNELS]]
//!     VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json \
//!       cargo run --release --example wgpu_matmul_strategies [-- ROUNDS [KERNELS]]
//!
//! KERNELS: comma-separated words; only the kernels whose name contains one run.
//!
//! The shapes: a 10-token query and 8 passages of 40 tokens (320 rows) through MiniLM's
//! projections (384 -> 384, 384 -> 1536, 1536 -> 384), and one attention's two products per head.
use std::time::Instant;

use adam_core::model::cube_matmul::{fixed_plane_width, register_block_matmul};
use burn::backend::Cube;
use burn::tensor::{DType, Device, Distribution, Tensor};
use burn_cubecl::cubecl::ir::{ElemType, FloatKind};
use burn_cubecl::tensor::CubeTensor;
use cubek::matmul::definition::{MatmulElems, MatmulGlobalElems};
use cubek::matmul::multi_level::Strategy as Kernel;
use cubek::matmul::routine::BlueprintStrategy;
use cubek::matmul::strategy::Strategy;
use cubek::matmul::tiled::Strategy as Tiled;
use cubek::matmul::tiled::cpu_gemm::CpuGemmStrategy;
use cubek::std::InputBinding;

fn launch(strategy: &Strategy, lhs: &CubeTensor, rhs: &CubeTensor) -> Result<Tensor<3>, String> {
    assert_eq!(lhs.dtype, DType::F32);
    let out = burn_cubecl::kernel::matmul::init_matmul_output(lhs, rhs, DType::F32);
    let f32 = ElemType::Float(FloatKind::F32);
    let mut dtypes = MatmulElems::from_globals(&MatmulGlobalElems { lhs: f32, rhs: f32, out: f32 });
    let (l, r) = (InputBinding::new(lhs.clone().binding(), f32), InputBinding::new(rhs.clone().binding(), f32));
    cubek::matmul::launch::launch_ref(strategy, &out.client, l, r, out.clone().binding(), &mut dtypes)
        .map_err(|e| format!("{e:?}"))?;
    Ok(Tensor::from_primitive::<Cube>(out))
}

fn values(t: Tensor<3>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("f32 values")
}

fn main() {
    let rounds: usize = std::env::args().nth(1).map_or(5, |n| n.parse().expect("ROUNDS: a number"));
    // Optional: only the kernels whose name contains one of these comma-separated words.
    let only: Option<Vec<String>> = std::env::args().nth(2).map(|s| s.split(',').map(str::to_string).collect());
    let device = Device::wgpu_options().init().expect("a wgpu adapter (mesa-vulkan-drivers on Debian)");
    let shapes: [([usize; 3], [usize; 3]); 7] = [
        ([1, 10, 384], [1, 384, 384]),
        ([1, 10, 384], [1, 384, 1536]),
        ([1, 10, 1536], [1, 1536, 384]),
        ([1, 320, 384], [1, 384, 1536]),
        ([1, 320, 1536], [1, 1536, 384]),
        ([96, 40, 32], [96, 32, 40]),
        ([96, 40, 40], [96, 40, 32]),
    ];
    let strategies: [(&str, Strategy); 9] = [
        ("burn's (cubek default)", Strategy::default()),
        ("naive", Kernel::Naive.into()),
        ("simple unit", Kernel::SimpleUnit(Default::default()).into()),
        ("double unit", Kernel::DoubleUnit(Default::default()).into()),
        ("simple vecmat", Kernel::SimpleVecMat(Default::default()).into()),
        ("double vecmat", Kernel::DoubleVecMat(Default::default()).into()),
        ("gemv unit perpendicular", Kernel::GemvUnitPerpendicular(Default::default()).into()),
        ("gemm", Kernel::Gemm(Default::default()).into()),
        ("cpu gemm (tiled)", Tiled::CpuGemm(BlueprintStrategy::Inferred(CpuGemmStrategy::default())).into()),
    ];
    type Launch = Box<dyn Fn(&CubeTensor, &CubeTensor) -> Result<Tensor<3>, String>>;
    let mut kernels: Vec<(String, Launch)> = strategies
        .into_iter()
        .map(|(name, s)| (name.to_string(), Box::new(move |l: &CubeTensor, r: &CubeTensor| launch(&s, l, r)) as Launch))
        .collect();
    // adam's own register-block kernel (`cube_matmul::register_block_matmul`), in several blocks.
    // With planes of one fixed width (SwiftShader: 4), also with `a`'s values shared across them.
    let plane = fixed_plane_width(&device);
    let blocks = [(4, 4), (4, 8), (8, 4), (8, 8), (4, 16), (16, 4), (8, 16), (16, 8)];
    for (tm, tn, lanes) in blocks
        .iter()
        .map(|&(tm, tn)| (tm, tn, 1))
        .chain(plane.filter(|&p| p > 1).into_iter().flat_map(|p| [(4, 8, p), (8, 8, p), (16, 4, p), (16, 8, p)]))
    {
        let name = if lanes == 1 {
            format!("registers {tm}x{tn} (adam)")
        } else {
            format!("registers {tm}x{tn}, planes of {lanes} (adam)")
        };
        kernels.push((
            name,
            Box::new(move |l: &CubeTensor, r: &CubeTensor| {
                register_block_matmul(l, r, None, tm, tn, lanes, [true; 2])
                    .map(Tensor::from_primitive::<Cube>)
                    .ok_or_else(|| "declined".to_string())
            }),
        ));
    }
    println!("| shape | kernel | ms per product + read-back | max abs diff from burn's |");
    println!("|---|---|---:|---:|");
    for (a, b) in shapes {
        let lhs: Tensor<3> = Tensor::random(a, Distribution::Normal(0.0, 1.0), &device);
        let rhs: Tensor<3> = Tensor::random(b, Distribution::Normal(0.0, 1.0), &device);
        let reference = values(lhs.clone().matmul(rhs.clone()));
        let (lhs, rhs) = (lhs.try_into_primitive::<Cube>().unwrap(), rhs.try_into_primitive::<Cube>().unwrap());
        let shape = format!("{a:?} × {b:?}");
        for (name, kernel) in &kernels {
            if only.as_ref().is_some_and(|words| !words.iter().any(|w| name.contains(w.as_str()))) {
                continue;
            }
            // The first launch compiles the kernel; it is checked, not timed.
            let first = match kernel(&lhs, &rhs) {
                Ok(out) => values(out),
                Err(e) => {
                    println!(
                        "| {shape} | {name} | refused: {} | |",
                        e.lines().next().unwrap_or("").chars().take(90).collect::<String>()
                    );
                    continue;
                }
            };
            let diff = first.iter().zip(&reference).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            let start = Instant::now();
            for _ in 0..rounds {
                values(kernel(&lhs, &rhs).expect("launched before"));
            }
            let ms = start.elapsed().as_secs_f64() * 1e3 / rounds as f64;
            println!("| {shape} | {name} | {ms:.2} | {diff:.1e} |");
        }
    }
}
