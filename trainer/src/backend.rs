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

/// The process's wgpu device. burn registers its wgpu runtime once per process (a second
/// `init` fails with "Service already initialized"), and `adam demo` runs several stages, and
/// its students' evaluations in parallel threads, in one process: the first call initialises,
/// the others share it.
fn wgpu_device() -> Result<Device> {
    static DEVICE: std::sync::Mutex<Option<Device>> = std::sync::Mutex::new(None);
    let mut slot = DEVICE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(device) = slot.as_ref() {
        return Ok(device.clone());
    }
    // wgpu panics deep inside adapter selection on some drivers; turn that into the same
    // clear error as a normal "no adapter".
    let init = std::panic::catch_unwind(|| Device::wgpu_options().init());
    let device = match init {
        Ok(Ok(device)) => device,
        Ok(Err(e)) => return Err(anyhow::anyhow!("{e}")).context(NO_ADAPTER),
        Err(_) => bail!("{NO_ADAPTER}"),
    };
    *slot = Some(device.clone());
    Ok(device)
}

const NO_ADAPTER: &str = "no usable GPU adapter for --backend wgpu (install a Vulkan driver, \
e.g. Debian's mesa-vulkan-drivers, or use --backend flex)";

#[cfg(test)]
mod tests {
    use super::Backend;

    /// `adam demo` asks for the device in several stages of one process and from parallel
    /// threads; burn's wgpu runtime registers once per process, so a second `init` would fail.
    /// (CI has Mesa's lavapipe, so an adapter exists.)
    #[test]
    fn the_wgpu_device_can_be_asked_for_again_and_from_threads() {
        let first = Backend::Wgpu.device().expect("first wgpu device");
        let again = Backend::Wgpu.device().expect("second wgpu device in the same process");
        assert_eq!(format!("{first:?}"), format!("{again:?}"));
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..4).map(|_| s.spawn(|| Backend::Wgpu.device().map(|_| ()))).collect();
            for h in handles {
                h.join().expect("no panic").expect("wgpu device from a thread");
            }
        });
    }
}
