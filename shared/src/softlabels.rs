//! Soft labels of one query's candidates, as the dark-example lab shows them: the positive, the
//! hard negatives and dark examples made by [`dark::generate`] at a chosen mask ratio, mix ratio
//! and seed; the teacher's and the student's softmax distributions over them at their
//! temperatures, each distribution's entropy, and `KL(teacher ‖ student)`.
//!
//! Everything here is pure (no model, no tensor): `adam soft-labels` and the browser demo score
//! the candidates with their own models and devices, then call [`soft_labels`], so the two give
//! the same numbers for the same scores.

use serde::{Deserialize, Serialize};

use crate::Result;
use crate::dark::{self, DarkConfig, DarkExample, DarkInstance, DarkKind, Edit, EditOp, EditSource, NoisyMode};
use crate::loss::LossConfig;
use crate::tokenize::{SpecialTokens, TextTokenizer};

/// The lab's knobs. Defaults are the method's (METHOD.md): ratios 0.3, seed 42, `T_t = 1`,
/// `T_s = 0.05`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LabSettings {
    /// Share of the positive's pieces masked (or deleted) in noisy positives (`noisy_ratio`).
    pub mask_ratio: f32,
    /// Noisy positives mask their pieces, or delete them (for a teacher trained from scratch,
    /// which never learned what `[MASK]` means).
    pub noisy_mode: NoisyMode,
    /// Share of a negative's pieces overwritten by positive (and query) spans (`mix_ratio`).
    pub mix_ratio: f32,
    pub seed: u64,
    /// `T_t`: divides the teacher's scores.
    pub teacher_temperature: f32,
    /// `T_s`: divides the student's scores (cosine similarities).
    pub student_temperature: f32,
}

impl Default for LabSettings {
    fn default() -> Self {
        let dark = DarkConfig::default();
        let loss = LossConfig::default();
        Self {
            mask_ratio: dark.noisy_ratio,
            noisy_mode: dark.noisy_mode,
            mix_ratio: dark.mix_ratio,
            seed: dark.seed,
            teacher_temperature: loss.kd_teacher_temperature,
            student_temperature: loss.kd_student_temperature,
        }
    }
}

impl LabSettings {
    /// The dark-example config these settings stand for: the defaults' counts, fixed ratios (no
    /// adaptive search: the lab shows what a ratio does), examples at most `max_pieces` long.
    pub fn dark_config(&self, max_pieces: usize) -> DarkConfig {
        DarkConfig {
            noisy_ratio: self.mask_ratio,
            noisy_mode: self.noisy_mode,
            mix_ratio: self.mix_ratio,
            seed: self.seed,
            adaptive: false,
            max_pieces: max_pieces.max(1),
            ..DarkConfig::default()
        }
    }

    /// Checks ranges; the message names the bad setting.
    pub fn validate(&self) -> std::result::Result<(), String> {
        for (name, v) in [("mask ratio", self.mask_ratio), ("mix ratio", self.mix_ratio)] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} {v} is not in [0, 1]"));
            }
        }
        for (name, t) in
            [("teacher temperature", self.teacher_temperature), ("student temperature", self.student_temperature)]
        {
            if !(t > 0.0 && t.is_finite()) {
                return Err(format!("{name} {t} must be positive"));
            }
        }
        Ok(())
    }
}

/// What a candidate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CandidateKind {
    Positive,
    /// The `index`-th hard negative (0-based).
    Negative {
        index: usize,
    },
    /// The `index`-th dark example (0-based, in [`dark::generate`]'s order).
    Dark {
        index: usize,
    },
}

/// One candidate passage of the lab, as word pieces of the teacher's vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub kind: CandidateKind,
    /// A short name for tables and charts, e.g. `negative 2`, `masked positive 1`.
    pub label: String,
    pub ids: Vec<u32>,
    /// The dark example (with its edits) for dark candidates.
    pub dark: Option<DarkExample>,
}

/// The candidates of one query: the positive, the negatives, then the dark examples of
/// `config` (fixed ratios; `key` picks the instance's random draws as in training).
pub fn candidates(
    query: &[u32],
    positive: &[u32],
    negatives: &[Vec<u32>],
    special: &SpecialTokens,
    config: &DarkConfig,
    key: u64,
) -> Vec<Candidate> {
    let mut out =
        vec![Candidate { kind: CandidateKind::Positive, label: "positive".into(), ids: positive.to_vec(), dark: None }];
    for (index, n) in negatives.iter().enumerate() {
        out.push(Candidate {
            kind: CandidateKind::Negative { index },
            label: format!("negative {}", index + 1),
            ids: n.clone(),
            dark: None,
        });
    }
    let instance = DarkInstance { query, positive, negatives, key };
    let mut noisy = 0;
    for (index, example) in dark::generate(&instance, special, config).into_iter().enumerate() {
        let label = match example.kind {
            DarkKind::MaskedPositive | DarkKind::DeletedPositive => {
                noisy += 1;
                let what = if example.kind == DarkKind::MaskedPositive { "masked" } else { "cut" };
                format!("{what} positive {noisy}")
            }
            DarkKind::MixedNegative { with_query, .. } => format!(
                "{} negative {}",
                if with_query { "query-mixed" } else { "mixed" },
                example.negative.map_or(0, |n| n + 1)
            ),
        };
        out.push(Candidate {
            kind: CandidateKind::Dark { index },
            label,
            ids: example.ids.clone(),
            dark: Some(example),
        });
    }
    out
}

/// `log softmax(scores / temperature)` in f64. NaN scores get probability 0.
pub fn log_softmax(scores: &[f32], temperature: f32) -> Vec<f64> {
    let t = temperature as f64;
    let logits: Vec<f64> = scores.iter().map(|&s| if s.is_nan() { f64::NEG_INFINITY } else { s as f64 / t }).collect();
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return vec![f64::NEG_INFINITY; scores.len()];
    }
    let log_z = max + logits.iter().map(|&l| (l - max).exp()).sum::<f64>().ln();
    logits.iter().map(|&l| l - log_z).collect()
}

/// `softmax(scores / temperature)` in f64; sums to 1 (unless every score is NaN).
pub fn softmax(scores: &[f32], temperature: f32) -> Vec<f64> {
    log_softmax(scores, temperature).into_iter().map(f64::exp).collect()
}

/// Shannon entropy in nats, `-Σ p ln p` (terms with `p = 0` count 0).
pub fn entropy(p: &[f64]) -> f64 {
    -p.iter().filter(|&&x| x > 0.0).map(|&x| x * x.ln()).sum::<f64>()
}

/// `KL(p ‖ q) = Σ p (ln p − ln q)` in nats from log-probabilities (terms with `p = 0` count 0).
pub fn kl_divergence(log_p: &[f64], log_q: &[f64]) -> f64 {
    log_p.iter().zip(log_q).filter(|(lp, _)| lp.is_finite()).map(|(&lp, &lq)| lp.exp() * (lp - lq)).sum()
}

/// The two distributions over a query's candidates and how far apart they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoftLabels {
    /// `P_T = softmax(teacher / T_t)`.
    pub teacher: Vec<f64>,
    /// `P_S = softmax(student / T_s)`.
    pub student: Vec<f64>,
    pub teacher_entropy: f64,
    pub student_entropy: f64,
    /// `KL(P_T ‖ P_S)` in nats.
    pub kl: f64,
    /// The listwise distillation loss of this instance, `T_t² · KL` (`loss::listwise_kl`).
    pub kd_loss: f64,
}

/// Soft labels from the teacher's and the student's scores of the same candidates.
///
/// Panics if the two score lists differ in length.
pub fn soft_labels(
    teacher_scores: &[f32],
    student_scores: &[f32],
    teacher_temperature: f32,
    student_temperature: f32,
) -> SoftLabels {
    assert_eq!(teacher_scores.len(), student_scores.len(), "one teacher and one student score per candidate");
    let log_t = log_softmax(teacher_scores, teacher_temperature);
    let log_s = log_softmax(student_scores, student_temperature);
    let teacher: Vec<f64> = log_t.iter().map(|l| l.exp()).collect();
    let student: Vec<f64> = log_s.iter().map(|l| l.exp()).collect();
    let kl = kl_divergence(&log_t, &log_s);
    let t = teacher_temperature as f64;
    SoftLabels {
        teacher_entropy: entropy(&teacher),
        student_entropy: entropy(&student),
        kl,
        kd_loss: t * t * kl,
        teacher,
        student,
    }
}

/// The lab's walk-through for a class, in numbers from the teacher's scores of one query's
/// candidates: 1. how close to one-hot the teacher is on the query's own candidates, 2. where the
/// dark examples land, 3. how confident the teacher is on the instance (self-paced
/// distillation's criterion). The page shows them beside the candidates; `adam soft-labels
/// --json` prints the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Walkthrough {
    /// Plain candidates: the positive and the mined negatives.
    pub plain: usize,
    /// `P_T` of the positive over the plain candidates only, at `T_t`.
    pub plain_positive: f64,
    /// Entropy of `P_T` over the plain candidates, in nats (0 is one-hot, `ln plain` uniform).
    pub plain_entropy: f64,
    pub dark: usize,
    /// The lowest and highest `P_T` of a dark example over every candidate (`None` without any).
    pub dark_low: Option<f64>,
    pub dark_high: Option<f64>,
    /// `P_T` over every candidate of the positive and of the best-scored negative.
    pub positive: f64,
    pub best_negative: Option<f64>,
    /// Dark examples whose teacher score lies in the target band of METHOD.md §2, `[s- + low (s+
    /// − s-), s- + high (s+ − s-)]`; `None` when there is no band (no negative, or the teacher
    /// does not score the positive above the best one).
    pub in_band: Option<usize>,
    /// The positive's softmax probability at temperature 1 among the plain candidates:
    /// `selfpaced::confidence` with the default measure, which ranks instances for self-paced
    /// distillation.
    pub confidence: f32,
}

/// The walk-through of one query's candidates (as [`candidates`] makes them, the positive
/// first), from the teacher's scores and the soft labels made from them at `settings`.
pub fn walkthrough(
    candidates: &[Candidate],
    teacher_scores: &[f32],
    labels: &SoftLabels,
    settings: &LabSettings,
) -> Walkthrough {
    let of = |want: fn(&CandidateKind) -> bool| -> Vec<usize> {
        candidates.iter().enumerate().filter(|(_, c)| want(&c.kind)).map(|(i, _)| i).collect()
    };
    let positive = of(|k| *k == CandidateKind::Positive)[0];
    let negatives = of(|k| matches!(k, CandidateKind::Negative { .. }));
    let dark = of(|k| matches!(k, CandidateKind::Dark { .. }));
    let scores = dark::TeacherScores {
        positive: teacher_scores[positive],
        negatives: negatives.iter().map(|&i| teacher_scores[i]).collect(),
    };
    // The positive first, then the negatives, as selfpaced::confidence expects.
    let plain_scores: Vec<f32> = std::iter::once(scores.positive).chain(scores.negatives.iter().copied()).collect();
    let plain_p = softmax(&plain_scores, settings.teacher_temperature);
    // P_T is monotone in the score, so the best-scored negative has the highest P_T.
    let probs = |ix: &[usize]| ix.iter().map(|&i| labels.teacher[i]).collect::<Vec<f64>>();
    let dark_p = probs(&dark);
    let config = settings.dark_config(1);
    let in_band = scores
        .band(config.band_low, config.band_high)
        .map(|(lo, hi)| dark.iter().filter(|&&i| (lo..=hi).contains(&teacher_scores[i])).count());
    Walkthrough {
        plain: plain_scores.len(),
        plain_positive: plain_p[0],
        plain_entropy: entropy(&plain_p),
        dark: dark.len(),
        dark_low: dark_p.iter().copied().reduce(f64::min),
        dark_high: dark_p.iter().copied().reduce(f64::max),
        positive: labels.teacher[positive],
        best_negative: probs(&negatives).into_iter().reduce(f64::max),
        in_band,
        confidence: crate::selfpaced::confidence(&plain_scores, crate::selfpaced::ConfidenceMeasure::Softmax, 1.0),
    }
}

/// Dot product (the student's score: cosine similarity for normalised vectors).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Word pieces of the teacher's vocabulary as the student should see them: the same ids when the
/// vocabularies agree, else the decoded text tokenized again by the student.
pub fn to_student_pieces(
    ids: &[u32],
    teacher: &TextTokenizer,
    student: &TextTokenizer,
    same_vocab: bool,
) -> Result<Vec<u32>> {
    if same_vocab { Ok(ids.to_vec()) } else { student.word_pieces(&teacher.decode(ids)?) }
}

/// How a stretch of a dark example's text came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    /// Unchanged.
    Kept,
    /// Replaced by `[MASK]`.
    Masked,
    /// Removed (the text is the removed pieces).
    Deleted,
    /// Copied in from the positive.
    FromPositive,
    /// Copied in from the query.
    FromQuery,
}

/// A run of pieces with the same [`Mark`], as text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub text: String,
    /// Whether a space separates it from the previous segment (false inside a word).
    pub space_before: bool,
    pub mark: Mark,
}

/// A dark example (or any piece sequence, with no edits) cut into marked runs of text for
/// highlighting; `token` names an id (e.g. `TextTokenizer::id_to_token`). `##` continuation
/// pieces join the previous piece.
pub fn segments(ids: &[u32], edits: &[Edit], token: impl Fn(u32) -> String) -> Vec<Segment> {
    let mut marks = vec![Mark::Kept; ids.len()];
    let mut deleted: Vec<(usize, u32)> = Vec::new();
    for e in edits {
        let mark = match (e.op, e.source) {
            (EditOp::Mask, _) => Mark::Masked,
            (EditOp::Delete, _) => {
                deleted.extend(e.replaced.iter().map(|&id| (e.position, id)));
                continue;
            }
            (_, EditSource::Positive) => Mark::FromPositive,
            (_, EditSource::Query) => Mark::FromQuery,
        };
        for m in marks.iter_mut().skip(e.position).take(e.len) {
            *m = mark;
        }
    }
    // Pieces in reading order: deleted ones before the piece that took their place.
    let mut pieces: Vec<(u32, Mark)> = Vec::with_capacity(ids.len() + deleted.len());
    let mut d = deleted.iter().peekable();
    for (p, (&id, &mark)) in ids.iter().zip(&marks).enumerate() {
        while let Some(&&(_, del)) = d.peek().filter(|(pos, _)| *pos <= p) {
            pieces.push((del, Mark::Deleted));
            d.next();
        }
        pieces.push((id, mark));
    }
    pieces.extend(d.map(|&(_, del)| (del, Mark::Deleted)));
    let mut out: Vec<Segment> = Vec::new();
    for (i, (id, mark)) in pieces.into_iter().enumerate() {
        let tok = token(id);
        let (piece, joins) = match tok.strip_prefix("##") {
            Some(rest) => (rest.to_string(), true),
            None => (tok, false),
        };
        let space = i > 0 && !joins;
        match out.last_mut() {
            Some(last) if last.mark == mark => {
                if space {
                    last.text.push(' ');
                }
                last.text.push_str(&piece);
            }
            _ => out.push(Segment { text: piece, space_before: space, mark }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn special() -> SpecialTokens {
        SpecialTokens { pad: 0, cls: 101, sep: 102, mask: 103, unk: 100 }
    }

    #[test]
    fn walkthrough_by_hand() {
        use CandidateKind::*;
        // Positive 2, negatives 0 and 1, dark examples 1.5 (in the band [1.25, 1.75] around
        // s- = 1, s+ = 2 at 0.25 / 0.75), 1.9 (above it) and 0 (below it).
        let kinds = [
            Positive,
            Negative { index: 0 },
            Dark { index: 0 },
            Negative { index: 1 },
            Dark { index: 1 },
            Dark { index: 2 },
        ];
        let candidates: Vec<Candidate> =
            kinds.iter().map(|&kind| Candidate { kind, label: String::new(), ids: Vec::new(), dark: None }).collect();
        let settings = |t: f32| LabSettings { teacher_temperature: t, ..LabSettings::default() };
        let scores = [2.0, 0.0, 1.5, 1.0, 1.9, 0.0];
        let labels = soft_labels(&scores, &[0.0; 6], 1.0, 1.0);
        let w = walkthrough(&candidates, &scores, &labels, &settings(1.0));
        let e = std::f64::consts::E;
        // Plain: softmax(2, 0, 1) → e² / (e² + 1 + e).
        let z = e * e + 1.0 + e;
        assert!((w.plain_positive - e * e / z).abs() < 1e-12, "{w:?}");
        let plain = [e * e / z, 1.0 / z, e / z];
        assert!((w.plain_entropy - entropy(&plain)).abs() < 1e-12, "{w:?}");
        assert_eq!((w.plain, w.dark, w.in_band), (3, 3, Some(1)));
        assert_eq!(w.positive, labels.teacher[0]);
        assert_eq!(w.best_negative, Some(labels.teacher[3]));
        assert_eq!((w.dark_low, w.dark_high), (Some(labels.teacher[5]), Some(labels.teacher[4])));
        assert!((w.confidence as f64 - e * e / z).abs() < 1e-6, "{w:?}");
        // At T_t = 2 the plain distribution flattens; the confidence stays at temperature 1.
        let labels2 = soft_labels(&scores, &[0.0; 6], 2.0, 1.0);
        let w2 = walkthrough(&candidates, &scores, &labels2, &settings(2.0));
        assert!(w2.plain_positive < w.plain_positive && w2.confidence == w.confidence, "{w2:?}");
        // The teacher ranks a negative above the positive: no band.
        let wrong = walkthrough(&candidates, &[0.5, 0.0, 1.5, 1.0, 1.9, 0.0], &labels, &settings(1.0));
        assert_eq!(wrong.in_band, None);
    }

    #[test]
    fn softmax_entropy_and_kl_by_hand() {
        let p = softmax(&[0.0, 0.0], 1.0);
        assert_eq!(p, vec![0.5, 0.5]);
        assert!((entropy(&p) - 2f64.ln()).abs() < 1e-12);
        // METHOD.md, section 1: softmax(8, 3, 1, -2) = (0.992, 0.007, 0.001, 0.000).
        let p = softmax(&[8.0, 3.0, 1.0, -2.0], 1.0);
        assert!((p[0] - 0.992364).abs() < 1e-6 && (p[1] - 0.006686).abs() < 1e-6, "{p:?}");
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // Temperature 2 halves the logits.
        assert_eq!(softmax(&[8.0, 4.0], 2.0), softmax(&[4.0, 2.0], 1.0));
        // KL of a distribution with itself is 0; KL((1,0) || (0.5,0.5)) = ln 2.
        let lp = log_softmax(&[1.0, 2.0, 3.0], 1.0);
        assert_eq!(kl_divergence(&lp, &lp), 0.0);
        let one_hot = [0.0, f64::NEG_INFINITY];
        let half = [0.5f64.ln(), 0.5f64.ln()];
        assert!((kl_divergence(&one_hot, &half) - 2f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn soft_labels_match_the_loss_of_method_md() {
        // METHOD.md, section 5: eight candidates, T_t = 1, T_s = 0.05, L_KD = 0.0775.
        let teacher = [8.0, 3.0, 1.0, -2.0, 5.1, 6.2, 5.6, 4.8];
        let student = [0.71, 0.52, 0.40, 0.18, 0.60, 0.66, 0.55, 0.58];
        let s = soft_labels(&teacher, &student, 1.0, 0.05);
        assert!((s.kd_loss - 0.0775).abs() < 5e-4, "{}", s.kd_loss);
        assert!((s.teacher[0] - 0.736).abs() < 1e-3 && (s.student[0] - 0.618).abs() < 1e-3);
        assert!((s.teacher.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((s.student.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(s.kl > 0.0 && s.teacher_entropy > 0.0 && s.student_entropy > 0.0);
        // A higher teacher temperature flattens the teacher: more entropy.
        assert!(soft_labels(&teacher, &student, 2.0, 0.05).teacher_entropy > s.teacher_entropy);
    }

    #[test]
    fn candidates_are_positive_negatives_then_dark_examples() {
        let query = [7u32, 8];
        let positive = [10u32, 11, 12, 13, 14, 15, 16, 17, 18, 19];
        let negatives = vec![vec![20u32, 21, 22, 23, 24, 25], vec![30u32, 31, 32, 33]];
        let settings = LabSettings::default();
        let config = settings.dark_config(254);
        let c = candidates(&query, &positive, &negatives, &special(), &config, 3);
        let labels: Vec<&str> = c.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "positive", "negative 1", "negative 2", "masked positive 1", "masked positive 2", "mixed negative 1",
                "query-mixed negative 1"
            ]
        );
        // Deterministic, and the dark examples are those of dark::generate.
        assert_eq!(c, candidates(&query, &positive, &negatives, &special(), &config, 3));
        let instance = DarkInstance { query: &query, positive: &positive, negatives: &negatives, key: 3 };
        let generated = dark::generate(&instance, &special(), &config);
        for (k, g) in generated.iter().enumerate() {
            assert_eq!(c[3 + k].dark.as_ref(), Some(g));
            assert_eq!(c[3 + k].ids, g.ids);
        }
        // 30 % of 10 pieces masked.
        assert_eq!(c[3].ids.iter().filter(|&&id| id == 103).count(), 3);
        // A higher mask ratio masks more.
        let more = LabSettings { mask_ratio: 0.8, ..settings.clone() }.dark_config(254);
        let c2 = candidates(&query, &positive, &negatives, &special(), &more, 3);
        assert_eq!(c2[3].ids.iter().filter(|&&id| id == 103).count(), 8);
        // Another seed, other draws.
        let other = LabSettings { seed: 7, ..settings.clone() }.dark_config(254);
        assert_ne!(candidates(&query, &positive, &negatives, &special(), &other, 3)[3], c[3]);
        // Deleting instead of masking: the same pieces go, and no [MASK] is left.
        let cut = LabSettings { noisy_mode: NoisyMode::Delete, ..settings }.dark_config(254);
        let c3 = candidates(&query, &positive, &negatives, &special(), &cut, 3);
        assert_eq!(c3[3].label, "cut positive 1");
        assert_eq!(c3[3].ids.len(), 7);
        assert!(!c3[3].ids.contains(&103));
        assert!(c3[3].ids.iter().all(|id| c[3].ids.contains(id)), "the kept pieces are the unmasked ones");
    }

    #[test]
    fn segments_mark_edits_and_join_word_pieces() {
        let token = |id: u32| match id {
            1 => "the".to_string(),
            2 => "tide".into(),
            3 => "##s".into(),
            4 => "rise".into(),
            103 => "[MASK]".into(),
            9 => "moon".into(),
            other => format!("t{other}"),
        };
        let positive = [1u32, 2, 3, 4];
        let masked = dark::mask_positive(&positive, 0.25, &special(), 10, 1);
        let segs = segments(&masked.ids, &masked.edits, token);
        assert_eq!(segs.iter().filter(|s| s.mark == Mark::Masked).count(), 1);
        assert!(segs.iter().any(|s| s.text == "[MASK]"));
        // Unedited text reads as words.
        let plain = segments(&positive, &[], token);
        assert_eq!(plain, vec![Segment { text: "the tides rise".into(), space_before: false, mark: Mark::Kept }]);
        // Deleted pieces show where they were.
        let cut = dark::delete_positive(&positive, 0.5, &special(), 10, 4);
        let segs = segments(&cut.ids, &cut.edits, token);
        let deleted: usize = segs.iter().filter(|s| s.mark == Mark::Deleted).map(|s| s.text.split(' ').count()).sum();
        assert!(deleted >= 1);
        let all: String = segs.iter().map(|s| format!("{}{}", if s.space_before { " " } else { "" }, s.text)).collect();
        assert_eq!(all, "the tides rise", "every piece, kept or deleted, in order");
        // Copied spans name their source.
        let mixed = dark::mix_negative(
            &[20, 21, 22, 23],
            &positive,
            Some(&[9]),
            0.5,
            dark::MixMode::Replace,
            4,
            &special(),
            10,
            2,
        );
        let segs = segments(&mixed.ids, &mixed.edits, token);
        assert!(segs.iter().any(|s| s.mark == Mark::FromQuery && s.text == "moon"), "{segs:?}");
    }

    #[test]
    fn settings_are_checked() {
        assert!(LabSettings::default().validate().is_ok());
        let bad = LabSettings { mask_ratio: 1.5, ..Default::default() };
        assert!(bad.validate().unwrap_err().contains("mask ratio"));
        let bad = LabSettings { student_temperature: 0.0, ..Default::default() };
        assert!(bad.validate().unwrap_err().contains("student temperature"));
    }
}
