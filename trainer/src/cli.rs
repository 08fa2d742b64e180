//! The command line: `Cli` parses `adam`'s arguments and [`run_command`] runs a command.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands::{
    bench, bench_index, bench_train, demo, distill, embed, eval, export_web, index, negatives, report, soft_labels,
    teacher, teaching_set,
};

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
    /// Put a model's corpus vectors (with their ids) into an approximate-nearest-neighbour index
    /// (USearch's HNSW) that `adam eval --index` retrieves through.
    Index(index::IndexArgs),
    /// Measure encoding speed (passages/s) of each backend on real passages.
    Bench(bench::BenchArgs),
    /// Summarise trained runs: mean ± s.d. per method (Markdown, JSON) and a dev nDCG@10 plot (SVG).
    Report(report::ReportArgs),
    /// Measure training speed (pairs/s: forward + backward + AdamW) of each backend.
    BenchTrain(bench_train::BenchTrainArgs),
    /// Measure the approximate-nearest-neighbour index on synthetic vectors: build time, memory,
    /// queries/s and recall against the exact search.
    BenchIndex(bench_index::BenchIndexArgs),
    /// Train a cross-encoder teacher, cache a teacher's scores and dark examples, rerank with it,
    /// inspect its soft labels.
    #[command(subcommand)]
    Teacher(teacher::TeacherCommand),
    /// Distil the teacher's cached scores into a dual-encoder student (config file).
    Distill(distill::DistillArgs),
    /// Mine hard negatives (BM25 or a dense model) for the queries of a split.
    Negatives(negatives::NegativesArgs),
    /// Write a generated teaching set: a BEIR folder, its README and a WordPiece tokenizer.
    TeachingSet(teaching_set::TeachingArgs),
    /// Write the browser demo's assets: models (f16), examples, search corpus, report.
    ExportWeb(export_web::ExportWebArgs),
    /// Teacher and student soft labels over a query's candidates and dark examples (the demo's lab).
    SoftLabels(soft_labels::SoftLabelsArgs),
}

/// Runs one command given as its arguments (without `adam`), as `adam demo` does for each stage.
pub fn run_command(args: &[&str]) -> anyhow::Result<()> {
    let cli =
        Cli::try_parse_from(std::iter::once("adam").chain(args.iter().copied())).map_err(|e| anyhow::anyhow!("{e}"))?;
    dispatch(cli.command)
}

fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Demo(args) => demo::run(args),
        Command::Embed(args) => embed::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Index(args) => index::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Report(args) => report::run(args),
        Command::BenchTrain(args) => bench_train::run(args),
        Command::BenchIndex(args) => bench_index::run(args),
        Command::Teacher(command) => teacher::run(command),
        Command::Distill(args) => distill::run(args),
        Command::Negatives(args) => negatives::run(args),
        Command::TeachingSet(args) => teaching_set::run(args),
        Command::ExportWeb(args) => export_web::run(args),
        Command::SoftLabels(args) => soft_labels::run(args),
    }
}

/// The `adam` executable: parses the process's arguments, runs the command, and prints its error.
pub fn main() -> ExitCode {
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
