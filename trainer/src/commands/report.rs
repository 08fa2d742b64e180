//! `adam report`: the report of `crate::report` over runs listed in a JSON file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::report::{JSON_FILE, PLOT_FILE, RunResult, TABLE_FILE, write_report};

/// `adam report`: the runs come from a JSON file (an array of [`RunResult`]); relative log paths
/// are relative to that file's folder.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// JSON array of runs: `[{"method": "adam", "seed": 1, "metrics": {"ndcg@10": 0.41, "mrr@10":
    /// 0.35, "recall@100": 0.8}, "log": "adam-1/log.jsonl"}, ...]`.
    #[arg(long, value_name = "FILE")]
    pub runs: PathBuf,
    /// Folder for report.md, report.json and dev_ndcg10.svg.
    #[arg(long, value_name = "DIR")]
    pub output: PathBuf,
}

pub fn run(args: ReportArgs) -> Result<()> {
    let runs = read_runs(&args.runs)?;
    write_report(&args.output, &runs)?;
    eprintln!("wrote {TABLE_FILE}, {JSON_FILE} and {PLOT_FILE} for {} runs into {}", runs.len(), args.output.display());
    Ok(())
}

/// Reads a runs file; errors name the file and the line (JSON syntax) or the run and field.
pub fn read_runs(path: &Path) -> Result<Vec<RunResult>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let values: Vec<serde_json::Value> = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!("{}:{}:{}: not a JSON array of runs: {e}", path.display(), e.line(), e.column())
    })?;
    let base = path.parent().unwrap_or(Path::new(""));
    values
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let at = |field: &str| format!("{}: run {} (of {}): field `{field}`", path.display(), i + 1, values.len());
            let object = value
                .as_object()
                .ok_or_else(|| anyhow::anyhow!("{}: run {}: not a JSON object", path.display(), i + 1))?;
            fn get<T: serde::de::DeserializeOwned>(
                object: &serde_json::Map<String, serde_json::Value>,
                name: &str,
                at: &dyn Fn(&str) -> String,
            ) -> Result<T> {
                let value = object.get(name).ok_or_else(|| anyhow::anyhow!("{}: missing", at(name)))?;
                serde_json::from_value(value.clone()).map_err(|e| anyhow::anyhow!("{}: {e}", at(name)))
            }
            // Fields are checked in the order a user writes them, so the first wrong one is named.
            let method = get(object, "method", &at)?;
            let seed = get(object, "seed", &at)?;
            let metrics = get(object, "metrics", &at)?;
            let log: PathBuf = get(object, "log", &at)?;
            Ok(RunResult {
                method,
                seed,
                metrics,
                // Relative log paths are relative to the runs file.
                log: if log.is_relative() { base.join(log) } else { log },
            })
        })
        .collect()
}
