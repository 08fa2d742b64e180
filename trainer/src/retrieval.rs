//! Exact dense retrieval: embed the corpus and the queries, rank by dot product (cosine for a
//! normalising encoder), keep the top `depth` per query.

use adam_core::data::{Document, Query, Run, RunEntry};
use adam_core::encoder::SentenceEncoder;
use anyhow::{Result, bail};
use burn::tensor::{Tensor, TensorData};

/// Texts embedded in batches of `batch_size`, longest first (less padding), returned in input
/// order as one row-major `[n, dim]` matrix.
fn embed_all(encoder: &SentenceEncoder, texts: &[String], batch_size: usize) -> Result<Vec<f32>> {
    let dim = encoder.dim();
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(texts[i].len()));
    let mut out = vec![0.0f32; texts.len() * dim];
    for chunk in order.chunks(batch_size.max(1)) {
        let refs: Vec<&str> = chunk.iter().map(|&i| texts[i].as_str()).collect();
        for (&i, v) in chunk.iter().zip(encoder.embed(&refs)?) {
            out[i * dim..(i + 1) * dim].copy_from_slice(&v);
        }
    }
    Ok(out)
}

/// The top `depth` documents of `corpus` for each query, by the dot product of their vectors.
pub fn retrieve(
    encoder: &SentenceEncoder,
    corpus: &[Document],
    queries: &[Query],
    depth: usize,
    batch_size: usize,
) -> Result<Run> {
    if corpus.is_empty() {
        bail!("retrieval over an empty corpus");
    }
    if depth == 0 {
        bail!("retrieval depth must be at least 1");
    }
    let dim = encoder.dim();
    let docs: Vec<String> = corpus.iter().map(Document::full_text).collect();
    let doc_vectors = embed_all(encoder, &docs, batch_size)?;
    let texts: Vec<String> = queries.iter().map(|q| q.text.clone()).collect();
    let query_vectors = embed_all(encoder, &texts, batch_size)?;
    let device = &encoder.device;
    let doc_matrix =
        Tensor::<2>::from_data(TensorData::new(doc_vectors, [corpus.len(), dim]), device).transpose();
    let depth = depth.min(corpus.len());
    let mut run = Run::new();
    // Queries in blocks keep the score matrix small ([block, corpus]).
    const BLOCK: usize = 64;
    for (b, block) in queries.chunks(BLOCK).enumerate() {
        let rows = &query_vectors[b * BLOCK * dim..(b * BLOCK + block.len()) * dim];
        let q = Tensor::<2>::from_data(TensorData::new(rows.to_vec(), [block.len(), dim]), device);
        let scores: Vec<f32> = q
            .matmul(doc_matrix.clone())
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| anyhow::anyhow!("reading retrieval scores: {e:?}"))?;
        for (row, query) in scores.chunks(corpus.len()).zip(block) {
            let mut idx: Vec<usize> = (0..corpus.len()).collect();
            let by_score = |a: &usize, b: &usize| row[*b].total_cmp(&row[*a]).then(a.cmp(b));
            if depth < idx.len() {
                idx.select_nth_unstable_by(depth - 1, by_score);
                idx.truncate(depth);
            }
            idx.sort_by(by_score);
            run.insert(
                query.id.clone(),
                idx.into_iter()
                    .map(|i| RunEntry { doc: corpus[i].id.clone(), score: row[i] as f64 })
                    .collect(),
            );
        }
    }
    Ok(run)
}
