//! `adam embed`: texts in (one per line), vectors out (one JSON array per line, same order).
//! Streams in chunks so memory stays flat however large the input; `--shard I/N` and `--merge N`
//! split one input over several processes or machines.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use adam_core::encoder::SentenceEncoder;
use anyhow::{Context, Result, bail};

use crate::io::{AtomicFile, open};
use crate::models::{EncoderFlags, load_encoder};
use crate::progress;
use crate::shard::{self, Shard};

#[derive(clap::Args, Debug)]
pub struct EmbedArgs {
    /// Model folder (config.json, model.safetensors, tokenizer.json, sentence-transformers files).
    #[arg(long, value_name = "DIR", required_unless_present = "merge")]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub encoder: EncoderFlags,
    /// Text file, one text per line (UTF-8). An empty line is embedded as an empty text.
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Output file: one JSON array of floats per input line, in input order.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// Embed only shard I of N (e.g. 2/4: the second quarter of the input, in whole chunks of
    /// 16 batches) into OUTPUT.shard-I-of-N; run each shard anywhere, then --merge N.
    #[arg(long, value_name = "I/N", conflicts_with = "merge")]
    pub shard: Option<Shard>,
    /// Check that the N shard files of OUTPUT are complete for this input and join them into
    /// OUTPUT: the same bytes as one unsharded run (same --batch-size, same kind of processor).
    #[arg(long, value_name = "N")]
    pub merge: Option<usize>,
}

/// Texts read per chunk, as a multiple of the batch size: sorted by length inside a chunk,
/// batches pad less (as sentence-transformers does) while memory stays bounded.
const CHUNK_BATCHES: usize = 16;

pub fn run(args: EmbedArgs) -> Result<()> {
    if let Some(count) = args.merge {
        return merge(&args, count);
    }
    let Some(model_dir) = args.model.clone() else { bail!("give --model DIR") };
    let model = args.encoder.with_model(model_dir);
    let encoder = load_encoder(&model)?;
    let total = count_lines(&args.input)?;
    let chunk_size = model.batch_size * CHUNK_BATCHES;
    // A shard is a run of whole chunks, so its batches are those of the unsharded run.
    let (range, output) = match args.shard {
        Some(shard) => (shard.items(total, chunk_size), shard.path(&args.output)),
        None => (0..total, args.output.clone()),
    };
    let progress = progress::bar(range.len() as u64, "embedding texts");
    let mut out = AtomicFile::create(&output)?;
    let mut chunk: Vec<String> = Vec::with_capacity(chunk_size);
    let mut line = 0;
    for_each_text(&args.input, |text| {
        line += 1;
        if !range.contains(&(line - 1)) {
            return Ok(());
        }
        chunk.push(text);
        if chunk.len() == chunk_size {
            embed_chunk(&encoder, &chunk, model.batch_size, out.writer(), &output)?;
            progress.inc(chunk.len() as u64);
            chunk.clear();
        }
        Ok(())
    })?;
    embed_chunk(&encoder, &chunk, model.batch_size, out.writer(), &output)?;
    progress.inc(chunk.len() as u64);
    progress.finish_and_clear();
    out.commit()?;
    match args.shard {
        Some(shard) => eprintln!(
            "embedded texts {}..{} of {total} (shard {shard}) into {}",
            range.start + 1,
            range.end,
            output.display()
        ),
        None => eprintln!("embedded {total} texts into {}", output.display()),
    }
    Ok(())
}

/// `--merge N`: each shard file must hold exactly its share of the input's lines.
fn merge(args: &EmbedArgs, count: usize) -> Result<()> {
    let paths = shard::existing_paths(&args.output, count, "`adam embed`")?;
    let total = count_lines(&args.input)?;
    let chunk_size = args.encoder.batch_size() * CHUNK_BATCHES;
    let mut out = AtomicFile::create(&args.output)?;
    for (shard, path) in Shard::all(count).zip(&paths) {
        let want = shard.items(total, chunk_size);
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let lines = bytes.iter().filter(|&&b| b == b'\n').count();
        if lines != want.len() || bytes.last().is_some_and(|&b| b != b'\n') {
            bail!(
                "{}: {lines} vectors, but shard {shard} of {} ({total} lines, chunks of {chunk_size}) is lines {}..{} ({}): \
                 was it made from another input or --batch-size? Rerun `adam embed --shard {shard}`",
                path.display(),
                args.input.display(),
                want.start + 1,
                want.end,
                want.len()
            );
        }
        out.writer().write_all(&bytes).with_context(|| format!("writing {}", args.output.display()))?;
    }
    out.commit()?;
    eprintln!("merged {count} shards ({total} vectors) into {}", args.output.display());
    Ok(())
}

/// Each line of `path` as a text (UTF-8 checked, `\r\n` accepted), blank lines included.
fn for_each_text(path: &Path, mut f: impl FnMut(String) -> Result<()>) -> Result<()> {
    for (i, line) in open(path)?.split(b'\n').enumerate() {
        let bytes = line.with_context(|| format!("reading {}", path.display()))?;
        let mut text = String::from_utf8(bytes)
            .map_err(|e| anyhow::anyhow!("{}:{}: not valid UTF-8: {}", path.display(), i + 1, e.utf8_error()))?;
        if text.ends_with('\r') {
            text.pop();
        }
        f(text)?;
    }
    Ok(())
}

fn count_lines(path: &Path) -> Result<usize> {
    let mut n = 0;
    let mut last_was_newline = true;
    let mut reader = open(path)?;
    loop {
        let buf = reader.fill_buf().with_context(|| format!("reading {}", path.display()))?;
        if buf.is_empty() {
            break;
        }
        n += buf.iter().filter(|&&b| b == b'\n').count();
        last_was_newline = buf.last() == Some(&b'\n');
        let len = buf.len();
        reader.consume(len);
    }
    Ok(if last_was_newline { n } else { n + 1 })
}

fn embed_chunk(
    encoder: &SentenceEncoder,
    texts: &[String],
    batch_size: usize,
    out: &mut impl Write,
    out_path: &Path,
) -> Result<()> {
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(texts[i].len()));
    let mut vectors: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
    for batch in order.chunks(batch_size) {
        let refs: Vec<&str> = batch.iter().map(|&i| texts[i].as_str()).collect();
        for (&i, v) in batch.iter().zip(encoder.embed(&refs)?) {
            vectors[i] = v;
        }
    }
    for v in &vectors {
        serde_json::to_writer(&mut *out, v)?;
        out.write_all(b"\n").with_context(|| format!("writing {}", out_path.display()))?;
    }
    Ok(())
}
