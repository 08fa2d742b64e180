//! `adam`: distil a cross-encoder into a dual-encoder retriever (ADAM, Tao et al. 2022).
//! `retrieval` is used by `distill` (dev evaluation).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod backend;
mod bench;
mod bench_train;
mod bm25;
mod checkpoint;
mod dataset;
mod demo;
mod distill;
mod distill_config;
mod embed;
mod embed_cache;
mod eval;
mod export_web;
mod instances;
mod io;
mod negatives;
mod optim;
mod report;
mod retrieval;
mod score_cache;
mod soft_labels;
mod teacher;
mod teacher_inspect;
mod teacher_model;
mod teaching;

use backend::Backend;

#[derive(Parser)]
#[command(name = "adam", version, about = "Dense retrieval distillation with adaptive dark examples")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The whole method in one command, on the built-in teaching set (or --data): negatives,
    /// teacher, dark examples, every method over 3 seeds, the comparison and the web assets.
    Demo(demo::DemoArgs),
    /// Embed texts (one per line) with a Hugging Face / sentence-transformers model folder.
    Embed(embed::EmbedArgs),
    /// Score a TREC run file, or a model's exact dense retrieval, against a BEIR folder's qrels
    /// (trec_eval's measures).
    Eval(eval::EvalArgs),
    /// Measure encoding speed (passages/s) of each backend on real passages.
    Bench(bench::BenchArgs),
    /// Summarise trained runs: mean ± s.d. per method (Markdown, JSON) and a dev nDCG@10 plot (SVG).
    Report(report::ReportArgs),
    /// Measure training speed (pairs/s: forward + backward + AdamW) of each backend.
    BenchTrain(bench_train::BenchTrainArgs),
    /// Train a cross-encoder teacher, cache a teacher's scores and dark examples, rerank with it,
    /// inspect its soft labels.
    #[command(subcommand)]
    Teacher(teacher::TeacherCommand),
    /// Distil the teacher's cached scores into a dual-encoder student (config file).
    Distill(distill::DistillArgs),
    /// Mine hard negatives (BM25 or a dense model) for the queries of a split.
    Negatives(negatives::NegativesArgs),
    /// Write a generated teaching set: a BEIR folder, its README and a WordPiece tokenizer.
    TeachingSet(teaching::TeachingArgs),
    /// Write the browser demo's assets: models (f16), examples, search corpus, report.
    ExportWeb(export_web::ExportWebArgs),
    /// Teacher and student soft labels over a query's candidates and dark examples (the demo's lab).
    SoftLabels(soft_labels::SoftLabelsArgs),
}

/// A model and how to run it, as the commands that encode texts use it.
#[derive(Debug, Clone)]
pub struct ModelArgs {
    pub model: PathBuf,
    pub batch_size: usize,
    pub max_length: Option<usize>,
    pub layers: Option<usize>,
    pub backend: Backend,
}

/// The encoder flags of `embed`, `eval --model` and `negatives --method dense`, declared once.
/// Optional so that a command can refuse them where no model runs.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct EncoderFlags {
    /// Texts per forward pass [default: 32].
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// Truncate texts to this many tokens [default: the model's max_seq_length].
    #[arg(long, value_name = "N")]
    pub max_length: Option<usize>,
    /// Use only the model's first K transformer layers, as a student with `layers = K` starts
    /// (e.g. to measure that student untrained).
    #[arg(long, value_name = "K")]
    pub layers: Option<usize>,
    /// Compute backend [default: flex].
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
}

impl EncoderFlags {
    /// The first flag given, by name, of `others` and then these, for the error of a command
    /// (or mode) that runs no model.
    pub fn first_given(&self, others: &[(&'static str, bool)]) -> Option<&'static str> {
        others
            .iter()
            .copied()
            .chain([
                ("--batch-size", self.batch_size.is_some()),
                ("--max-length", self.max_length.is_some()),
                ("--layers", self.layers.is_some()),
                ("--backend", self.backend.is_some()),
            ])
            .find_map(|(flag, given)| given.then_some(flag))
    }

    pub fn with_model(&self, model: PathBuf) -> ModelArgs {
        ModelArgs {
            model,
            batch_size: self.batch_size.unwrap_or(32),
            max_length: self.max_length,
            layers: self.layers,
            backend: self.backend.unwrap_or(Backend::Flex),
        }
    }
}

/// Runs one command given as its arguments (without `adam`), as `adam demo` does for each stage.
pub fn run_command(args: &[&str]) -> anyhow::Result<()> {
    let cli = Cli::try_parse_from(std::iter::once("adam").chain(args.iter().copied()))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    dispatch(cli.command)
}

fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Demo(args) => demo::run(args),
        Command::Embed(args) => embed::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Report(args) => report::run(args),
        Command::BenchTrain(args) => bench_train::run(args),
        Command::Teacher(command) => teacher::run(command),
        Command::Distill(args) => distill::run(args),
        Command::Negatives(args) => negatives::run(args),
        Command::TeachingSet(args) => teaching::run(args),
        Command::ExportWeb(args) => export_web::run(args),
        Command::SoftLabels(args) => soft_labels::run(args),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = dispatch(cli.command);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
