//! `adam teaching-set`: write a generated retrieval world (BEIR folder, README, tokenizer).

use std::io::Write;
use std::path::PathBuf;

use adam_core::teaching::{TeachingConfig, TeachingSet, World};
use adam_core::wordpiece::{WordPieceConfig, to_json, train_wordpiece};
use anyhow::{Context, Result, anyhow};

use crate::io::AtomicFile;

#[derive(clap::Args, Debug)]
pub struct TeachingArgs {
    /// Folder to write (created if missing; files of the same name are replaced).
    #[arg(long, value_name = "DIR")]
    pub output: PathBuf,
    /// Seed: the same seed and sizes give byte-identical files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Passages in the corpus.
    #[arg(long, default_value_t = 2000, value_name = "N")]
    pub passages: usize,
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub train_queries: usize,
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub dev_queries: usize,
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub test_queries: usize,
    /// How values are written: `lexical` (one word per value, BM25's world; the demo's) or
    /// `paraphrase` (three forms per value drawn independently by queries and passages, plus
    /// negations and other creatures' values: word overlap neither necessary nor sufficient).
    #[arg(long, default_value = "lexical", value_parser = ["lexical", "paraphrase"])]
    pub world: String,
    /// Percent of creature passages followed by a near twin: another creature's passage, written
    /// with the same draws, that differs in one stated value and often names the original value
    /// where it does not count (ruled out, or given to the first creature). Extra passages, for a
    /// world that trains a teacher: minimal pairs that show which value belongs to whom.
    /// Paraphrase world only.
    #[arg(long, default_value_t = 0, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub near_twins: u8,
    /// Also write `profiles.jsonl`: the structured world behind the text (each value's forms, each
    /// passage's stated and ruled-out values, each query's asked ones), for teachers that learn from
    /// privileged labels and for analysis. Retrievers must not read it.
    #[arg(long)]
    pub profiles: bool,
    /// WordPiece vocabulary size of the tokenizer.json trained on the set.
    #[arg(long, default_value_t = 2000, value_name = "N")]
    pub vocab_size: usize,
}

pub fn run(args: TeachingArgs) -> Result<()> {
    let config = TeachingConfig {
        seed: args.seed,
        passages: args.passages,
        train_queries: args.train_queries,
        dev_queries: args.dev_queries,
        test_queries: args.test_queries,
        world: if args.world == "paraphrase" { World::Paraphrase } else { World::Lexical },
        twin_percent: usize::from(args.near_twins),
    };
    let set = TeachingSet::generate(&config).map_err(|e| anyhow!(e))?;
    let tokenizer =
        train_wordpiece(set.texts(), &WordPieceConfig { vocab_size: args.vocab_size, ..Default::default() })?;
    let mut files = set.files();
    files.push(("tokenizer.json".into(), to_json(&tokenizer)?));
    if args.profiles {
        files.push(("profiles.jsonl".into(), set.profiles()));
    }

    std::fs::create_dir_all(args.output.join("qrels"))
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    for (rel, content) in &files {
        let path = args.output.join(rel);
        let mut file = AtomicFile::create(&path)?;
        file.writer().write_all(content.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
        file.commit()?;
    }
    let count = |s| set.queries.iter().filter(|q| q.split == s).count();
    use adam_core::teaching::Split;
    eprintln!(
        "wrote {} passages, {} / {} / {} train / dev / test queries and a {}-piece tokenizer.json to {}",
        set.passages.len(),
        count(Split::Train),
        count(Split::Dev),
        count(Split::Test),
        tokenizer.get_vocab_size(true),
        args.output.display()
    );
    Ok(())
}
