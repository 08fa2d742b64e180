//! Tokenization through Hugging Face `tokenizers`: truncation at the model's max length, padding
//! to the longest sequence of a batch, single texts and (query, passage) pairs.

use std::path::Path;

use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use tokenizers::{EncodeInput, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams, TruncationStrategy};

use crate::{Error, Result};

/// The ids of the special tokens a BERT vocabulary defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialTokens {
    pub pad: u32,
    pub cls: u32,
    pub sep: u32,
    pub mask: u32,
    pub unk: u32,
}

impl SpecialTokens {
    pub fn is_special(&self, id: u32) -> bool {
        id == self.pad || id == self.cls || id == self.sep || id == self.mask || id == self.unk
    }
}

/// A padded batch of token sequences, row-major `[batch, seq_len]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBatch {
    pub batch: usize,
    pub seq_len: usize,
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    /// 1 for real tokens, 0 for padding.
    pub attention: Vec<u32>,
}

impl TokenBatch {
    /// Pads already tokenized sequences (with their special tokens) to the longest one.
    /// `type_ids[i]` may be empty, meaning all zeros.
    pub fn from_sequences(ids: &[Vec<u32>], type_ids: &[Vec<u32>], pad: u32) -> Self {
        let batch = ids.len();
        let seq_len = ids.iter().map(Vec::len).max().unwrap_or(0);
        let mut out = TokenBatch {
            batch,
            seq_len,
            ids: vec![pad; batch * seq_len],
            type_ids: vec![0; batch * seq_len],
            attention: vec![0; batch * seq_len],
        };
        for (row, seq) in ids.iter().enumerate() {
            let base = row * seq_len;
            out.ids[base..base + seq.len()].copy_from_slice(seq);
            out.attention[base..base + seq.len()].fill(1);
            if let Some(types) = type_ids.get(row).filter(|t| !t.is_empty()) {
                out.type_ids[base..base + types.len()].copy_from_slice(types);
            }
        }
        out
    }

    /// The unpadded ids of row `i`.
    pub fn row(&self, i: usize) -> &[u32] {
        let start = i * self.seq_len;
        let len = self.attention[start..start + self.seq_len].iter().filter(|&&a| a == 1).count();
        &self.ids[start..start + len]
    }

    /// `(input_ids, token_type_ids, padding)` tensors; `padding` is true at padding positions.
    pub fn to_tensors(&self, device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>, Tensor<2, Bool>) {
        let shape = [self.batch, self.seq_len];
        let int = |v: &[u32]| {
            let data: Vec<i64> = v.iter().map(|&x| x as i64).collect();
            Tensor::<2, Int>::from_data(TensorData::new(data, shape), device)
        };
        let padding: Vec<bool> = self.attention.iter().map(|&a| a == 0).collect();
        (int(&self.ids), int(&self.type_ids), Tensor::<2, Bool>::from_data(TensorData::new(padding, shape), device))
    }
}

/// A Hugging Face tokenizer configured for encoding: longest-first truncation at `max_length`,
/// padding to the longest sequence in each batch.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    /// The same tokenizer without truncation or padding, for raw word pieces.
    plain: Tokenizer,
    max_length: usize,
    special: SpecialTokens,
    template: Template,
}

/// How the tokenizer's post-processor wraps one sequence and a pair: the special pieces before,
/// between and after, each with its type id, and the type ids of the sequences themselves. BERT:
/// `[CLS] a [SEP]` and `[CLS] a [SEP] b [SEP]`, types 0 then 1; MPNet (RoBERTa's processor):
/// `<s> a </s>` and `<s> a </s></s> b </s>`, types all 0. Read once from the tokenizer itself,
/// so sequences built from word pieces (dark examples) match what `encode` gives for text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Template {
    single_prefix: Vec<(u32, u32)>,
    single_suffix: Vec<(u32, u32)>,
    single_type: u32,
    pair_prefix: Vec<(u32, u32)>,
    pair_middle: Vec<(u32, u32)>,
    pair_suffix: Vec<(u32, u32)>,
    pair_types: [u32; 2],
}

impl Template {
    /// Encodes a one-piece probe (`a`, and the pair `a`, `b`) and reads where the specials go.
    fn probe(plain: &Tokenizer) -> Result<Self> {
        let err = |e: tokenizers::Error| Error::Tokenizer(format!("probing the special-token template: {e}"));
        let single = plain.encode("a", true).map_err(err)?;
        let pair = plain.encode(("a", "b"), true).map_err(err)?;
        let parts = |e: &tokenizers::Encoding, sequences: usize| {
            // parts[k]: the specials before sequence k (k = sequences: after the last one).
            let mut parts = vec![Vec::new(); sequences + 1];
            let mut types = [0u32; 2];
            let mut next = 0;
            for (i, seq) in e.get_sequence_ids().into_iter().enumerate() {
                let piece = (e.get_ids()[i], e.get_type_ids()[i]);
                match seq {
                    None => parts[next].push(piece),
                    Some(k) => {
                        types[k.min(1)] = piece.1;
                        next = k + 1;
                    }
                }
            }
            (parts, types)
        };
        let (mut single_parts, single_types) = parts(&single, 1);
        let (mut pair_parts, pair_types) = parts(&pair, 2);
        Ok(Template {
            single_suffix: single_parts.pop().unwrap_or_default(),
            single_prefix: single_parts.pop().unwrap_or_default(),
            single_type: single_types[0],
            pair_suffix: pair_parts.pop().unwrap_or_default(),
            pair_middle: pair_parts.pop().unwrap_or_default(),
            pair_prefix: pair_parts.pop().unwrap_or_default(),
            pair_types,
        })
    }
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer").field("max_length", &self.max_length).field("special", &self.special).finish()
    }
}

impl TextTokenizer {
    /// Builds from `tokenizer.json` bytes; `path` names the file in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path, max_length: usize) -> Result<Self> {
        let inner = Tokenizer::from_bytes(bytes)
            .map_err(|e| Error::format(path, None, format!("not a valid tokenizer.json: {e}")))?;
        Self::new(inner, path, max_length)
    }

    pub fn new(mut inner: Tokenizer, path: &Path, max_length: usize) -> Result<Self> {
        // BERT's names, else RoBERTa's, the tokenizer's declared special tokens first: MPNet's
        // vocabulary also holds BERT's `[CLS]`, `[MASK]`, … as plain entries, but its special
        // tokens are `<s>`, `</s>`, `<pad>`, `<mask>` (and BERT's `[UNK]`).
        let declared: std::collections::HashSet<String> =
            inner.get_added_tokens_decoder().into_values().filter(|t| t.special).map(|t| t.content).collect();
        let id = |names: [&str; 2]| {
            let chosen = names
                .iter()
                .find(|t| declared.contains(**t))
                .or_else(|| names.iter().find(|t| inner.token_to_id(t).is_some()));
            chosen.and_then(|t| inner.token_to_id(t).map(|id| (id, t.to_string()))).ok_or_else(|| {
                Error::model(path, format!("the vocabulary has no `{}` (or `{}`) token", names[0], names[1]))
            })
        };
        let (pad, pad_token) = id(["[PAD]", "<pad>"])?;
        let special = SpecialTokens {
            pad,
            cls: id(["[CLS]", "<s>"])?.0,
            sep: id(["[SEP]", "</s>"])?.0,
            mask: id(["[MASK]", "<mask>"])?.0,
            unk: id(["[UNK]", "<unk>"])?.0,
        };
        let mut plain = inner.clone();
        plain.with_truncation(None).map_err(|e| Error::Tokenizer(e.to_string()))?;
        plain.with_padding(None);
        let template = Template::probe(&plain)?;
        // tokenizer.json files often carry a fixed padding/truncation from export time
        // (all-MiniLM-L6-v2's pads every text to 128); the model's own limit wins, as in
        // sentence-transformers.
        inner
            .with_truncation(Some(TruncationParams {
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                ..Default::default()
            }))
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        inner.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id: special.pad,
            pad_token,
            ..Default::default()
        }));
        Ok(Self { inner, plain, max_length, special, template })
    }

    pub fn max_length(&self) -> usize {
        self.max_length
    }

    pub fn special(&self) -> SpecialTokens {
        self.special
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// Tokenizes single texts: `[CLS] text [SEP]`, type ids 0.
    pub fn encode(&self, texts: &[&str]) -> Result<TokenBatch> {
        self.encode_inputs(texts.iter().map(|&t| EncodeInput::from(t)).collect())
    }

    /// Tokenizes (query, passage) pairs: `[CLS] q [SEP] p [SEP]`, type ids 0 then 1.
    ///
    /// Longest-first truncation is done here rather than by `tokenizers`: when both sides are
    /// too long, the Rust crate gives the odd spare token to the query while Hugging Face
    /// `transformers` (what cross-encoders were trained with) gives it to the passage.
    pub fn encode_pairs(&self, pairs: &[(&str, &str)]) -> Result<TokenBatch> {
        let mut pieces = Vec::with_capacity(pairs.len());
        for &(a, b) in pairs {
            pieces.push((self.word_pieces(a)?, self.word_pieces(b)?));
        }
        let refs: Vec<(&[u32], &[u32])> = pieces.iter().map(|(a, b)| (&a[..], &b[..])).collect();
        Ok(self.encode_piece_pairs(&refs))
    }

    /// [`Self::encode_pairs`] for sides already split into word pieces (no special tokens), e.g.
    /// dark examples, which exist only as pieces.
    pub fn encode_piece_pairs(&self, pairs: &[(&[u32], &[u32])]) -> TokenBatch {
        let t = &self.template;
        let budget = self.pair_budget();
        let mut ids = Vec::with_capacity(pairs.len());
        let mut types = Vec::with_capacity(pairs.len());
        for &(a, b) in pairs {
            let (keep_a, keep_b) = Self::pair_keep(budget, a.len(), b.len());
            let (a, b) = (&a[..keep_a], &b[..keep_b]);
            let pieces = t
                .pair_prefix
                .iter()
                .copied()
                .chain(a.iter().map(|&id| (id, t.pair_types[0])))
                .chain(t.pair_middle.iter().copied())
                .chain(b.iter().map(|&id| (id, t.pair_types[1])))
                .chain(t.pair_suffix.iter().copied());
            let (seq, type_ids): (Vec<u32>, Vec<u32>) = pieces.unzip();
            ids.push(seq);
            types.push(type_ids);
        }
        TokenBatch::from_sequences(&ids, &types, self.special.pad)
    }

    /// Pieces of both sides together that a pair's `max_length` leaves after the special tokens.
    fn pair_budget(&self) -> usize {
        let t = &self.template;
        self.max_length.saturating_sub(t.pair_prefix.len() + t.pair_middle.len() + t.pair_suffix.len())
    }

    /// How many pieces of each side a pair keeps within `budget` (longest side cut first, the
    /// first side keeping at least half).
    fn pair_keep(budget: usize, a: usize, b: usize) -> (usize, usize) {
        let keep_a = a.min((budget / 2).max(budget.saturating_sub(b)));
        (keep_a, b.min(budget - keep_a))
    }

    /// Where [`Self::encode_piece_pairs`] puts the pieces of a pair with sides of `a` and `b`
    /// pieces: the positions of the first side's kept pieces, then the second's.
    pub fn pair_positions(&self, a: usize, b: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let t = &self.template;
        let (keep_a, keep_b) = Self::pair_keep(self.pair_budget(), a, b);
        let start_a = t.pair_prefix.len();
        let start_b = start_a + keep_a + t.pair_middle.len();
        (start_a..start_a + keep_a, start_b..start_b + keep_b)
    }

    /// Single sequences from word pieces: `[CLS] pieces [SEP]` (or the tokenizer's own
    /// template), cut to `max_length` (what [`Self::encode`] gives for the text the pieces came
    /// from).
    pub fn encode_pieces(&self, sequences: &[&[u32]], max_length: usize) -> TokenBatch {
        let t = &self.template;
        let keep = max_length.min(self.max_length).saturating_sub(t.single_prefix.len() + t.single_suffix.len());
        let (ids, types): (Vec<Vec<u32>>, Vec<Vec<u32>>) = sequences
            .iter()
            .map(|p| {
                t.single_prefix
                    .iter()
                    .copied()
                    .chain(p[..p.len().min(keep)].iter().map(|&id| (id, t.single_type)))
                    .chain(t.single_suffix.iter().copied())
                    .unzip()
            })
            .unzip();
        TokenBatch::from_sequences(&ids, &types, self.special.pad)
    }

    /// `tokenizer.json` bytes without padding or truncation settings (a saved model's length
    /// limit is in its own config files).
    pub fn to_json(&self) -> Result<Vec<u8>> {
        self.plain
            .to_string(true)
            .map(String::into_bytes)
            .map_err(|e| Error::Tokenizer(format!("serialising tokenizer.json: {e}")))
    }

    /// Whether the normaliser lowercases (uncased BERT vocabularies).
    pub fn lowercases(&self) -> bool {
        let Ok(json) = self.plain.to_string(false) else { return false };
        serde_json::from_str::<serde_json::Value>(&json)
            .ok()
            .and_then(|v| v.get("normalizer")?.get("lowercase")?.as_bool())
            .unwrap_or(false)
    }

    /// Text of word pieces, as `tokenizers` decodes it (special tokens such as `[MASK]` kept),
    /// e.g. to hand a dark example to a model with another vocabulary.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.plain.decode(ids, false).map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// Word pieces of this vocabulary carried into `other`'s (e.g. a student's dark example
    /// scored by a teacher with another vocabulary): each run between mask tokens becomes the
    /// text it spells, WordPiece-style (`##` continuations joined to the piece before), and is
    /// tokenized by `other`; each mask token becomes `other`'s own mask id (as text, `<mask>`
    /// would not survive `other`'s normaliser).
    pub fn carry_pieces(&self, ids: &[u32], other: &TextTokenizer) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(ids.len());
        for (i, run) in ids.split(|&id| id == self.special.mask).enumerate() {
            if i > 0 {
                out.push(other.special.mask);
            }
            let mut text = String::new();
            for &id in run {
                let token = self.id_to_token(id);
                match token.strip_prefix("##") {
                    Some(rest) => text.push_str(rest),
                    None => {
                        text.push(' ');
                        text.push_str(&token);
                    }
                }
            }
            if !text.trim().is_empty() {
                out.extend(other.word_pieces(text.trim())?);
            }
        }
        Ok(out)
    }

    /// Whether `other` splits text into the same ids (same vocabulary), so word pieces of one
    /// can be fed to the other's model.
    pub fn same_vocab(&self, other: &TextTokenizer) -> bool {
        self.special == other.special && self.inner.get_vocab(true) == other.inner.get_vocab(true)
    }

    /// Every token string, indexed by id (with added tokens): what a fingerprint of the
    /// vocabulary hashes, so that two tokenizers are compared by content, not by size.
    pub fn vocab_by_id(&self) -> Vec<String> {
        let mut vocab: Vec<(String, u32)> = self.inner.get_vocab(true).into_iter().collect();
        vocab.sort_by_key(|(_, id)| *id);
        vocab.into_iter().map(|(token, _)| token).collect()
    }

    /// Token strings of ids (for display, e.g. highlighting dark-example edits).
    pub fn id_to_token(&self, id: u32) -> String {
        self.inner.id_to_token(id).unwrap_or_else(|| "[UNK]".into())
    }

    /// Word pieces of a text without special tokens and without truncation.
    pub fn word_pieces(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.plain.encode(text, false).map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The byte span in `text` of each of [`Self::word_pieces`]'s pieces.
    pub fn word_piece_offsets(&self, text: &str) -> Result<Vec<(usize, usize)>> {
        let enc = self.plain.encode(text, false).map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(enc.get_offsets().to_vec())
    }

    fn encode_inputs(&self, inputs: Vec<EncodeInput<'_>>) -> Result<TokenBatch> {
        let batch = inputs.len();
        if batch == 0 {
            return Ok(TokenBatch { batch: 0, seq_len: 0, ids: vec![], type_ids: vec![], attention: vec![] });
        }
        let encodings = self.inner.encode_batch(inputs, true).map_err(|e| Error::Tokenizer(e.to_string()))?;
        let seq_len = encodings[0].len();
        let mut out = TokenBatch {
            batch,
            seq_len,
            ids: Vec::with_capacity(batch * seq_len),
            type_ids: Vec::with_capacity(batch * seq_len),
            attention: Vec::with_capacity(batch * seq_len),
        };
        for e in &encodings {
            out.ids.extend_from_slice(e.get_ids());
            out.type_ids.extend_from_slice(e.get_type_ids());
            out.attention.extend_from_slice(e.get_attention_mask());
        }
        Ok(out)
    }
}
