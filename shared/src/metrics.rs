//! Retrieval measures with trec_eval's semantics, so numbers match published ones:
//! - ranking: by score descending, ties broken by document id descending (byte order), as
//!   trec_eval sorts; scores compare as f32, as trec_eval 9 (and pytrec_eval) store them, so
//!   scores equal in f32 are ties; the run file's rank column is ignored;
//! - binary measures (MRR@10, recall@k, MAP) count grades >= `rel_threshold` as relevant;
//! - nDCG@10 uses the graded judgements as gains (grades <= 0 give nothing), ideal ranking from
//!   all positive grades in the qrels, log2(rank + 1) discount;
//! - the mean is over the queries present in both the run and the qrels.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::data::{Qrels, Run, RunEntry};

/// The measures `adam eval` reports, in its JSON key names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Measures {
    #[serde(rename = "ndcg@10")]
    pub ndcg_10: f64,
    #[serde(rename = "mrr@10")]
    pub mrr_10: f64,
    #[serde(rename = "recall@10")]
    pub recall_10: f64,
    #[serde(rename = "recall@100")]
    pub recall_100: f64,
    pub map: f64,
}

impl Measures {
    pub const NAMES: [&'static str; 5] = ["ndcg@10", "mrr@10", "recall@10", "recall@100", "map"];

    pub fn values(&self) -> [f64; 5] {
        [self.ndcg_10, self.mrr_10, self.recall_10, self.recall_100, self.map]
    }

    /// Name → value, with the names of [`Self::NAMES`] (what training reports store).
    pub fn to_map(&self) -> BTreeMap<String, f64> {
        Self::NAMES.iter().map(|n| n.to_string()).zip(self.values()).collect()
    }
}

/// Per-query measures and their mean.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Evaluation {
    pub mean: Measures,
    pub per_query: BTreeMap<String, Measures>,
}

/// Sorts a query's retrieved documents the way trec_eval does.
pub fn trec_order(entries: &[RunEntry]) -> Vec<&RunEntry> {
    let mut sorted: Vec<&RunEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| {
        (b.score as f32).total_cmp(&(a.score as f32)).then_with(|| b.doc.as_bytes().cmp(a.doc.as_bytes()))
    });
    sorted
}

/// Measures of one query: `ranked` in trec_eval order, `judged` its qrels.
pub fn measure_query(
    ranked: &[&RunEntry],
    judged: &std::collections::HashMap<String, i32>,
    rel_threshold: i32,
) -> Measures {
    let grade = |doc: &str| judged.get(doc).copied().unwrap_or(0);
    // Negative grades mean "judged, not assessed" in trec_eval: never relevant.
    let relevant = |g: i32| g >= rel_threshold && g >= 0;
    let num_rel = judged.values().filter(|&&g| relevant(g)).count();

    let mut m = Measures::default();
    let mut found = 0usize;
    let mut precision_sum = 0.0;
    for (i, e) in ranked.iter().enumerate() {
        let rank = i + 1;
        if relevant(grade(&e.doc)) {
            found += 1;
            precision_sum += found as f64 / rank as f64;
            if rank <= 10 && m.mrr_10 == 0.0 {
                m.mrr_10 = 1.0 / rank as f64;
            }
        }
        if rank == 10 {
            m.recall_10 = found as f64;
        }
        if rank == 100 {
            m.recall_100 = found as f64;
        }
    }
    if ranked.len() < 10 {
        m.recall_10 = found as f64;
    }
    if ranked.len() < 100 {
        m.recall_100 = found as f64;
    }
    if num_rel > 0 {
        m.recall_10 /= num_rel as f64;
        m.recall_100 /= num_rel as f64;
        m.map = precision_sum / num_rel as f64;
    } else {
        m.recall_10 = 0.0;
        m.recall_100 = 0.0;
    }

    let discount = |i: usize| 1.0 / ((i + 2) as f64).log2();
    let dcg: f64 = ranked.iter().take(10).enumerate().map(|(i, e)| grade(&e.doc).max(0) as f64 * discount(i)).sum();
    let mut ideal: Vec<i32> = judged.values().copied().filter(|&g| g > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal.iter().take(10).enumerate().map(|(i, &g)| g as f64 * discount(i)).sum();
    m.ndcg_10 = if idcg > 0.0 { dcg / idcg } else { 0.0 };
    m
}

/// Evaluates a run against qrels; queries in only one of them are left out of the mean.
pub fn evaluate(run: &Run, qrels: &Qrels, rel_threshold: i32) -> Evaluation {
    let mut eval = Evaluation::default();
    for (q, entries) in run {
        let Some(judged) = qrels.get(q) else { continue };
        let ranked = trec_order(entries);
        eval.per_query.insert(q.clone(), measure_query(&ranked, judged, rel_threshold));
    }
    let n = eval.per_query.len();
    if n > 0 {
        let mut sums = [0.0f64; 5];
        for m in eval.per_query.values() {
            for (s, v) in sums.iter_mut().zip(m.values()) {
                *s += v;
            }
        }
        let [a, b, c, d, e] = sums.map(|s| s / n as f64);
        eval.mean = Measures { ndcg_10: a, mrr_10: b, recall_10: c, recall_100: d, map: e };
    }
    eval
}
