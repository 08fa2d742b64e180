//! `adam`: distil a cross-encoder into a dual-encoder retriever (ADAM, Tao et al. 2022).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod backend;
mod bench;
mod bm25;
mod embed;
mod eval;
mod export_web;
mod io;
mod soft_labels;

use backend::Backend;

#[derive(Parser)]
#[command(name = "adam", version, about = "Dense retrieval distillation with adaptive dark examples")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Embed texts (one per line) with a Hugging Face / sentence-transformers model folder.
    Embed(embed::EmbedArgs),
    /// Score a TREC run file against a BEIR folder's qrels (trec_eval's measures).
    Eval(eval::EvalArgs),
    /// Measure encoding speed (passages/s) of each backend on real passages.
    Bench(bench::BenchArgs),
    /// Write the browser demo's assets: models (f16), examples, search corpus, report.
    ExportWeb(export_web::ExportWebArgs),
    /// Teacher and student soft labels over a query's candidates and dark examples (the demo's lab).
    SoftLabels(soft_labels::SoftLabelsArgs),
}

/// Options shared by the commands that run a model.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model folder (config.json, model.safetensors, tokenizer.json, sentence-transformers files).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Texts per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Truncate texts to this many tokens (default: the model's max_seq_length).
    #[arg(long, value_name = "N")]
    pub max_length: Option<usize>,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Embed(args) => embed::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Bench(args) => bench::run(args),
        Command::ExportWeb(args) => export_web::run(args),
        Command::SoftLabels(args) => soft_labels::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
