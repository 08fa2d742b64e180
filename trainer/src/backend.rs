//! `--backend`: which burn device runs the model.

use anyhow::{Context, Result, bail};
use burn::tensor::Device;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// burn's pure-Rust CPU backend (multi-threaded, SIMD). The fastest CPU backend measured here.
    Flex,
    /// burn-ndarray CPU backend (deprecated by burn, kept for comparison).
    Ndarray,
    /// GPU through wgpu (Vulkan, Metal, DX12; Mesa's lavapipe on machines without a GPU).
    Wgpu,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Flex => "flex",
            Backend::Ndarray => "ndarray",
            Backend::Wgpu => "wgpu",
        })
    }
}

impl Backend {
    pub fn device(self) -> Result<Device> {
        Ok(match self {
            Backend::Flex => Device::flex(),
            #[allow(deprecated)]
            Backend::Ndarray => Device::ndarray(),
            Backend::Wgpu => wgpu_device()?,
        })
    }
}

fn wgpu_device() -> Result<Device> {
    // wgpu panics deep inside adapter selection on some drivers; turn that into the same
    // clear error as a normal "no adapter".
    let init = std::panic::catch_unwind(|| Device::wgpu_options().init());
    match init {
        Ok(Ok(device)) => Ok(device),
        Ok(Err(e)) => Err(anyhow::anyhow!("{e}")).context(NO_ADAPTER),
        Err(_) => bail!("{NO_ADAPTER}"),
    }
}

const NO_ADAPTER: &str = "no usable GPU adapter for --backend wgpu (install a Vulkan driver, \
e.g. Debian's mesa-vulkan-drivers, or use --backend flex)";
