//! Training checkpoints: the model (burnpack, which keeps parameter ids), the AdamW moments
//! (burn's optimizer record, keyed by those ids) and a JSON state (step, data position, config),
//! written together as one folder that replaces the previous one atomically.

use std::path::Path;

use adam_core::save::write_folder;
use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::optim::Optimizer;

const MODEL: &str = "model.bpk";
const OPTIMIZER: &str = "optimizer.bpk";
const STATE: &str = "state.json";

/// Writes `dir` (replacing an older checkpoint there) with the model, optimizer and `state`.
pub fn save<M: Module, S: Serialize>(dir: &Path, model: &M, optimizer: &Optimizer, state: &S) -> Result<()> {
    let files = vec![
        (MODEL.to_string(), model_bytes(model)?),
        (OPTIMIZER.to_string(), optimizer.to_bytes()?.to_vec()),
        (STATE.to_string(), serde_json::to_vec_pretty(state)?),
    ];
    write_folder(dir, &files).with_context(|| format!("writing checkpoint {}", dir.display()))
}

/// The state of the checkpoint in `dir`, or `None` when there is none. A run killed between the
/// two renames that replace a checkpoint (`write_folder`) leaves no `dir` but the previous
/// checkpoint beside it as `.NAME.old-PID`: that one is put back first.
pub fn load_state<S: DeserializeOwned>(dir: &Path) -> Result<Option<S>> {
    if !dir.exists() {
        restore_replaced(dir)?;
    }
    let path = dir.join(STATE);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// `<output>.checkpoint`, beside an output folder that is written only at the end of the run.
pub fn beside(output: &Path) -> std::path::PathBuf {
    let name = output.file_name().map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    output.with_file_name(format!("{name}.checkpoint"))
}

/// The checkpoint a run should resume from: `None` to start afresh. Refuses to overwrite a
/// checkpoint without `resume` (`instead` says what else the user can do) and to resume one whose
/// recorded config differs from `config` (`settings` names where the user set it); peers other
/// than the leader read none.
pub fn resume_from(
    dir: &Path,
    resume: bool,
    config: &serde_json::Value,
    leader: bool,
    instead: &str,
    settings: &str,
) -> Result<Option<crate::train_loop::CheckpointState>> {
    if !leader {
        return Ok(None);
    }
    let state: Option<crate::train_loop::CheckpointState> = load_state(dir)?;
    match &state {
        Some(_) if !resume => {
            bail!("{} holds a checkpoint: pass --resume to continue that run, or {instead}", dir.display())
        }
        Some(s) => {
            if let Some(diff) = crate::distill_config::first_difference(&s.config, config, "") {
                bail!(
                    "{settings} changed since the checkpoint in {} ({diff}); resume with the same ones",
                    dir.display()
                );
            }
        }
        None if resume => eprintln!("no checkpoint in {}: starting from the beginning", dir.display()),
        None => {}
    }
    Ok(state)
}

/// Loads the checkpoint of `state` (from [`resume_from`]) into `model` and `optimizer`, and says
/// so; returns the step it resumes after (`None`, and both unchanged, without a checkpoint).
pub fn restore<M: Module>(
    dir: &Path,
    state: Option<&crate::train_loop::CheckpointState>,
    model: M,
    optimizer: Optimizer,
    total_steps: usize,
) -> Result<(M, Optimizer, Option<usize>)> {
    let Some(s) = state else { return Ok((model, optimizer, None)) };
    let model = load_model(dir, model)?;
    let optimizer = load_optimizer(dir, optimizer)?;
    eprintln!("resuming at step {} of {total_steps}", s.step);
    Ok((model, optimizer, Some(s.step)))
}

/// Deletes the checkpoint of a finished run: it is no longer needed, and would block a rerun.
pub fn remove(dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    Ok(())
}

/// Renames the newest complete `.NAME.old-*` beside `dir` back to `dir`, if there is one.
fn restore_replaced(dir: &Path) -> Result<()> {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else { return Ok(()) };
    let prefix = format!(".{}.old-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(if parent.as_os_str().is_empty() { Path::new(".") } else { parent }) else {
        return Ok(());
    };
    let newest = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix) && e.path().join(STATE).is_file())
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok());
    if let Some(old) = newest {
        std::fs::rename(old.path(), dir)
            .with_context(|| format!("restoring checkpoint {} from {}", dir.display(), old.path().display()))?;
        eprintln!("restored {} from {} (a run stopped while replacing it)", dir.display(), old.path().display());
    }
    Ok(())
}

fn read(dir: &Path, name: &str) -> Result<Bytes> {
    let path = dir.join(name);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Bytes::from_bytes_vec(bytes))
}

/// The model's weights and parameter ids as a burnpack (a checkpoint's `model.bpk`).
pub fn model_bytes<M: Module>(model: &M) -> Result<Vec<u8>> {
    let mut store = BurnpackStore::from_bytes(None);
    model.save_into(&mut store).map_err(|e| anyhow::anyhow!("serialising the model: {e}"))?;
    Ok(store.get_bytes().map_err(|e| anyhow::anyhow!("serialising the model: {e}"))?.to_vec())
}

/// Loads the checkpoint's weights (and parameter ids) into `model`, which must have the
/// checkpoint's architecture.
pub fn load_model<M: Module>(dir: &Path, model: M) -> Result<M> {
    load_model_bytes(read(dir, MODEL)?, model, &dir.join(MODEL).display().to_string())
}

/// Loads [`model_bytes`]' output into `model`; `source` names where the bytes came from.
pub fn load_model_bytes<M: Module>(bytes: Bytes, mut model: M, source: &str) -> Result<M> {
    let mut store = BurnpackStore::from_bytes(Some(bytes));
    let result = model.load_from(&mut store).map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
    if let Some(err) = result.errors.first() {
        bail!("{source}: {err:?} (was the checkpoint written with another student?)");
    }
    let missing: Vec<&str> = result.missing.iter().map(|(p, _)| p.as_str()).collect();
    if !missing.is_empty() {
        bail!("{source}: missing tensor(s) {}", missing.join(", "));
    }
    Ok(model)
}

pub fn load_optimizer(dir: &Path, optimizer: Optimizer) -> Result<Optimizer> {
    optimizer.load_bytes(read(dir, OPTIMIZER)?).with_context(|| format!("{}", dir.join(OPTIMIZER).display()))
}
