//! `adam teacher score`: the teacher's scores of positives, hard negatives and adaptive dark
//! examples, cached (resumably) for `adam distill`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use adam_core::dark::{DarkConfig, DarkInstance, TeacherScores, generate_adaptive, mix_seed};
use adam_core::tokenize::TextTokenizer;
use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::backend::Backend;
use crate::instances::{Collection, Instance, InstanceArgs, PieceCache, key_of, sample_negatives};
use crate::io::AtomicFile;
use crate::progress;
use crate::score_cache::{self, CacheHeader, CacheRecord, ScoredDoc};
use crate::shard::{self, Shard};
use crate::teacher_model::{PieceTranslator, TeacherModel, TeacherModelArgs};

#[derive(clap::Args, Debug)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub teacher: TeacherModelArgs,
    /// The student's tokenizer.json, when its vocabulary is not the teacher's (e.g. an MPNet
    /// teacher for a BERT student): dark examples are then made in the student's word pieces,
    /// which `adam distill` reads, and carried into the teacher's to be scored.
    #[arg(long, value_name = "FILE")]
    pub student_tokenizer: Option<PathBuf>,
    #[command(flatten)]
    pub instances: InstanceArgs,
    /// Cache file (JSONL) to write; an existing one from the same settings is resumed.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// Distillation config (TOML) whose [adam.dark] section sets the dark examples
    /// (default: METHOD.md's defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Hard negatives scored per query (the hardest; topped up with random documents).
    #[arg(long, default_value_t = 7)]
    pub negatives_per_query: usize,
    /// Pairs per teacher forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Queries whose dark-example searches run together.
    #[arg(long, default_value_t = 16)]
    pub query_batch: usize,
    /// Tokens per (query, passage) pair (a dual encoder: per text).
    #[arg(long, default_value_t = 256)]
    pub max_length: usize,
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
    /// Score only shard I of N of the queries (in whole --query-batch groups) into
    /// OUTPUT.shard-I-of-N, resumable like OUTPUT; run each shard anywhere, then --merge N.
    #[arg(long, value_name = "I/N", conflicts_with = "merge")]
    pub shard: Option<Shard>,
    /// Check that the N shard caches of OUTPUT hold every query once, with one header, and join
    /// them into OUTPUT: the same bytes as one uninterrupted unsharded run. Loads no model.
    #[arg(long, value_name = "N")]
    pub merge: Option<usize>,
}

/// Only the `[adam.dark]` table of a distillation config matters to `teacher score`.
#[derive(Deserialize, Default)]
struct DarkOnly {
    #[serde(default)]
    adam: AdamDarkOnly,
}

#[derive(Deserialize, Default)]
struct AdamDarkOnly {
    #[serde(default)]
    dark: DarkConfig,
}

pub fn run(args: ScoreArgs) -> Result<()> {
    let dark = match &args.config {
        Some(path) => {
            // The full config is validated by `adam distill`; here only the dark section is read.
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let value: toml::Table = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let only: DarkOnly = toml::Value::Table(value)
                .try_into()
                .map_err(|e| anyhow::anyhow!("{}: [adam.dark]: {e}", path.display()))?;
            only.adam.dark
        }
        None => DarkConfig::default(),
    };
    dark.validate().map_err(|e| anyhow::anyhow!("adam.dark.{e}"))?;
    if args.batch_size == 0 || args.query_batch == 0 {
        bail!("--batch-size and --query-batch must be at least 1");
    }
    let (beir, instances) = args.instances.load()?;
    if let Some(count) = args.merge {
        return merge(&args, &beir, &instances, count);
    }
    // A shard is a run of whole query batches, so it scores the batches an unsharded run scores.
    let (instances, output) = match args.shard {
        Some(shard) => {
            let range = shard.items(instances.len(), args.query_batch);
            eprintln!("shard {shard}: queries {}..{} of {}", range.start + 1, range.end, instances.len());
            (instances[range].to_vec(), shard.path(&args.output))
        }
        None => (instances, args.output.clone()),
    };
    let device = args.backend.device()?;
    let teacher = TeacherModel::load(&args.teacher, &device, args.max_length, None)?;
    let student_tokenizer = match &args.student_tokenizer {
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            Some(TextTokenizer::from_bytes(&bytes, path, 512)?)
        }
        None => None,
    };
    // Dark examples are word pieces of `tokenizer`: the student's when given, else the teacher's.
    let translator = student_tokenizer
        .as_ref()
        .filter(|s| !s.same_vocab(teacher.tokenizer()))
        .map(|from| PieceTranslator { from, to: teacher.tokenizer() });
    let tokenizer = student_tokenizer.as_ref().unwrap_or(teacher.tokenizer());
    let header = CacheHeader {
        adam_teacher_scores: 1,
        teacher: args.teacher.model.display().to_string(),
        teacher_kind: teacher.dual_scale().map(|_| "dual-encoder".to_string()),
        dual_scale: teacher.dual_scale(),
        max_length: teacher.tokenizer().max_length(),
        negatives_per_query: args.negatives_per_query,
        vocab_size: tokenizer.vocab_size(),
        vocab_hash: Some(score_cache::vocab_hash(tokenizer)),
        dark_tokenizer: translator.as_ref().and(args.student_tokenizer.as_ref()).map(|p| p.display().to_string()),
        dark: dark.clone(),
    };
    let existing = score_cache::read(&output)?;
    if let Some(cache) = &existing
        && let Some(diff) = score_cache::header_difference(&cache.header, &header)
    {
        bail!(
            "{} was written with other settings ({diff}); use another --output or the same settings",
            output.display()
        );
    }
    let done: HashSet<String> =
        existing.as_ref().map(|c| c.records.iter().map(|r| r.query_id.clone()).collect()).unwrap_or_default();
    let todo: Vec<&Instance> = instances.iter().filter(|i| !done.contains(&beir.queries[i.query].id)).collect();
    let mut writer = score_cache::Writer::open(&output, &header, existing.as_ref())?;
    if !done.is_empty() {
        eprintln!("resuming {}: {} queries done, {} to go", output.display(), done.len(), todo.len());
    }
    let special = tokenizer.special();
    let mut pieces = PieceCache::new(tokenizer);
    // The teacher's own pieces of the same texts, when they differ from the dark examples'.
    let mut teacher_pieces = PieceCache::new(teacher.tokenizer());
    let to_teacher = |ids: &[u32]| -> Result<Vec<u32>> {
        match &translator {
            Some(t) => t.translate(ids),
            None => Ok(ids.to_vec()),
        }
    };
    let bar = progress::bar(todo.len() as u64, "scoring queries");
    let start = Instant::now();
    for chunk in todo.chunks(args.query_batch) {
        // Original candidates: positives, then the hardest negatives (random top-up if short).
        let mut candidates: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
        for inst in chunk {
            let key = key_of(&beir.queries[inst.query].id);
            let mut negatives: Vec<usize> = inst.negatives.iter().copied().take(args.negatives_per_query).collect();
            if negatives.len() < args.negatives_per_query {
                let short = Instance { negatives: Vec::new(), ..(*inst).clone() };
                for d in
                    sample_negatives(&short, args.negatives_per_query, 0, beir.corpus.len(), mix_seed(dark.seed, key))
                {
                    if negatives.len() < args.negatives_per_query && !negatives.contains(&d) {
                        negatives.push(d);
                    }
                }
            }
            candidates.push((inst.positives.clone(), negatives));
        }
        let mut owned: Vec<(usize, usize)> = Vec::new(); // (query, doc) in scoring order
        for (inst, (pos, neg)) in chunk.iter().zip(&candidates) {
            owned.extend(pos.iter().chain(neg).map(|&d| (inst.query, d)));
        }
        for &(q, d) in &owned {
            pieces.query(&beir, q)?;
            pieces.doc(&beir, d)?;
        }
        let scoring = if translator.is_some() { &mut teacher_pieces } else { &mut pieces };
        for &(q, d) in &owned {
            scoring.query(&beir, q)?;
            scoring.doc(&beir, d)?;
        }
        let scoring = if translator.is_some() { &teacher_pieces } else { &pieces };
        let pairs: Vec<(&[u32], &[u32])> =
            owned.iter().map(|&(q, d)| (&scoring.queries[&q][..], &scoring.docs[&d][..])).collect();
        let flat = teacher.score_piece_pairs(&device, &pairs, args.batch_size)?;
        let mut flat = flat.into_iter();
        let mut scored: Vec<(Vec<f32>, Vec<f32>)> = Vec::new();
        for (pos, neg) in &candidates {
            let p: Vec<f32> = flat.by_ref().take(pos.len()).collect();
            let n: Vec<f32> = flat.by_ref().take(neg.len()).collect();
            scored.push((p, n));
        }
        // Dark examples are made from each query's best-scored positive.
        let best: Vec<usize> = scored
            .iter()
            .map(|(p, _)| (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b]).then(b.cmp(&a))).unwrap_or(0))
            .collect();
        let negative_pieces: Vec<Vec<Vec<u32>>> =
            candidates.iter().map(|(_, neg)| neg.iter().map(|d| pieces.docs[d].clone()).collect()).collect();
        let dark_instances: Vec<DarkInstance<'_>> = chunk
            .iter()
            .enumerate()
            .map(|(i, inst)| DarkInstance {
                query: &pieces.queries[&inst.query],
                positive: &pieces.docs[&candidates[i].0[best[i]]],
                negatives: &negative_pieces[i],
                key: key_of(&beir.queries[inst.query].id),
            })
            .collect();
        let teacher_scores: Vec<TeacherScores> = scored
            .iter()
            .zip(&best)
            .map(|((p, n), &b)| TeacherScores { positive: p[b], negatives: n.clone() })
            .collect();
        let mut failure = None;
        let teacher_queries: Vec<&[u32]> = chunk
            .iter()
            .zip(&dark_instances)
            .map(|(inst, d)| if translator.is_some() { &teacher_pieces.queries[&inst.query][..] } else { d.query })
            .collect();
        let dark_examples = generate_adaptive(&dark_instances, &teacher_scores, &special, &dark, |requests| {
            let scored = requests
                .iter()
                .map(|(_, ex)| to_teacher(&ex.ids))
                .collect::<Result<Vec<Vec<u32>>>>()
                .and_then(|translated| {
                    let pairs: Vec<(&[u32], &[u32])> =
                        requests.iter().zip(&translated).map(|((i, _), ex)| (teacher_queries[*i], &ex[..])).collect();
                    teacher.score_piece_pairs(&device, &pairs, args.batch_size)
                });
            match scored {
                Ok(s) => s,
                Err(e) => {
                    failure = Some(e);
                    vec![f32::NAN; requests.len()]
                }
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
        for (i, inst) in chunk.iter().enumerate() {
            let (pos, neg) = &candidates[i];
            let doc = |d: usize, s: f32| ScoredDoc { doc_id: beir.corpus[d].id.clone(), score: s };
            writer.append(&CacheRecord {
                query_id: beir.queries[inst.query].id.clone(),
                positives: pos.iter().zip(&scored[i].0).map(|(&d, &s)| doc(d, s)).collect(),
                negatives: neg.iter().zip(&scored[i].1).map(|(&d, &s)| doc(d, s)).collect(),
                dark_positive: beir.corpus[pos[best[i]]].id.clone(),
                dark: dark_examples[i].clone(),
            })?;
        }
        writer.sync()?;
        teacher.forget();
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    eprintln!(
        "scored {} queries in {:.1} s; cache {} has {}",
        todo.len(),
        start.elapsed().as_secs_f64(),
        output.display(),
        done.len() + todo.len()
    );
    Ok(())
}

/// `--merge N`: the shard caches' records in the order of the instances, under their one header.
fn merge(args: &ScoreArgs, beir: &Collection, instances: &[Instance], count: usize) -> Result<()> {
    let paths = shard::existing_paths(&args.output, count, "`adam teacher score` (the same arguments)")?;
    let position: HashMap<&str, usize> =
        instances.iter().enumerate().map(|(i, inst)| (beir.queries[inst.query].id.as_str(), i)).collect();
    let mut header: Option<(CacheHeader, &PathBuf)> = None;
    let mut found: Vec<Option<(CacheRecord, &PathBuf)>> = vec![None; instances.len()];
    for path in &paths {
        let cache = score_cache::read_complete(path)?;
        match &header {
            None => header = Some((cache.header.clone(), path)),
            Some((first, first_path)) => {
                if let Some(diff) = score_cache::header_difference(first, &cache.header) {
                    bail!("{} and {} were scored with other settings ({diff})", first_path.display(), path.display());
                }
            }
        }
        for record in cache.records {
            let Some(&i) = position.get(record.query_id.as_str()) else {
                bail!(
                    "{}: query `{}` is not among the queries of these arguments (--data, --negatives, --split, --max-queries)",
                    path.display(),
                    record.query_id
                );
            };
            if let Some((_, other)) = &found[i] {
                bail!("query `{}` is in {} and in {}", record.query_id, other.display(), path.display());
            }
            found[i] = Some((record, path));
        }
    }
    let missing: Vec<&str> = found
        .iter()
        .zip(instances)
        .filter(|(f, _)| f.is_none())
        .map(|(_, inst)| beir.queries[inst.query].id.as_str())
        .collect();
    if !missing.is_empty() {
        bail!(
            "cannot merge {}: {} queries are in no shard (first: `{}`); finish every shard (rerun it with the same arguments: it resumes)",
            args.output.display(),
            missing.len(),
            missing[0]
        );
    }
    let (header, _) = header.expect("at least one shard");
    let mut out = AtomicFile::create(&args.output)?;
    score_cache::write_lines(out.writer(), &header, found.iter().map(|f| &f.as_ref().expect("checked").0))
        .with_context(|| format!("writing {}", args.output.display()))?;
    out.commit()?;
    eprintln!("merged {count} shards ({} queries) into {}", instances.len(), args.output.display());
    Ok(())
}
