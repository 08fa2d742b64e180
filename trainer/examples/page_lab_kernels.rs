//! Issue 19, point 2: the page's dark-example lab on a wgpu device, natively, kernel by kernel.
//! It does what the page does for the first example of the end-to-end test's assets: the first
//! soft labels (the teacher on every candidate, the student on them and the query), then four
//! slider moves (a noise ratio one step higher each time; only the candidates not scored before
//! are sent, as the page's caches do), and prints each round's time and tokens (the real ones of
//! those the padded batch multiplies). With a `cubecl.toml` that turns on cubecl's profiling
//! logger in the folder it runs from, it also sums the five rounds'
//! kernel time by kernel family (the logger writes behind the kernels, so rounds cannot be told
//! apart in its file). On Chromium's SwiftShader (its Vulkan driver, which the Vulkan
//! loader takes when told) with the page's kernels:
//!
//!     cd "$(mktemp -d)" && printf '[profiling.logger]\nlevel = "basic"\nfile = "kernels.log"\n' > cubecl.toml
//!     VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json \
//!       cargo run --release --manifest-path /path/to/adam/Cargo.toml --example page_lab_kernels -- ASSETS [burn|ours|narrow [LANES]]
//!
//! ASSETS: the page's asset folder (the end-to-end test exports one to /tmp/adam-test-web/assets);
//! `ours` (the default) switches on the page's SwiftShader kernels (`cube_matmul`), with rows
//! shared across subgroups of LANES units (SwiftShader's: 4) where given; `narrow` the same, each
//! operand read one value a load; `burn` leaves burn's.
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use adam_core::encoder::{CrossEncoder, SentenceEncoder};
use adam_core::loader::{CrossEncoderOptions, LoadOptions, ModelSource};
use adam_core::model::cube_matmul;
use adam_core::softlabels::{self, LabSettings};
use burn::tensor::Device;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let assets = PathBuf::from(args.next().ok_or("usage: page_lab_kernels ASSETS [burn|ours|narrow [LANES]]")?);
    let kernels = args.next().unwrap_or_else(|| "ours".into());
    if !["burn", "ours", "narrow"].contains(&kernels.as_str()) {
        return Err(format!("kernels '{kernels}': burn, ours or narrow").into());
    }
    cube_matmul::use_register_blocks(kernels != "burn");
    cube_matmul::use_wide_loads(kernels != "narrow");
    cube_matmul::use_plane_lanes(args.next().map_or(Ok(1), |l| l.parse())?);
    let device = Device::wgpu_options().init()?;
    let student = SentenceEncoder::load(
        &ModelSource::Dir(assets.join("student")),
        &device,
        &LoadOptions { max_length: Some(256), layers: None },
    )?;
    let teacher = CrossEncoder::load(
        &ModelSource::Dir(assets.join("teacher")),
        &device,
        &CrossEncoderOptions { max_length: Some(256), new_head: false },
    )?;
    let examples: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(assets.join("examples.json"))?)?;
    let example = &examples["examples"][0];
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string).ok_or("examples.json: a text is missing");
    let (t_tok, s_tok) = (&teacher.model.tokenizer, &student.model.tokenizer);
    let query = t_tok.word_pieces(&text(&example["query"])?)?;
    let positive = t_tok.word_pieces(&text(&example["positive"]["text"])?)?;
    let negatives = example["negatives"]
        .as_array()
        .ok_or("examples.json: no negatives")?
        .iter()
        .map(|n| Ok(t_tok.word_pieces(&text(&n["text"])?)?))
        .collect::<Result<Vec<_>, Box<dyn std::error::Error>>>()?;
    let (mut scored, mut encoded) = (HashSet::new(), HashSet::new());
    for (round, mask_ratio) in [0.3f32, 0.35, 0.4, 0.45, 0.5].into_iter().enumerate() {
        let settings = LabSettings { mask_ratio, mix_ratio: 0.3, seed: 42, ..LabSettings::default() };
        let config = settings.dark_config(254);
        let candidates = softlabels::candidates(&query, &positive, &negatives, &t_tok.special(), &config, 0);
        let new: Vec<Vec<u32>> =
            candidates.iter().map(|c| c.ids.clone()).filter(|ids| scored.insert(ids.clone())).collect();
        let start = Instant::now();
        let pairs: Vec<(&[u32], &[u32])> = new.iter().map(|c| (&query[..], &c[..])).collect();
        let pair_batch = t_tok.encode_piece_pairs(&pairs);
        let pair_tokens = tokens(&pair_batch);
        let scores = teacher.score_batch(&pair_batch).into_data().try_to_vec::<f32>()?;
        let teacher_s = start.elapsed().as_secs_f64();
        let mut seqs = vec![s_tok.word_pieces(&text(&example["query"])?)?];
        for ids in &new {
            seqs.push(softlabels::to_student_pieces(ids, t_tok, s_tok, true)?);
        }
        seqs.retain(|s| encoded.insert(s.clone()));
        let refs: Vec<&[u32]> = seqs.iter().map(|s| &s[..]).collect();
        let seq_batch = s_tok.encode_pieces(&refs, usize::MAX);
        let seq_tokens = tokens(&seq_batch);
        let vectors = student.embed_batch(&seq_batch).into_data().try_to_vec::<f32>()?;
        let total_s = start.elapsed().as_secs_f64();
        let what = if round == 0 { "first soft labels" } else { "slider move" };
        println!(
            "round {round} ({what}): teacher {} pairs ({} of {} tokens real) {teacher_s:.2} s, student {} sequences ({} of {}) {:.2} s, {total_s:.2} s ({} scores, {} vector values)",
            new.len(),
            pair_tokens.0,
            pair_tokens.1,
            seqs.len(),
            seq_tokens.0,
            seq_tokens.1,
            total_s - teacher_s,
            scores.len(),
            vectors.len(),
        );
    }
    if let Some(log) = kernel_log() {
        summarise(&log);
    }
    Ok(())
}

/// A batch's real tokens and its tokens with the padding: the products run over the latter.
fn tokens(batch: &adam_core::tokenize::TokenBatch) -> (usize, usize) {
    (batch.attention.iter().filter(|&&a| a == 1).count(), batch.batch * batch.seq_len)
}

/// The profiling logger's lines (`| time | kernel |`), where a cubecl.toml asked for them.
fn kernel_log() -> Option<Vec<String>> {
    let text = std::fs::read_to_string("kernels.log").ok()?;
    Some(text.lines().filter(|l| l.starts_with('|')).map(str::to_string).collect())
}

/// Device time and launches per kernel family (the name without its hash).
fn summarise(lines: &[String]) {
    let mut families: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for line in lines {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let Some((time, name)) = cells.split_first() else { continue };
        let Some(ms) = parse_ms(time) else { continue };
        let name = name.join(" | ");
        let family = name.rsplit_once('_').filter(|(_, h)| h.len() == 8).map_or(name.as_str(), |(f, _)| f);
        let entry = families.entry(family.to_string()).or_default();
        entry.0 += ms;
        entry.1 += 1;
    }
    let total: f64 = families.values().map(|(ms, _)| ms).sum();
    let launches: usize = families.values().map(|(_, n)| n).sum();
    println!("\nthe five rounds: {total:.0} ms of kernels, {launches} launches");
    let mut rows: Vec<_> = families.into_iter().collect();
    rows.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
    for (family, (ms, n)) in rows {
        let family: String = family.chars().take(60).collect();
        println!("{ms:9.1} ms {:5.1} % {n:5}  {family}", 100.0 * ms / total);
    }
}

fn parse_ms(cell: &str) -> Option<f64> {
    let split = cell.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let value: f64 = cell[..split].parse().ok()?;
    let scale = match &cell[split..] {
        "ns" => 1e-6,
        "µs" => 1e-3,
        "ms" => 1.0,
        "s" => 1e3,
        _ => return None,
    };
    Some(value * scale)
}
