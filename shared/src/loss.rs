//! Distillation and contrastive losses over candidate scores, and the ADAM objective.
//!
//! Scores are `[batch, candidates]` tensors; a `padding` mask (true where a row has no candidate
//! in that column) lets rows have different candidate counts. Per-instance losses come back as
//! `[batch]` tensors so self-paced weights can be applied before reduction. Teacher scores are
//! detached: gradients flow into the student only.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Bool, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::dark::DarkConfig;
use crate::selfpaced::SelfPacedConfig;

/// Logit given to padded candidates: its softmax mass is exactly 0 in f32.
const PADDED_LOGIT: f32 = -1.0e9;

fn mask_logits(logits: Tensor<2>, padding: Option<&Tensor<2, Bool>>) -> Tensor<2> {
    match padding {
        Some(p) => logits.mask_fill(p.clone(), PADDED_LOGIT),
        None => logits,
    }
}

/// Listwise distillation, per instance:
/// `T_t^2 * KL(softmax(teacher / T_t) || softmax(student / T_s))` over each row's candidates.
///
/// `T_t` is the distillation temperature (Hinton et al.'s `T^2` keeps gradient sizes comparable
/// across temperatures); `T_s` converts student scores to logits (e.g. 0.05 for cosine
/// similarities). With `T_s = T_t = T` this is the textbook `T^2 KL`.
pub fn listwise_kl(
    student: Tensor<2>,
    teacher: Tensor<2>,
    padding: Option<&Tensor<2, Bool>>,
    student_temperature: f32,
    teacher_temperature: f32,
) -> Tensor<1> {
    let log_t = log_softmax(mask_logits(teacher.detach().div_scalar(teacher_temperature), padding), 1);
    let log_s = log_softmax(mask_logits(student.div_scalar(student_temperature), padding), 1);
    let mut terms = log_t.clone().exp() * (log_t - log_s);
    if let Some(p) = padding {
        terms = terms.mask_fill(p.clone(), 0.0);
    }
    terms.sum_dim(1).squeeze_dim::<1>(1).mul_scalar(teacher_temperature * teacher_temperature)
}

/// Contrastive cross-entropy (InfoNCE), per row: `-log softmax(scores / T)[target]`.
/// Use [`in_batch_scores`] for in-batch negatives.
pub fn contrastive_loss(
    scores: Tensor<2>,
    targets: &[usize],
    padding: Option<&Tensor<2, Bool>>,
    temperature: f32,
) -> Tensor<1> {
    let [batch, candidates] = scores.dims();
    assert_eq!(targets.len(), batch, "one target per row");
    let mut one_hot = vec![0.0f32; batch * candidates];
    for (row, &t) in targets.iter().enumerate() {
        assert!(t < candidates, "target {t} out of {candidates} candidates");
        one_hot[row * candidates + t] = 1.0;
    }
    let one_hot = Tensor::<2>::from_data(TensorData::new(one_hot, [batch, candidates]), &scores.device());
    let log_p = log_softmax(mask_logits(scores.div_scalar(temperature), padding), 1);
    (log_p * one_hot).sum_dim(1).squeeze_dim::<1>(1).neg()
}

/// Scores of every query against every passage of the batch, for in-batch negatives.
#[derive(Debug, Clone)]
pub struct InBatch {
    /// `[batch, batch * candidates]`: query `i` against passage `c` of query `j` at `j * C + c`.
    pub scores: Tensor<2>,
    /// Column of each query's positive (`i * C`).
    pub targets: Vec<usize>,
    /// Padded passages of any query, masked for every row.
    pub padding: Option<Tensor<2, Bool>>,
}

/// Dot products of `queries` `[B, d]` with all `passages` `[B, C, d]` (column 0 of each query
/// its positive); `padding` `[B, C]` marks absent passages. Normalize first for cosine.
pub fn in_batch_scores(queries: Tensor<2>, passages: Tensor<3>, padding: Option<&Tensor<2, Bool>>) -> InBatch {
    let [batch, candidates, dim] = passages.dims();
    let flat = passages.reshape([batch * candidates, dim]);
    let scores = queries.matmul(flat.transpose());
    let padding = padding.map(|p| p.clone().reshape([1, batch * candidates]).repeat_dim(0, batch));
    InBatch { scores, targets: (0..batch).map(|i| i * candidates).collect(), padding }
}

/// MarginMSE (Hofstätter et al. 2020, sentence-transformers `MarginMSELoss`), per row: the mean
/// over the row's negatives `j >= 1` of `((s_0 - s_j) - (t_0 - t_j))^2`; column 0 is the positive.
pub fn margin_mse(student: Tensor<2>, teacher: Tensor<2>, padding: Option<&Tensor<2, Bool>>) -> Tensor<1> {
    let [batch, candidates] = student.dims();
    assert!(candidates >= 2, "MarginMSE needs a positive and at least one negative");
    let margins = |s: Tensor<2>| {
        let pos = s.clone().narrow(1, 0, 1);
        pos - s.narrow(1, 1, candidates - 1)
    };
    let mut sq = (margins(student) - margins(teacher.detach())).square();
    let count = match padding {
        Some(p) => {
            let neg_pad = p.clone().narrow(1, 1, candidates - 1);
            sq = sq.mask_fill(neg_pad.clone(), 0.0);
            neg_pad.bool_not().float().sum_dim(1).clamp_min(1.0)
        }
        None => Tensor::<2>::full([batch, 1], (candidates - 1) as f32, &sq.device()),
    };
    (sq.sum_dim(1) / count).squeeze_dim::<1>(1)
}

/// Which distillation term the objective uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KdLoss {
    /// Listwise KL over positive, hard negatives and dark examples (ADAM).
    #[default]
    Kl,
    /// MarginMSE on the same candidates (baseline).
    MarginMse,
}

/// Loss knobs; field names are the config names in METHOD.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LossConfig {
    /// Weight of the distillation term.
    pub alpha: f32,
    pub kd_loss: KdLoss,
    /// Student temperature `T_s` of the KL term.
    pub kd_student_temperature: f32,
    /// Teacher (distillation) temperature `T_t` of the KL term.
    pub kd_teacher_temperature: f32,
    /// Temperature of the contrastive term.
    pub contrastive_temperature: f32,
    /// Score each query against the other queries' passages too.
    pub in_batch_negatives: bool,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            kd_loss: KdLoss::Kl,
            kd_student_temperature: 0.05,
            kd_teacher_temperature: 1.0,
            contrastive_temperature: 0.05,
            in_batch_negatives: true,
        }
    }
}

impl LossConfig {
    /// The configured distillation term, per instance.
    pub fn kd(&self, student: Tensor<2>, teacher: Tensor<2>, padding: Option<&Tensor<2, Bool>>) -> Tensor<1> {
        match self.kd_loss {
            KdLoss::Kl => {
                listwise_kl(student, teacher, padding, self.kd_student_temperature, self.kd_teacher_temperature)
            }
            KdLoss::MarginMse => margin_mse(student, teacher, padding),
        }
    }

    /// The contrastive term, per instance, at the configured temperature.
    pub fn contrastive(&self, scores: Tensor<2>, targets: &[usize], padding: Option<&Tensor<2, Bool>>) -> Tensor<1> {
        contrastive_loss(scores, targets, padding, self.contrastive_temperature)
    }

    pub fn validate(&self) -> Result<(), String> {
        for (name, t) in [
            ("kd_student_temperature", self.kd_student_temperature),
            ("kd_teacher_temperature", self.kd_teacher_temperature),
            ("contrastive_temperature", self.contrastive_temperature),
        ] {
            if !(t > 0.0 && t.is_finite()) {
                return Err(format!("{name} = {t} must be positive"));
            }
        }
        if !(self.alpha >= 0.0 && self.alpha.is_finite()) {
            return Err(format!("alpha = {} must be non-negative", self.alpha));
        }
        Ok(())
    }
}

/// The ADAM objective and its parts, each a one-element tensor.
#[derive(Debug, Clone)]
pub struct AdamLoss {
    /// `contrastive + alpha * kd`.
    pub total: Tensor<1>,
    /// Mean contrastive loss of the batch.
    pub contrastive: Tensor<1>,
    /// `sum_i w_i kd_i / batch`.
    pub kd: Tensor<1>,
}

/// `mean_i contrastive_i + alpha * (1/B) sum_i w_i kd_i`, with `w` the self-paced weights.
///
/// Dividing by the batch size (not by `sum w`) makes the distillation term grow as self-paced
/// learning admits more instances, as in self-paced learning's weighted sum of losses.
pub fn adam_objective(contrastive: Tensor<1>, kd: Tensor<1>, weights: Tensor<1>, alpha: f32) -> AdamLoss {
    let [batch] = contrastive.dims();
    let contrastive = contrastive.mean();
    let kd = (kd * weights).sum().div_scalar(batch.max(1) as f32);
    let total = contrastive.clone() + kd.clone().mul_scalar(alpha);
    AdamLoss { total, contrastive, kd }
}

/// All ADAM knobs, as the trainer's config embeds them (`[adam.dark]`, `[adam.self_paced]`,
/// `[adam.loss]`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamConfig {
    pub dark: DarkConfig,
    pub self_paced: SelfPacedConfig,
    pub loss: LossConfig,
}

impl AdamConfig {
    pub fn validate(&self) -> Result<(), String> {
        self.dark.validate().map_err(|e| format!("dark: {e}"))?;
        self.self_paced.validate().map_err(|e| format!("self_paced: {e}"))?;
        self.loss.validate().map_err(|e| format!("loss: {e}"))
    }
}
