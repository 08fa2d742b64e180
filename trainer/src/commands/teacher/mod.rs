//! `adam teacher train | pretrain | score | rerank | inspect`: fine-tune a cross-encoder teacher with
//! listwise cross-entropy (after masked-language pre-training, for one from scratch), cache its scores (and the dark examples it selects) for distillation, rerank a
//! run with it, and inspect what a cache teaches.

use anyhow::Result;

pub mod inspect;
pub mod pretrain;
pub mod rerank;
pub mod score;
pub mod train;

#[derive(clap::Subcommand)]
pub enum TeacherCommand {
    /// Fine-tune a cross-encoder with listwise cross-entropy over (positive, negatives) groups.
    Train(Box<train::TrainArgs>),
    /// Pre-train a BERT from scratch as a masked language model on a collection's passages and
    /// queries: a start for `teacher train --model DIR --new-head` that knows the words.
    Pretrain(pretrain::PretrainArgs),
    /// Score positives, hard negatives and adaptive dark examples (a cross-encoder or a dual
    /// encoder as the teacher); cache them for `adam distill`.
    Score(score::ScoreArgs),
    /// Rerank the top of a TREC run with the teacher.
    Rerank(rerank::RerankArgs),
    /// What a score cache teaches: the teacher's soft labels on positives, mined negatives and
    /// each kind of dark example (table, JSON and histograms as SVG).
    Inspect(inspect::InspectArgs),
}

pub fn run(command: TeacherCommand) -> Result<()> {
    match command {
        TeacherCommand::Train(args) => train::run(*args),
        TeacherCommand::Pretrain(args) => pretrain::run(args),
        TeacherCommand::Score(args) => score::run(args),
        TeacherCommand::Rerank(args) => rerank::run(args),
        TeacherCommand::Inspect(args) => inspect::run(args),
    }
}
