//! Training a BERT-style WordPiece tokenizer on a small corpus (the teaching set), saved as a
//! `tokenizer.json` that [`crate::tokenize::TextTokenizer`] and Hugging Face `tokenizers` load.
//!
//! The pipeline is BERT's uncased one: `BertNormalizer` (clean text, Chinese characters split,
//! accents stripped, lowercase), `BertPreTokenizer` (whitespace and punctuation), a `WordPiece`
//! model with `##` continuation pieces, `[CLS] A [SEP]` / `[CLS] A [SEP] B [SEP]` templates and
//! the special tokens `[PAD]`=0, `[UNK]`=1, `[CLS]`=2, `[SEP]`=3, `[MASK]`=4.
//!
//! The vocabulary is learnt as `tokenizers`' `WordPieceTrainer` learns it (byte-pair merges over
//! word counts, continuation pieces prefixed with `##`, the most frequent pair first) but written
//! here so that ties are broken by piece id: the library's trainer iterates hash maps with a
//! random seed, so equal counts — common in a small corpus — make its vocabulary differ from run
//! to run. Every character of the corpus gets both a word-initial and a `##` piece, so no text of
//! the corpus tokenizes to `[UNK]`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{
    AddedToken, NormalizedString, Normalizer, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer,
    Tokenizer,
};

use crate::{Error, Result};

/// The special tokens, in id order.
pub const SPECIAL_TOKENS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordPieceConfig {
    /// Target vocabulary size, special tokens and the alphabet included (the alphabet is always
    /// kept, so a tiny target can be exceeded).
    pub vocab_size: usize,
    /// Pairs seen fewer times than this are not merged.
    pub min_frequency: u64,
}

impl Default for WordPieceConfig {
    fn default() -> Self {
        Self { vocab_size: 2000, min_frequency: 2 }
    }
}

fn normalizer() -> BertNormalizer {
    BertNormalizer::new(true, true, None, true)
}

fn tok_err(e: impl std::fmt::Display) -> Error {
    Error::Tokenizer(e.to_string())
}

/// Word counts after BERT normalization and pre-tokenization.
fn count_words<S: AsRef<str>>(texts: impl IntoIterator<Item = S>) -> Result<BTreeMap<String, u64>> {
    let norm = normalizer();
    let mut counts = BTreeMap::new();
    for text in texts {
        let mut n = NormalizedString::from(text.as_ref());
        norm.normalize(&mut n).map_err(tok_err)?;
        let mut pre = PreTokenizedString::from(n);
        BertPreTokenizer.pre_tokenize(&mut pre).map_err(tok_err)?;
        for (word, _, _) in pre.get_splits(OffsetReferential::Normalized, OffsetType::None) {
            *counts.entry(word.to_string()).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

/// Learns the vocabulary (piece strings in id order).
fn learn_vocab(counts: &BTreeMap<String, u64>, config: &WordPieceConfig) -> Vec<String> {
    let mut vocab: Vec<String> = SPECIAL_TOKENS.iter().map(|s| s.to_string()).collect();
    let mut ids: HashMap<String, u32> = vocab.iter().enumerate().map(|(i, s)| (s.clone(), i as u32)).collect();
    let mut add = |piece: String, vocab: &mut Vec<String>| -> u32 {
        *ids.entry(piece.clone()).or_insert_with(|| {
            vocab.push(piece);
            (vocab.len() - 1) as u32
        })
    };
    let alphabet: BTreeSet<char> = counts.keys().flat_map(|w| w.chars()).collect();
    let mut initial = HashMap::new();
    let mut continuing = HashMap::new();
    for &c in &alphabet {
        initial.insert(c, add(c.to_string(), &mut vocab));
    }
    for &c in &alphabet {
        continuing.insert(c, add(format!("##{c}"), &mut vocab));
    }

    let mut words: Vec<Vec<u32>> = Vec::with_capacity(counts.len());
    let mut freqs: Vec<u64> = Vec::with_capacity(counts.len());
    for (word, &n) in counts {
        let pieces = word.chars().enumerate().map(|(i, c)| if i == 0 { initial[&c] } else { continuing[&c] }).collect();
        words.push(pieces);
        freqs.push(n);
    }
    let mut pair_counts: HashMap<(u32, u32), u64> = HashMap::new();
    let mut where_: HashMap<(u32, u32), BTreeSet<usize>> = HashMap::new();
    for (w, pieces) in words.iter().enumerate() {
        for p in pieces.windows(2) {
            *pair_counts.entry((p[0], p[1])).or_insert(0) += freqs[w];
            where_.entry((p[0], p[1])).or_default().insert(w);
        }
    }

    while vocab.len() < config.vocab_size {
        // Most frequent pair; ties to the smallest ids (as the library's heap order would).
        let Some((&pair, &count)) = pair_counts.iter().max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0))) else {
            break;
        };
        if count < config.min_frequency.max(1) {
            break;
        }
        let right = vocab[pair.1 as usize].strip_prefix("##").unwrap_or(&vocab[pair.1 as usize]).to_string();
        let merged = add(format!("{}{right}", vocab[pair.0 as usize]), &mut vocab);
        let affected = where_.remove(&pair).unwrap_or_default();
        for w in affected {
            let old = &words[w];
            if !old.windows(2).any(|p| (p[0], p[1]) == pair) {
                continue; // a stale entry: the pair left this word in an earlier merge
            }
            let f = freqs[w];
            for p in old.windows(2) {
                let key = (p[0], p[1]);
                if let Some(c) = pair_counts.get_mut(&key) {
                    *c -= f;
                    if *c == 0 {
                        pair_counts.remove(&key);
                    }
                }
            }
            let mut new = Vec::with_capacity(old.len());
            let mut i = 0;
            while i < old.len() {
                if i + 1 < old.len() && (old[i], old[i + 1]) == pair {
                    new.push(merged);
                    i += 2;
                } else {
                    new.push(old[i]);
                    i += 1;
                }
            }
            for p in new.windows(2) {
                *pair_counts.entry((p[0], p[1])).or_insert(0) += f;
                where_.entry((p[0], p[1])).or_default().insert(w);
            }
            words[w] = new;
        }
        pair_counts.remove(&pair);
    }
    vocab
}

/// Trains a WordPiece tokenizer on `texts`. Deterministic: the same texts (in any order) and
/// config give the same vocabulary and the same `tokenizer.json`.
pub fn train_wordpiece<S: AsRef<str>>(
    texts: impl IntoIterator<Item = S>,
    config: &WordPieceConfig,
) -> Result<Tokenizer> {
    let counts = count_words(texts)?;
    if counts.is_empty() {
        return Err(Error::Invalid("cannot train a tokenizer on no text".into()));
    }
    let vocab = learn_vocab(&counts, config);
    let vocab_map: serde_json::Map<String, serde_json::Value> =
        vocab.iter().enumerate().map(|(i, p)| (p.clone(), (i as u64).into())).collect();
    // Through text: the model's deserializer borrows its `type` tag.
    let model_json = serde_json::json!({
        "type": "WordPiece",
        "unk_token": "[UNK]",
        "continuing_subword_prefix": "##",
        "max_input_chars_per_word": 100,
        "vocab": vocab_map,
    })
    .to_string();
    let model: WordPiece = serde_json::from_str(&model_json).map_err(tok_err)?;

    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_normalizer(Some(normalizer())).map_err(tok_err)?;
    tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
    let template = TemplateProcessing::builder()
        .try_single("[CLS]:0 $A:0 [SEP]:0")
        .map_err(tok_err)?
        .try_pair("[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1")
        .map_err(tok_err)?
        .special_tokens(vec![("[CLS]", 2u32), ("[SEP]", 3u32)])
        .build()
        .map_err(tok_err)?;
    tokenizer.with_post_processor(Some(template));
    tokenizer.with_decoder(Some(WordPieceDecoder::new("##".into(), true)));
    tokenizer.add_special_tokens(SPECIAL_TOKENS.iter().map(|t| AddedToken::from(*t, true))).map_err(tok_err)?;
    Ok(tokenizer)
}

/// The `tokenizer.json` text of a trained tokenizer (pretty-printed, stable).
pub fn to_json(tokenizer: &Tokenizer) -> Result<String> {
    tokenizer.to_string(true).map_err(tok_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXTS: [&str; 4] = [
        "The Brelloth is a small striped creature. It lives in the marsh.",
        "Which striped creature lives in the marsh and eats berries?",
        "Naturalists describe the Quorvane as a tiny golden beast; it hums at dusk.",
        "Élan, café — accents are stripped.",
    ];

    #[test]
    fn specials_first_and_pair_template() {
        let tok = train_wordpiece(TEXTS, &WordPieceConfig { vocab_size: 400, min_frequency: 1 }).unwrap();
        for (i, t) in SPECIAL_TOKENS.iter().enumerate() {
            assert_eq!(tok.token_to_id(t), Some(i as u32));
        }
        let enc = tok.encode(("striped creature", "lives in the marsh"), true).unwrap();
        let ids = enc.get_ids();
        assert_eq!(ids[0], 2);
        assert_eq!(*ids.last().unwrap(), 3);
        assert_eq!(ids.iter().filter(|&&i| i == 3).count(), 2);
        assert!(!ids.contains(&1), "no [UNK] on corpus words: {:?}", enc.get_tokens());
        let types = enc.get_type_ids();
        assert_eq!(types[0], 0);
        assert_eq!(*types.last().unwrap(), 1);
        // Merges happened: a frequent word is a single piece.
        assert!(tok.token_to_id("striped").is_some());
        let enc = tok.encode("café", false).unwrap();
        assert_eq!(tok.decode(enc.get_ids(), true).unwrap(), "cafe");
    }

    #[test]
    fn deterministic_and_order_free() {
        let cfg = WordPieceConfig { vocab_size: 150, min_frequency: 1 };
        let a = to_json(&train_wordpiece(TEXTS, &cfg).unwrap()).unwrap();
        let mut rev = TEXTS;
        rev.reverse();
        let b = to_json(&train_wordpiece(rev, &cfg).unwrap()).unwrap();
        assert_eq!(a, b);
        let back = Tokenizer::from_bytes(a.as_bytes()).unwrap();
        assert_eq!(to_json(&back).unwrap(), a);
    }
}
