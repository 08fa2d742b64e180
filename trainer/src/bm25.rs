//! BM25 first-stage retrieval for mining negatives (the `bm25` crate). It returns, per query,
//! the top documents as (corpus index, score), best first, ties broken as trec_eval breaks them
//! (the larger document id first, as `retrieval::search` does), so a run file written from it
//! ranks exactly as `adam eval` scores it.

use std::cmp::Ordering;

use adam_core::data::Document;
use bm25::{Embedder, EmbedderBuilder, Language, Scorer};
use indicatif::ProgressBar;

/// Best first: higher score, then (trec_eval's order for ties) the larger document id.
pub fn rank_order(docs: &[Document], a: &(usize, f32), b: &(usize, f32)) -> Ordering {
    b.1.total_cmp(&a.1).then_with(|| docs[b.0].id.cmp(&docs[a.0].id))
}

/// Okapi BM25 with Lucene's idf, `ln(1 + (N - df + 0.5) / (df + 0.5))`, and term-frequency
/// saturation `tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl))`, summed over the query's terms
/// (a repeated query term counts each time, as in Lucene). Text: Unicode words, lowercased,
/// transliterated to ASCII, English stop words removed, Snowball-stemmed (the crate's default
/// tokenizer); document lengths and `avgdl` count the remaining terms. Title and text are indexed
/// together (BEIR's convention).
pub struct Bm25 {
    embedder: Embedder<u64>,
    scorer: Scorer<usize, u64>,
}

impl Bm25 {
    pub fn index(docs: &[Document], k1: f32, b: f32, progress: &ProgressBar) -> Self {
        let texts: Vec<String> = docs.iter().map(Document::full_text).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        // 64-bit term hashes: a collision between two terms is out of reach for any corpus here.
        let embedder: Embedder<u64> =
            EmbedderBuilder::<u64>::with_fit_to_corpus(Language::English, &refs).k1(k1).b(b).build();
        let mut scorer = Scorer::<usize, u64>::new();
        for (i, text) in refs.iter().enumerate() {
            scorer.upsert(&i, embedder.embed(text));
            progress.inc(1);
        }
        Self { embedder, scorer }
    }

    /// The top `depth` documents for `query` (documents sharing no term score 0 and are left out).
    pub fn search(&self, docs: &[Document], query: &str, depth: usize) -> Vec<(usize, f32)> {
        let mut hits: Vec<(usize, f32)> =
            self.scorer.matches(&self.embedder.embed(query)).into_iter().map(|d| (d.id, d.score)).collect();
        hits.sort_by(|a, b| rank_order(docs, a, b));
        hits.truncate(depth);
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, text: &str) -> Document {
        Document { id: id.into(), title: String::new(), text: text.into() }
    }

    /// BM25 by hand on a three-document corpus: Lucene idf, k1/b saturation, stemming.
    #[test]
    fn bm25_scores_match_the_formula() {
        let docs = vec![
            doc("a", "flea life cycle"),
            doc("b", "the life of a flea and its fleas"),
            doc("c", "concrete flooring cost"),
        ];
        let (k1, b) = (0.9f32, 0.4f32);
        let bm = Bm25::index(&docs, k1, b, &ProgressBar::hidden());
        let hits = bm.search(&docs, "Fleas", 10);
        // Terms after stop words and stemming: a: flea life cycl (3); b: life flea flea (3); c: 3.
        let avgdl = 3.0f32;
        let idf = (1.0f32 + (3.0 - 2.0 + 0.5) / (2.0 + 0.5)).ln();
        let tf = |f: f32, dl: f32| f * (k1 + 1.0) / (f + k1 * (1.0 - b + b * dl / avgdl));
        assert_eq!(hits.len(), 2, "{hits:?}");
        assert_eq!(hits[0].0, 1, "two occurrences beat one");
        assert!((hits[0].1 - idf * tf(2.0, 3.0)).abs() < 1e-5, "{hits:?}");
        assert!((hits[1].1 - idf * tf(1.0, 3.0)).abs() < 1e-5, "{hits:?}");
    }

    #[test]
    fn ties_go_to_the_larger_id_as_in_trec_eval() {
        let docs = vec![doc("d1", "same words here"), doc("d2", "same words here"), doc("d3", "other")];
        let bm = Bm25::index(&docs, 0.9, 0.4, &ProgressBar::hidden());
        let hits = bm.search(&docs, "same words", 10);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![1, 0]);
    }
}
