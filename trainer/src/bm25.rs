//! A small in-memory BM25 (Lucene's formula, Anserini's `k1 = 0.9`, `b = 0.4`) to mine hard
//! negatives: the passages a lexical retriever ranks high that are not judged relevant.

use std::collections::HashMap;

/// Lucene's English stop words.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with",
];

/// Lower-cased alphanumeric words without stop words.
pub fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
        .collect()
}

pub struct Bm25 {
    k1: f32,
    b: f32,
    avg_len: f32,
    lengths: Vec<u32>,
    /// term → (document, term frequency), documents ascending.
    postings: HashMap<String, Vec<(u32, u32)>>,
}

impl Bm25 {
    pub fn new<'a>(docs: impl IntoIterator<Item = &'a str>) -> Self {
        let mut postings: HashMap<String, Vec<(u32, u32)>> = HashMap::new();
        let mut lengths = Vec::new();
        for (d, text) in docs.into_iter().enumerate() {
            let t = terms(text);
            lengths.push(t.len() as u32);
            let mut tf: HashMap<String, u32> = HashMap::new();
            for term in t {
                *tf.entry(term).or_default() += 1;
            }
            for (term, f) in tf {
                postings.entry(term).or_default().push((d as u32, f));
            }
        }
        let avg_len = lengths.iter().map(|&l| l as f64).sum::<f64>() / lengths.len().max(1) as f64;
        Self { k1: 0.9, b: 0.4, avg_len: avg_len.max(1e-9) as f32, lengths, postings }
    }

    /// The `k` best documents for `query`, best first, ties by document index.
    pub fn search(&self, query: &str, k: usize) -> Vec<(usize, f32)> {
        let n = self.lengths.len() as f32;
        let mut scores: HashMap<u32, f32> = HashMap::new();
        let mut query_terms = terms(query);
        query_terms.sort();
        query_terms.dedup();
        for term in &query_terms {
            let Some(list) = self.postings.get(term) else { continue };
            let df = list.len() as f32;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for &(d, tf) in list {
                let tf = tf as f32;
                let norm = self.k1 * (1.0 - self.b + self.b * self.lengths[d as usize] as f32 / self.avg_len);
                *scores.entry(d).or_default() += idf * tf * (self.k1 + 1.0) / (tf + norm);
            }
        }
        let mut ranked: Vec<(usize, f32)> = scores.into_iter().map(|(d, s)| (d as usize, s)).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(k);
        ranked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_by_term_overlap_and_rarity() {
        let docs = [
            "the cat sat on the mat",
            "dogs chase cats",
            "a glacier cave is a cave formed within the ice of a glacier",
            "ice cream",
        ];
        let index = Bm25::new(docs.iter().copied());
        let hits = index.search("what is a glacier cave", 10);
        assert_eq!(hits[0].0, 2);
        assert_eq!(hits.len(), 1, "only documents sharing a term are returned");
        let hits = index.search("ice", 10);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![3, 2], "the shorter document first");
        assert!(index.search("the of", 10).is_empty(), "stop words do not match");
        assert_eq!(terms("Ice-cream, ICE!"), vec!["ice", "cream", "ice"]);
    }
}
