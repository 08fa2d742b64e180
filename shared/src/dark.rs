//! Dark examples in token space: noisy (masked or deleted) positives and strengthened (mixed-up)
//! negatives, with an adaptive search for edit ratios that give moderate teacher relevance.
//!
//! Everything works on word pieces without `[CLS]`/`[SEP]` (e.g. from
//! [`TextTokenizer::word_pieces`](crate::tokenize::TextTokenizer::word_pieces)); wrap a result with
//! [`DarkExample::with_specials`] before encoding. Special ids that do occur (`[UNK]`, or a full
//! sequence passed by mistake) are never edited, copied or moved.
//!
//! Randomness comes from [`SplitMix64`] seeded from `DarkConfig::seed` and an instance key, so the
//! same inputs always give the same examples, on every target.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::tokenize::SpecialTokens;

/// SplitMix64 (Steele et al. 2014): tiny, seedable, and identical on native and wasm32.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`); multiply-shift, whose bias is far below anything measurable here.
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "SplitMix64::below(0)");
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Combines a seed with a key (instance index, slot number) into a new, well-mixed seed.
pub fn mix_seed(seed: u64, key: u64) -> u64 {
    SplitMix64::new(seed ^ key.wrapping_mul(0xD1B5_4A32_D192_ED03)).next_u64()
}

/// What a dark example was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DarkKind {
    /// The positive with a share of its pieces replaced by `[MASK]`.
    MaskedPositive,
    /// The positive with a share of its pieces deleted.
    DeletedPositive,
    /// A hard negative with spans of the positive (and, `with_query`, the query) spliced in;
    /// `insert` when the spans were inserted rather than written over the negative's pieces.
    MixedNegative { with_query: bool, insert: bool },
}

impl DarkKind {
    /// Whether more editing makes the example *more* relevant (mixed negatives) rather than less.
    pub fn relevance_grows_with_ratio(&self) -> bool {
        matches!(self, DarkKind::MixedNegative { .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EditOp {
    Mask,
    Delete,
    /// Pieces of the base overwritten by a copied span.
    Replace,
    /// A copied span inserted between pieces of the base.
    Insert,
}

/// Where an edit's pieces came from (or, for `Mask`/`Delete`, which sequence lost them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EditSource {
    Positive,
    Query,
}

/// One change, enough to highlight it: `ids[position..position + len]` are the edit's pieces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edit {
    pub op: EditOp,
    /// Start in the dark example's `ids` (for `Delete`: where the removed piece was).
    pub position: usize,
    /// How many pieces of `ids` the edit produced (0 for `Delete`).
    pub len: usize,
    pub source: EditSource,
    /// `Mask`/`Delete`: the positive's piece that was masked or removed. `Replace`/`Insert`: the
    /// span of the positive or query that was copied.
    pub source_span: Range<usize>,
    /// The base's pieces this edit removed (masked, deleted or overwritten); empty for `Insert`.
    pub replaced: Vec<u32>,
}

/// A synthetic candidate passage of moderate relevance, as word pieces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DarkExample {
    pub ids: Vec<u32>,
    pub kind: DarkKind,
    /// Edits in order of `position`.
    pub edits: Vec<Edit>,
    /// The edit ratio asked for; the edits give what was actually done.
    pub ratio: f32,
    /// Index (into the instance's negatives) of the negative a mixed example was built on.
    pub negative: Option<usize>,
    /// The teacher's score, when the adaptive search computed one.
    pub teacher_score: Option<f32>,
    /// `Some(true)` when the adaptive search got the teacher's score into the target band,
    /// `Some(false)` when it could not, `None` when no search ran.
    pub band_reached: Option<bool>,
}

impl DarkExample {
    /// `[CLS] ids [SEP]`, the model input for the passage alone.
    pub fn with_specials(&self, special: &SpecialTokens) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.ids.len() + 2);
        out.push(special.cls);
        out.extend_from_slice(&self.ids);
        out.push(special.sep);
        out
    }

    /// Number of pieces the edits masked, deleted, overwrote or inserted.
    pub fn edited_pieces(&self) -> usize {
        self.edits.iter().map(|e| e.len.max(e.replaced.len())).sum()
    }
}

/// How a noisy positive is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoisyMode {
    #[default]
    Mask,
    Delete,
}

/// How spans are spliced into a negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MixMode {
    /// Overwrite the negative's pieces (length unchanged).
    #[default]
    Replace,
    /// Insert between the negative's pieces (longer, up to `max_pieces`).
    Insert,
}

/// Dark-example knobs; field names are the config names in METHOD.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DarkConfig {
    /// Noisy positives per query.
    pub noisy_positives: usize,
    pub noisy_mode: NoisyMode,
    /// Mixed negatives per query built from positive spans only.
    pub mixed_negatives: usize,
    /// Mixed negatives per query that also splice in the query's pieces.
    pub query_mixed_negatives: usize,
    pub mix_mode: MixMode,
    /// Longest span copied from the positive in one splice.
    pub span_len: usize,
    /// Longest dark example, in word pieces (the model's max length minus `[CLS]`/`[SEP]`).
    pub max_pieces: usize,
    /// Ratio of noisy positives without the adaptive search, and its first try.
    pub noisy_ratio: f32,
    /// Ratio of mixed negatives without the adaptive search, and its first try.
    pub mix_ratio: f32,
    /// Search each example's ratio so the teacher scores it inside the band.
    pub adaptive: bool,
    /// Band `[neg + band_low * (pos - neg), neg + band_high * (pos - neg)]` of teacher scores,
    /// `pos` the positive's, `neg` the best hard negative's.
    pub band_low: f32,
    pub band_high: f32,
    pub min_ratio: f32,
    pub max_ratio: f32,
    /// Teacher evaluations per example in the adaptive search (first try included).
    pub search_steps: usize,
    pub seed: u64,
}

impl Default for DarkConfig {
    fn default() -> Self {
        Self {
            noisy_positives: 2,
            noisy_mode: NoisyMode::Mask,
            mixed_negatives: 1,
            query_mixed_negatives: 1,
            mix_mode: MixMode::Replace,
            span_len: 4,
            max_pieces: 254,
            noisy_ratio: 0.3,
            mix_ratio: 0.3,
            adaptive: true,
            band_low: 0.25,
            band_high: 0.75,
            min_ratio: 0.05,
            max_ratio: 0.95,
            search_steps: 4,
            seed: 42,
        }
    }
}

impl DarkConfig {
    /// Dark examples per query.
    pub fn per_query(&self) -> usize {
        self.noisy_positives + self.mixed_negatives + self.query_mixed_negatives
    }

    /// Checks ranges; returns a message naming the bad knob.
    pub fn validate(&self) -> Result<(), String> {
        let unit = |name: &str, v: f32| {
            if (0.0..=1.0).contains(&v) { Ok(()) } else { Err(format!("{name} = {v} is not in [0, 1]")) }
        };
        unit("noisy_ratio", self.noisy_ratio)?;
        unit("mix_ratio", self.mix_ratio)?;
        unit("band_low", self.band_low)?;
        unit("band_high", self.band_high)?;
        unit("min_ratio", self.min_ratio)?;
        unit("max_ratio", self.max_ratio)?;
        if self.band_low > self.band_high {
            return Err(format!("band_low = {} > band_high = {}", self.band_low, self.band_high));
        }
        if self.min_ratio > self.max_ratio {
            return Err(format!("min_ratio = {} > max_ratio = {}", self.min_ratio, self.max_ratio));
        }
        if self.span_len == 0 {
            return Err("span_len must be at least 1".into());
        }
        if self.max_pieces == 0 {
            return Err("max_pieces must be at least 1".into());
        }
        if self.adaptive && self.search_steps == 0 {
            return Err("search_steps must be at least 1 when adaptive".into());
        }
        Ok(())
    }
}

/// Positions of `ids` that may be edited: all but special tokens.
pub fn editable_positions(ids: &[u32], special: &SpecialTokens) -> Vec<usize> {
    (0..ids.len()).filter(|&i| !special.is_special(ids[i])).collect()
}

/// Pieces to edit out of `editable` at `ratio`: `round(ratio * editable)`, at least one when
/// `ratio > 0` (an unedited copy is no dark example), at most `editable`.
pub fn edit_count(ratio: f32, editable: usize) -> usize {
    if editable == 0 || ratio.is_nan() || ratio <= 0.0 {
        return 0;
    }
    ((ratio.min(1.0) * editable as f32).round() as usize).clamp(1, editable)
}

/// The first `n` entries of a seeded shuffle of `items`: for one seed, a larger `n` extends the
/// same choice, so a higher ratio masks a superset of what a lower one masked.
fn seeded_choice(items: &[usize], n: usize, seed: u64) -> Vec<usize> {
    let mut items = items.to_vec();
    let mut rng = SplitMix64::new(seed);
    for i in 0..n.min(items.len()) {
        let j = i + rng.below(items.len() - i);
        items.swap(i, j);
    }
    items.truncate(n);
    items.sort_unstable();
    items
}

/// A noisy positive: `edit_count(ratio, ·)` of the positive's non-special pieces replaced by
/// `[MASK]`. The positive is first cut to `max_pieces`.
pub fn mask_positive(
    positive: &[u32],
    ratio: f32,
    special: &SpecialTokens,
    max_pieces: usize,
    seed: u64,
) -> DarkExample {
    let mut ids = positive[..positive.len().min(max_pieces)].to_vec();
    let editable = editable_positions(&ids, special);
    let chosen = seeded_choice(&editable, edit_count(ratio, editable.len()), seed);
    let edits = chosen
        .iter()
        .map(|&p| {
            let original = ids[p];
            ids[p] = special.mask;
            Edit {
                op: EditOp::Mask,
                position: p,
                len: 1,
                source: EditSource::Positive,
                source_span: p..p + 1,
                replaced: vec![original],
            }
        })
        .collect();
    DarkExample {
        ids,
        kind: DarkKind::MaskedPositive,
        edits,
        ratio,
        negative: None,
        teacher_score: None,
        band_reached: None,
    }
}

/// A noisy positive with `edit_count(ratio, ·)` of its non-special pieces deleted.
pub fn delete_positive(
    positive: &[u32],
    ratio: f32,
    special: &SpecialTokens,
    max_pieces: usize,
    seed: u64,
) -> DarkExample {
    let base = &positive[..positive.len().min(max_pieces)];
    let editable = editable_positions(base, special);
    let chosen = seeded_choice(&editable, edit_count(ratio, editable.len()), seed);
    let mut ids = Vec::with_capacity(base.len() - chosen.len());
    let mut edits = Vec::with_capacity(chosen.len());
    let mut next = chosen.iter().peekable();
    for (p, &id) in base.iter().enumerate() {
        if next.peek() == Some(&&p) {
            next.next();
            edits.push(Edit {
                op: EditOp::Delete,
                position: ids.len(),
                len: 0,
                source: EditSource::Positive,
                source_span: p..p + 1,
                replaced: vec![id],
            });
        } else {
            ids.push(id);
        }
    }
    DarkExample {
        ids,
        kind: DarkKind::DeletedPositive,
        edits,
        ratio,
        negative: None,
        teacher_score: None,
        band_reached: None,
    }
}

/// Starts `s` of length-`len` windows of `ids` that `ok(i)` accepts throughout.
fn window_starts(n: usize, len: usize, ok: impl Fn(usize) -> bool) -> Vec<usize> {
    if len == 0 || len > n {
        return vec![];
    }
    let mut starts = Vec::new();
    let mut run = 0; // accepted positions ending at i
    for i in 0..n {
        run = if ok(i) { run + 1 } else { 0 };
        if run >= len {
            starts.push(i + 1 - len);
        }
    }
    starts
}

/// A strengthened negative: spans of the positive (with `query`, first the query's pieces)
/// spliced into `negative` until `edit_count(ratio, editable pieces of the negative)` pieces are
/// written (`Replace`) or inserted (`Insert`, capped so the result fits `max_pieces`).
/// Spans are at most `span_len` long and never contain or displace special tokens.
#[allow(clippy::too_many_arguments)]
pub fn mix_negative(
    negative: &[u32],
    positive: &[u32],
    query: Option<&[u32]>,
    ratio: f32,
    mode: MixMode,
    span_len: usize,
    special: &SpecialTokens,
    max_pieces: usize,
    seed: u64,
) -> DarkExample {
    let mut rng = SplitMix64::new(seed);
    let base = &negative[..negative.len().min(max_pieces)];
    // Each output piece with the splice that wrote it (None: the negative's own piece).
    let mut out: Vec<(u32, Option<usize>)> = base.iter().map(|&id| (id, None)).collect();
    let editable = editable_positions(base, special).len();
    let mut budget = edit_count(ratio, editable);
    if mode == MixMode::Insert {
        budget = budget.min(max_pieces.saturating_sub(out.len()));
    }
    let span_len = span_len.max(1);
    // (source, copied span, overwritten pieces)
    let mut splices: Vec<(EditSource, Range<usize>, Vec<u32>)> = Vec::new();
    let mut sources: Vec<(EditSource, &[u32], usize)> = Vec::new();
    if let Some(q) = query {
        sources.push((EditSource::Query, q, usize::MAX)); // the whole query if the budget allows
    }
    let mut source_index = 0;
    while budget > 0 {
        let (source, src, max_len) = match sources.get(source_index) {
            Some(&s) => s,
            None => (EditSource::Positive, positive, span_len),
        };
        let mut placed = false;
        let mut len = max_len.min(budget).min(src.len());
        while len > 0 {
            let src_starts = window_starts(src.len(), len, |i| !special.is_special(src[i]));
            let slots = match mode {
                MixMode::Replace => {
                    window_starts(out.len(), len, |i| out[i].1.is_none() && !special.is_special(out[i].0))
                }
                MixMode::Insert => insert_slots(&out, special),
            };
            if src_starts.is_empty() || slots.is_empty() {
                len -= 1;
                continue;
            }
            let s = src_starts[rng.below(src_starts.len())];
            let t = slots[rng.below(slots.len())];
            let tag = Some(splices.len());
            let copied = src[s..s + len].iter().map(|&id| (id, tag));
            let replaced = match mode {
                MixMode::Replace => out.splice(t..t + len, copied).map(|(id, _)| id).collect(),
                MixMode::Insert => {
                    out.splice(t..t, copied);
                    vec![]
                }
            };
            splices.push((source, s..s + len, replaced));
            budget -= len;
            placed = true;
            break;
        }
        if source_index < sources.len() {
            source_index += 1; // the query is used once, placed or not
        } else if !placed {
            break; // the positive has no usable span
        }
    }
    let ids = out.iter().map(|&(id, _)| id).collect();
    let mut edits: Vec<Edit> = splices
        .into_iter()
        .enumerate()
        .map(|(k, (source, source_span, replaced))| {
            let position = out.iter().position(|&(_, tag)| tag == Some(k)).unwrap_or(0);
            Edit {
                op: if mode == MixMode::Replace { EditOp::Replace } else { EditOp::Insert },
                position,
                len: source_span.len(),
                source,
                source_span,
                replaced,
            }
        })
        .collect();
    edits.sort_by_key(|e| e.position);
    DarkExample {
        ids,
        kind: DarkKind::MixedNegative { with_query: query.is_some(), insert: mode == MixMode::Insert },
        edits,
        ratio,
        negative: None,
        teacher_score: None,
        band_reached: None,
    }
}

/// Insertion points of `out` that neither split an inserted span nor go outside leading/trailing
/// special tokens.
fn insert_slots(out: &[(u32, Option<usize>)], special: &SpecialTokens) -> Vec<usize> {
    let lead = out.iter().take_while(|(id, _)| special.is_special(*id)).count();
    let trail = out[lead..].iter().rev().take_while(|(id, _)| special.is_special(*id)).count();
    (lead..=out.len() - trail)
        .filter(|&i| i == 0 || i == out.len() || out[i - 1].1.is_none() || out[i - 1].1 != out[i].1)
        .collect()
}

/// One query with its positive and hard negatives, as word pieces.
#[derive(Debug, Clone, Copy)]
pub struct DarkInstance<'a> {
    pub query: &'a [u32],
    pub positive: &'a [u32],
    pub negatives: &'a [Vec<u32>],
    /// Mixed into `DarkConfig::seed` (e.g. the query's index), so each instance gets its own draws.
    pub key: u64,
}

/// The teacher's scores of an instance's original candidates.
#[derive(Debug, Clone, PartialEq)]
pub struct TeacherScores {
    pub positive: f32,
    pub negatives: Vec<f32>,
}

impl TeacherScores {
    /// The best hard negative's score.
    pub fn best_negative(&self) -> Option<f32> {
        self.negatives.iter().copied().filter(|s| !s.is_nan()).reduce(f32::max)
    }

    /// The target band `[neg + low (pos - neg), neg + high (pos - neg)]`; `None` when there is no
    /// negative or the teacher does not score the positive above the best one.
    pub fn band(&self, low: f32, high: f32) -> Option<(f32, f32)> {
        let neg = self.best_negative()?;
        let pos = self.positive;
        (pos > neg).then_some((neg + low * (pos - neg), neg + high * (pos - neg)))
    }

    /// Negative indices, best-scored first (ties by index).
    pub fn hardest_first(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.negatives.len()).collect();
        let key = |i: usize| {
            if self.negatives[i].is_nan() { f32::NEG_INFINITY } else { self.negatives[i] }
        };
        order.sort_by(|&a, &b| key(b).total_cmp(&key(a)).then(a.cmp(&b)));
        order
    }
}

/// One dark example to make for an instance: its kind, base negative and seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DarkSlot {
    pub kind: DarkKind,
    pub negative: Option<usize>,
    pub seed: u64,
}

/// The dark examples an instance gets: noisy positives, then mixed negatives, then query-mixed
/// ones; mixed ones take the negatives in `negative_order` round-robin (none if there is none).
pub fn plan_slots(config: &DarkConfig, key: u64, negative_order: &[usize]) -> Vec<DarkSlot> {
    let instance_seed = mix_seed(config.seed, key);
    let noisy = match config.noisy_mode {
        NoisyMode::Mask => DarkKind::MaskedPositive,
        NoisyMode::Delete => DarkKind::DeletedPositive,
    };
    let insert = config.mix_mode == MixMode::Insert;
    let mut kinds = vec![(noisy, None); config.noisy_positives];
    if !negative_order.is_empty() {
        for (count, with_query) in [(config.mixed_negatives, false), (config.query_mixed_negatives, true)] {
            for j in 0..count {
                let negative = Some(negative_order[j % negative_order.len()]);
                kinds.push((DarkKind::MixedNegative { with_query, insert }, negative));
            }
        }
    }
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, (kind, negative))| DarkSlot { kind, negative, seed: mix_seed(instance_seed, i as u64) })
        .collect()
}

/// Makes the dark example of `slot` at `ratio`.
pub fn make_dark(
    instance: &DarkInstance<'_>,
    slot: &DarkSlot,
    ratio: f32,
    special: &SpecialTokens,
    config: &DarkConfig,
) -> DarkExample {
    match slot.kind {
        DarkKind::MaskedPositive => mask_positive(instance.positive, ratio, special, config.max_pieces, slot.seed),
        DarkKind::DeletedPositive => delete_positive(instance.positive, ratio, special, config.max_pieces, slot.seed),
        DarkKind::MixedNegative { with_query, insert } => {
            let n = slot.negative.expect("a mixed slot names its negative");
            let mut example = mix_negative(
                &instance.negatives[n],
                instance.positive,
                with_query.then_some(instance.query),
                ratio,
                if insert { MixMode::Insert } else { MixMode::Replace },
                config.span_len,
                special,
                config.max_pieces,
                slot.seed,
            );
            example.negative = Some(n);
            example
        }
    }
}

fn initial_ratio(kind: &DarkKind, config: &DarkConfig) -> f32 {
    match kind {
        DarkKind::MixedNegative { .. } => config.mix_ratio,
        _ => config.noisy_ratio,
    }
}

/// Dark examples at the configured fixed ratios (no teacher); mixed ones use the negatives in
/// the given order.
pub fn generate(instance: &DarkInstance<'_>, special: &SpecialTokens, config: &DarkConfig) -> Vec<DarkExample> {
    let order: Vec<usize> = (0..instance.negatives.len()).collect();
    plan_slots(config, instance.key, &order)
        .iter()
        .map(|slot| make_dark(instance, slot, initial_ratio(&slot.kind, config), special, config))
        .collect()
}

/// Search state of one slot.
struct Search {
    instance: usize,
    slot: DarkSlot,
    band: Option<(f32, f32)>,
    low: f32,
    high: f32,
    ratio: f32,
    tries: usize,
    best: Option<(f32, DarkExample)>, // (distance to the band, scored example)
    done: bool,
}

fn band_distance(score: f32, band: (f32, f32)) -> f32 {
    if score.is_nan() { f32::INFINITY } else { (band.0 - score).max(score - band.1).max(0.0) }
}

/// Adaptive dark examples for a batch of instances.
///
/// For every slot, bisects the ratio in `[min_ratio, max_ratio]`, starting at the configured
/// ratio, until the teacher's score lands in the instance's band (see [`TeacherScores::band`]) or
/// `search_steps` tries are spent; keeps the first in-band example, else the one closest to the
/// band (`band_reached = Some(false)`). Instances without a band (no negative, or the positive not
/// above the best negative) get the configured ratio, scored once, `band_reached = Some(false)`.
/// Mixed slots take the negatives hardest first.
///
/// `teacher` scores a list of dark examples of the batch (against their instance's query; the
/// examples' `negative` and order match the requests) and must return one score per example.
/// It is called at most `search_steps` times per batch. With `config.adaptive == false` this
/// returns [`generate`]'s examples, scored once.
///
/// Panics if `teacher` returns the wrong number of scores or `scores.len() != instances.len()`.
pub fn generate_adaptive<F>(
    instances: &[DarkInstance<'_>],
    scores: &[TeacherScores],
    special: &SpecialTokens,
    config: &DarkConfig,
    mut teacher: F,
) -> Vec<Vec<DarkExample>>
where
    F: FnMut(&[(usize, DarkExample)]) -> Vec<f32>,
{
    assert_eq!(instances.len(), scores.len(), "one TeacherScores per instance");
    let mut searches: Vec<Search> = Vec::new();
    for (i, (instance, teacher_scores)) in instances.iter().zip(scores).enumerate() {
        let order =
            if config.adaptive { teacher_scores.hardest_first() } else { (0..instance.negatives.len()).collect() };
        let band = if config.adaptive { teacher_scores.band(config.band_low, config.band_high) } else { None };
        for slot in plan_slots(config, instance.key, &order) {
            let mut ratio = initial_ratio(&slot.kind, config);
            if config.adaptive {
                ratio = ratio.clamp(config.min_ratio, config.max_ratio);
            }
            searches.push(Search {
                instance: i,
                slot,
                band,
                low: config.min_ratio,
                high: config.max_ratio,
                ratio,
                tries: 0,
                best: None,
                done: false,
            });
        }
    }
    let max_tries = if config.adaptive { config.search_steps.max(1) } else { 1 };
    loop {
        let pending: Vec<usize> = (0..searches.len()).filter(|&k| !searches[k].done).collect();
        if pending.is_empty() {
            break;
        }
        let requests: Vec<(usize, DarkExample)> = pending
            .iter()
            .map(|&k| {
                let s = &searches[k];
                (s.instance, make_dark(&instances[s.instance], &s.slot, s.ratio, special, config))
            })
            .collect();
        let got = teacher(&requests);
        assert_eq!(got.len(), requests.len(), "the teacher must score every dark example");
        for ((k, (_, mut example)), score) in pending.into_iter().zip(requests).zip(got) {
            let s = &mut searches[k];
            s.tries += 1;
            example.teacher_score = Some(score);
            let Some(band) = s.band else {
                example.band_reached = config.adaptive.then_some(false);
                s.best = Some((0.0, example));
                s.done = true;
                continue;
            };
            let distance = band_distance(score, band);
            example.band_reached = Some(distance == 0.0);
            if s.best.as_ref().is_none_or(|(d, _)| distance < *d) {
                s.best = Some((distance, example));
            }
            if distance == 0.0 || s.tries >= max_tries {
                s.done = true;
                continue;
            }
            // Too relevant: mask more / mix less; not relevant enough: the other way.
            let too_relevant = score > band.1;
            if too_relevant != s.slot.kind.relevance_grows_with_ratio() {
                s.low = s.ratio;
            } else {
                s.high = s.ratio;
            }
            s.ratio = 0.5 * (s.low + s.high);
        }
    }
    let mut out: Vec<Vec<DarkExample>> = vec![Vec::new(); instances.len()];
    for s in searches {
        if let Some((_, example)) = s.best {
            out[s.instance].push(example);
        }
    }
    out
}
