//! The ADAM method: dark-example properties, losses against hand-computed values and finite
//! differences, self-paced selection, and the worked example of METHOD.md.

use adam_core::dark::{
    self, DarkConfig, DarkExample, DarkInstance, DarkKind, EditOp, EditSource, MixMode, TeacherScores,
};
use adam_core::loss::{self, AdamConfig, LossConfig};
use adam_core::selfpaced::{self, ConfidenceMeasure, Schedule, SelfPacedConfig, Weighting};
use adam_core::tokenize::SpecialTokens;
use burn::tensor::{Bool, Device, Tensor, TensorData};
use proptest::prelude::*;

/// BERT's ids.
const SPECIAL: SpecialTokens = SpecialTokens { pad: 0, unk: 100, cls: 101, sep: 102, mask: 103 };

/// Word pieces, now and then an `[UNK]` (the only special a word-piece sequence holds).
fn pieces(max_len: usize) -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(prop_oneof![20 => 1000u32..1100, 1 => Just(SPECIAL.unk)], 0..max_len)
}

fn specials_of(ids: &[u32]) -> Vec<(usize, u32)> {
    ids.iter().copied().enumerate().filter(|&(_, id)| SPECIAL.is_special(id)).collect()
}

fn editable(ids: &[u32]) -> usize {
    ids.iter().filter(|&&id| !SPECIAL.is_special(id)).count()
}

/// Undoes the edits of a mixed negative, giving back the (truncated) negative.
fn unmix(example: &DarkExample) -> Vec<u32> {
    let mut ids = example.ids.clone();
    for e in example.edits.iter().rev() {
        ids.splice(e.position..e.position + e.len, e.replaced.iter().copied());
    }
    ids
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn masking_respects_ratio_specials_and_length(
        pos in pieces(80), ratio in 0.0f32..=1.0, max in 1usize..100, seed: u64,
    ) {
        let ex = dark::mask_positive(&pos, ratio, &SPECIAL, max, seed);
        let base = &pos[..pos.len().min(max)];
        prop_assert_eq!(ex.ids.len(), base.len());
        prop_assert_eq!(ex.edits.len(), dark::edit_count(ratio, editable(base)));
        prop_assert!((ex.edits.len() as f32 - ratio * editable(base) as f32).abs() <= 1.0);
        for e in &ex.edits {
            prop_assert_eq!(e.op, EditOp::Mask);
            prop_assert_eq!(ex.ids[e.position], SPECIAL.mask);
            prop_assert_eq!(&e.replaced, &vec![base[e.position]]);
            prop_assert!(!SPECIAL.is_special(base[e.position]));
        }
        let masked: Vec<usize> = ex.edits.iter().map(|e| e.position).collect();
        for (i, (&a, &b)) in base.iter().zip(&ex.ids).enumerate() {
            if !masked.contains(&i) { prop_assert_eq!(a, b); }
        }
        prop_assert_eq!(&ex, &dark::mask_positive(&pos, ratio, &SPECIAL, max, seed));
    }

    #[test]
    fn higher_ratio_masks_a_superset(pos in pieces(60), a in 0.0f32..=1.0, b in 0.0f32..=1.0, seed: u64) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let low = dark::mask_positive(&pos, lo, &SPECIAL, 512, seed);
        let high = dark::mask_positive(&pos, hi, &SPECIAL, 512, seed);
        for e in &low.edits {
            prop_assert!(high.edits.iter().any(|h| h.position == e.position));
        }
    }

    #[test]
    fn deletion_respects_ratio_and_is_reversible(
        pos in pieces(80), ratio in 0.0f32..=1.0, max in 1usize..100, seed: u64,
    ) {
        let ex = dark::delete_positive(&pos, ratio, &SPECIAL, max, seed);
        let base = &pos[..pos.len().min(max)];
        let n = dark::edit_count(ratio, editable(base));
        prop_assert_eq!(ex.edits.len(), n);
        prop_assert_eq!(ex.ids.len(), base.len() - n);
        let mut restored = ex.ids.clone();
        for e in ex.edits.iter().rev() {
            prop_assert!(!SPECIAL.is_special(e.replaced[0]));
            restored.insert(e.position, e.replaced[0]);
        }
        prop_assert_eq!(&restored[..], base);
        prop_assert_eq!(&ex, &dark::delete_positive(&pos, ratio, &SPECIAL, max, seed));
    }

    #[test]
    fn mixing_respects_ratio_specials_sources_and_length(
        neg in pieces(80), pos in pieces(40), query in pieces(12), with_query: bool, insert: bool,
        ratio in 0.0f32..=1.0, span_len in 1usize..8, max in 1usize..100, seed: u64,
    ) {
        let mode = if insert { MixMode::Insert } else { MixMode::Replace };
        let q = with_query.then_some(&query[..]);
        let ex = dark::mix_negative(&neg, &pos, q, ratio, mode, span_len, &SPECIAL, max, seed);
        let base = &neg[..neg.len().min(max)];
        prop_assert!(ex.ids.len() <= max.max(base.len()));
        prop_assert_eq!(&unmix(&ex), base);
        let ids_of = |v: Vec<(usize, u32)>| v.into_iter().map(|(_, id)| id).collect::<Vec<_>>();
        prop_assert_eq!(ids_of(specials_of(&ex.ids)), ids_of(specials_of(base)));
        if !insert { prop_assert_eq!(specials_of(&ex.ids), specials_of(base)); }
        let wanted = dark::edit_count(ratio, editable(base));
        let written: usize = ex.edits.iter().map(|e| e.len).sum();
        let cap = if insert { wanted.min(max - base.len()) } else { wanted };
        // Only a positive without any non-special piece can leave the budget unspent.
        if editable(&pos) > 0 { prop_assert_eq!(written, cap); } else { prop_assert!(written <= cap); }
        if !insert { prop_assert_eq!(ex.ids.len(), base.len()); }
        for e in &ex.edits {
            let src = if e.source == EditSource::Query { &query } else { &pos };
            prop_assert!(e.len >= 1 && (e.source == EditSource::Query || e.len <= span_len));
            prop_assert_eq!(&ex.ids[e.position..e.position + e.len], &src[e.source_span.clone()]);
            prop_assert!(ex.ids[e.position..e.position + e.len].iter().all(|&id| !SPECIAL.is_special(id)));
            prop_assert!(e.replaced.iter().all(|&id| !SPECIAL.is_special(id)));
        }
        prop_assert!(ex.edits.windows(2).all(|w| w[0].position + w[0].len <= w[1].position));
        prop_assert_eq!(&ex, &dark::mix_negative(&neg, &pos, q, ratio, mode, span_len, &SPECIAL, max, seed));
    }

    #[test]
    fn generation_is_deterministic_and_serializable(
        q in pieces(10), pos in pieces(40), negs in prop::collection::vec(pieces(40), 0..4), key: u64, seed: u64,
    ) {
        let config = DarkConfig { seed, ..DarkConfig::default() };
        let instance = DarkInstance { query: &q, positive: &pos, negatives: &negs, key };
        let a = dark::generate(&instance, &SPECIAL, &config);
        prop_assert_eq!(&a, &dark::generate(&instance, &SPECIAL, &config));
        let expected = config.noisy_positives + if negs.is_empty() { 0 } else { 2 };
        prop_assert_eq!(a.len(), expected);
        let json = serde_json::to_string(&a).unwrap();
        prop_assert_eq!(&serde_json::from_str::<Vec<DarkExample>>(&json).unwrap(), &a);
    }
}

#[test]
fn other_seeds_give_other_examples() {
    let pos: Vec<u32> = (1000..1040).collect();
    let a = dark::mask_positive(&pos, 0.3, &SPECIAL, 512, 1);
    let b = dark::mask_positive(&pos, 0.3, &SPECIAL, 512, 2);
    assert_ne!(a.ids, b.ids);
}

#[test]
fn dark_example_json_names_its_kind() {
    let ex = dark::mix_negative(&[1000, 1001, 1002], &[2000, 2001], None, 0.5, MixMode::Replace, 2, &SPECIAL, 10, 7);
    let json = serde_json::to_value(&ex).unwrap();
    assert_eq!(json["kind"]["type"], "mixed_negative");
    assert_eq!(json["kind"]["with_query"], false);
    assert_eq!(json["edits"][0]["op"], "replace");
    assert_eq!(json["edits"][0]["source"], "positive");
    assert!(json["edits"][0]["source_span"]["start"].is_u64());
    assert_eq!(ex.with_specials(&SPECIAL).first(), Some(&SPECIAL.cls));
}

/// A teacher that likes positive pieces: `neg + (pos - neg) * share of the positive's pieces`.
fn overlap_teacher(positive: &[u32], pos: f32, neg: f32) -> impl Fn(&DarkExample) -> f32 {
    let positive = positive.to_vec();
    move |ex: &DarkExample| {
        let hits = ex.ids.iter().filter(|id| positive.contains(id)).count();
        neg + (pos - neg) * hits as f32 / positive.len() as f32
    }
}

#[test]
fn adaptive_search_lands_in_the_band() {
    let q: Vec<u32> = vec![2000, 2001];
    let pos: Vec<u32> = (1000..1040).collect();
    let negs: Vec<Vec<u32>> = vec![(3000..3040).collect(), (4000..4040).collect()];
    let scores = TeacherScores { positive: 10.0, negatives: vec![1.0, 2.0] };
    // A narrow band: masked examples need a ratio in [0.65, 0.9], far from the first try (0.3).
    let config = DarkConfig { band_low: 0.1, band_high: 0.35, search_steps: 6, ..DarkConfig::default() };
    let teacher = overlap_teacher(&pos, 10.0, 2.0);
    let mut calls = 0;
    let out = dark::generate_adaptive(
        &[DarkInstance { query: &q, positive: &pos, negatives: &negs, key: 3 }],
        std::slice::from_ref(&scores),
        &SPECIAL,
        &config,
        |batch| {
            calls += 1;
            batch
                .iter()
                .map(|(i, ex)| {
                    assert_eq!(*i, 0);
                    teacher(ex)
                })
                .collect()
        },
    );
    assert!(calls <= config.search_steps);
    let (lo, hi) = scores.band(0.1, 0.35).unwrap();
    assert!((lo - 2.8).abs() < 1e-5 && (hi - 4.8).abs() < 1e-5);
    assert_eq!(out[0].len(), config.per_query());
    for ex in &out[0] {
        let s = ex.teacher_score.unwrap();
        assert_eq!(ex.band_reached, Some(true), "{:?} at {} scored {s}", ex.kind, ex.ratio);
        assert!((lo..=hi).contains(&s));
        assert_eq!(s, teacher(ex));
        if let DarkKind::MixedNegative { .. } = ex.kind {
            assert_eq!(ex.negative, Some(1), "the hardest negative is mixed first");
        }
    }
}

#[test]
fn adaptive_search_records_an_unreachable_band() {
    let pos: Vec<u32> = (1000..1010).collect();
    let negs = vec![(3000..3010).collect::<Vec<u32>>()];
    let instance = DarkInstance { query: &[], positive: &pos, negatives: &negs, key: 0 };
    let config = DarkConfig::default();
    let mut calls = 0;
    // The teacher scores every dark example far below the band.
    let out = dark::generate_adaptive(
        &[instance],
        &[TeacherScores { positive: 5.0, negatives: vec![0.0] }],
        &SPECIAL,
        &config,
        |b| {
            calls += 1;
            vec![-100.0; b.len()]
        },
    );
    assert_eq!(calls, config.search_steps);
    assert!(out[0].iter().all(|ex| ex.band_reached == Some(false) && ex.teacher_score == Some(-100.0)));

    // No band at all when the teacher prefers a negative: one try, at the configured ratio.
    let mut calls = 0;
    let out = dark::generate_adaptive(
        &[instance],
        &[TeacherScores { positive: 0.0, negatives: vec![5.0] }],
        &SPECIAL,
        &config,
        |b| {
            calls += 1;
            vec![1.0; b.len()]
        },
    );
    assert_eq!(calls, 1);
    assert!(out[0].iter().all(|ex| ex.band_reached == Some(false) && ex.ratio == 0.3));

    // Without the adaptive flag: the fixed-ratio examples, scored once, no band verdict.
    let fixed = DarkConfig { adaptive: false, ..config };
    let out = dark::generate_adaptive(
        &[instance],
        &[TeacherScores { positive: 5.0, negatives: vec![0.0] }],
        &SPECIAL,
        &fixed,
        |b| vec![1.0; b.len()],
    );
    let plain = dark::generate(&instance, &SPECIAL, &fixed);
    assert_eq!(out[0].iter().map(|e| &e.ids).collect::<Vec<_>>(), plain.iter().map(|e| &e.ids).collect::<Vec<_>>());
    assert!(out[0].iter().all(|ex| ex.band_reached.is_none()));
}

// ---- losses ----

fn t2(rows: &[&[f32]], device: &Device) -> Tensor<2> {
    let cols = rows[0].len();
    let data: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_data(TensorData::new(data, [rows.len(), cols]), device)
}

fn mask2(rows: &[&[bool]], device: &Device) -> Tensor<2, Bool> {
    let cols = rows[0].len();
    let data: Vec<bool> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_data(TensorData::new(data, [rows.len(), cols]), device)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().unwrap()
}

fn assert_close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{got:?} vs {want:?}");
    }
}

#[test]
fn kl_matches_hand_computed_values() {
    let d = Device::flex();
    let s = t2(&[&[1.0, 2.0, 3.0], &[0.5, -1.0, 9.0]], &d);
    let t = t2(&[&[3.0, 2.0, 1.0], &[2.0, 0.0, -9.0]], &d);
    let pad = mask2(&[&[false, false, false], &[false, false, true]], &d);
    // Row 0: sum_j p_j log(p_j / q_j), p = softmax(3,2,1), q = softmax(1,2,3); row 1 ignores column 2.
    let got = values(loss::listwise_kl(s.clone(), t.clone(), Some(&pad), 1.0, 1.0));
    assert_close(&got, &[1.150_420_8, 0.014_883_806], 1e-5);
    // Separate temperatures: T_s = 0.5, T_t = 2, scaled by T_t^2 = 4.
    let got = values(loss::listwise_kl(s.narrow(0, 0, 1), t.narrow(0, 0, 1), None, 0.5, 2.0));
    assert_close(&got, &[7.052_214_5], 1e-5);
}

#[test]
fn contrastive_and_margin_mse_match_hand_computed_values() {
    let d = Device::flex();
    let s = t2(&[&[1.0, 2.0, 3.0], &[0.5, -1.0, 7.0]], &d);
    let pad = mask2(&[&[false, false, false], &[false, false, true]], &d);
    // Row 0: -log softmax(2, 4, 6)[0]; row 1: -log softmax(1, -2)[1] at T = 0.5.
    let got = values(loss::contrastive_loss(s.clone(), &[0, 1], Some(&pad), 0.5));
    assert_close(&got, &[4.142_931_6, 3.048_587_4], 1e-5);
    // Margins (s0 - sj) = (-1, -2) vs teacher (1, 2): ((-2)^2 + (-4)^2) / 2 = 10.
    let t = t2(&[&[3.0, 2.0, 1.0], &[0.0, 1.0, 5.0]], &d);
    let got = values(loss::margin_mse(s, t, Some(&pad)));
    // Row 1: only negative 1: ((0.5 + 1) - (0 - 1))^2 = 6.25.
    assert_close(&got, &[10.0, 6.25], 1e-6);
}

#[test]
fn in_batch_scores_put_each_positive_at_its_column() {
    let d = Device::flex();
    let q = t2(&[&[1.0, 0.0], &[0.0, 1.0]], &d);
    let p = Tensor::<3>::from_data(TensorData::new(vec![1.0f32, 0.0, 0.5, 0.5, 0.0, 1.0, 0.2, 0.1], [2, 2, 2]), &d);
    let pad = mask2(&[&[false, false], &[false, true]], &d);
    let ib = loss::in_batch_scores(q, p, Some(&pad));
    assert_eq!(ib.targets, vec![0, 2]);
    assert_close(&values(ib.scores), &[1.0, 0.5, 0.0, 0.2, 0.0, 0.5, 1.0, 0.1], 1e-6);
    let padding: Vec<bool> = ib.padding.unwrap().into_data().try_into_vec().unwrap();
    assert_eq!(padding, vec![false, false, false, true, false, false, false, true]);
}

#[test]
fn adam_objective_weights_the_kd_term() {
    let d = Device::flex();
    let c = Tensor::<1>::from_floats([1.0, 3.0], &d);
    let kd = Tensor::<1>::from_floats([4.0, 8.0], &d);
    let w = Tensor::<1>::from_floats([1.0, 0.0], &d);
    let out = loss::adam_objective(c, kd, w, 0.5);
    assert_close(&values(out.contrastive), &[2.0], 1e-6);
    assert_close(&values(out.kd), &[2.0], 1e-6); // (1*4 + 0*8) / 2
    assert_close(&values(out.total), &[3.0], 1e-6);
}

/// Checks `d loss.sum() / d student` from autodiff against central differences.
fn check_gradient(f: impl Fn(Tensor<2>) -> Tensor<1>, student: &[&[f32]]) {
    let ad = Device::flex().autodiff();
    let x = t2(student, &ad).require_grad();
    let grads = f(x.clone()).sum().backward();
    let analytic = values(x.grad(&grads).expect("student gradient"));
    let plain = Device::flex();
    let flat: Vec<f32> = student.iter().flat_map(|r| r.iter().copied()).collect();
    let cols = student[0].len();
    let eval = |v: &[f32]| {
        let rows: Vec<&[f32]> = v.chunks(cols).collect();
        values(f(t2(&rows, &plain)).sum())[0] as f64
    };
    let eps = 1e-2f32;
    for i in 0..flat.len() {
        let (mut up, mut down) = (flat.clone(), flat.clone());
        up[i] += eps;
        down[i] -= eps;
        let numeric = ((eval(&up) - eval(&down)) / (2.0 * eps as f64)) as f32;
        assert!(
            (analytic[i] - numeric).abs() <= 2e-3 + 2e-2 * numeric.abs(),
            "d/dx[{i}]: autodiff {} vs finite difference {numeric}",
            analytic[i]
        );
    }
}

#[test]
fn loss_gradients_match_finite_differences() {
    let student: &[&[f32]] = &[&[0.3, -0.2, 0.5, 0.1], &[1.0, 0.4, -0.6, 0.2]];
    let teacher: &[&[f32]] = &[&[2.0, 0.5, 1.0, -1.0], &[0.0, 3.0, 1.0, 0.5]];
    let pad: &[&[bool]] = &[&[false, false, false, false], &[false, false, true, false]];
    let mk = |d: &Device| (t2(teacher, d), mask2(pad, d));
    check_gradient(
        |s| {
            let (t, p) = mk(&s.device());
            loss::listwise_kl(s, t, Some(&p), 0.5, 2.0)
        },
        student,
    );
    check_gradient(
        |s| {
            let (t, _) = mk(&s.device());
            loss::listwise_kl(s, t, None, 1.0, 1.0)
        },
        student,
    );
    check_gradient(
        |s| {
            let (_, p) = mk(&s.device());
            loss::contrastive_loss(s, &[0, 1], Some(&p), 0.5)
        },
        student,
    );
    check_gradient(
        |s| {
            let (t, p) = mk(&s.device());
            loss::margin_mse(s, t, Some(&p))
        },
        student,
    );
    check_gradient(
        |s| {
            let d = s.device();
            let (t, p) = mk(&d);
            let w = Tensor::<1>::from_floats([1.0, 0.5], &d);
            let kd = loss::listwise_kl(s.clone(), t, Some(&p), 0.5, 1.0);
            loss::adam_objective(loss::contrastive_loss(s, &[0, 0], Some(&p), 0.5), kd, w, 0.7).total
        },
        student,
    );
}

#[test]
fn padded_candidates_get_no_gradient() {
    let ad = Device::flex().autodiff();
    let x = t2(&[&[0.3, -0.2, 0.5]], &ad).require_grad();
    let t = t2(&[&[2.0, 0.5, 1.0]], &ad);
    let p = mask2(&[&[false, false, true]], &ad);
    let grads = (loss::listwise_kl(x.clone(), t, Some(&p), 1.0, 1.0).sum()
        + loss::contrastive_loss(x.clone(), &[0], Some(&p), 1.0).sum())
    .backward();
    assert_eq!(values(x.grad(&grads).unwrap())[2], 0.0);
}

// ---- self-paced ----

#[test]
fn confidence_measures() {
    // softmax(2, 0, -1)[0] = 1 / (1 + e^-2 + e^-3)
    let c = selfpaced::confidence(&[2.0, 0.0, -1.0], ConfidenceMeasure::Softmax, 1.0);
    assert!((c - 0.843_794_3).abs() < 1e-6, "{c}");
    assert_eq!(selfpaced::confidence(&[2.0, 0.0, -1.0], ConfidenceMeasure::Margin, 1.0), 2.0);
    assert_eq!(selfpaced::confidence(&[2.0], ConfidenceMeasure::Softmax, 1.0), 1.0);
}

#[test]
fn lambda_schedules_grow_to_one() {
    let sp = |schedule| SelfPacedConfig { schedule, lambda0: 0.5, grow_fraction: 0.5, ..SelfPacedConfig::default() };
    assert_eq!(sp(Schedule::Linear).lambda(0, 100), 0.5);
    assert!((sp(Schedule::Linear).lambda(25, 100) - 0.75).abs() < 1e-6);
    assert!((sp(Schedule::Root).lambda(25, 100) - 0.625f32.sqrt()).abs() < 1e-6);
    assert_eq!(sp(Schedule::Root).lambda(50, 100), 1.0);
    assert_eq!(sp(Schedule::Constant).lambda(99, 100), 0.5);
    assert_eq!(SelfPacedConfig { enabled: false, ..sp(Schedule::Linear) }.lambda(0, 100), 1.0);
    for schedule in [Schedule::Linear, Schedule::Root] {
        let l: Vec<f32> = (0..=100).map(|t| sp(schedule).lambda(t, 100)).collect();
        assert!(l.windows(2).all(|w| w[0] <= w[1]));
    }
    // Root admits more early on than linear.
    assert!(sp(Schedule::Root).lambda(10, 100) > sp(Schedule::Linear).lambda(10, 100));
}

#[test]
fn selection_keeps_the_most_confident_share() {
    let conf = [0.9, 0.2, f32::NAN, 0.7, 0.4];
    let hard = selfpaced::select(&conf, 0.4, Weighting::Hard);
    assert_eq!(hard.kept, vec![0, 3]);
    assert_eq!(hard.weights, vec![1.0, 0.0, 0.0, 1.0, 0.0]);
    assert_eq!(hard.threshold, Some(0.7));
    // Soft: after the kept two, ranks 0, 1, 2 of the rest weigh 1 - 1/4, 1 - 2/4, 1 - 3/4.
    let soft = selfpaced::select(&conf, 0.4, Weighting::Soft);
    assert_eq!(soft.weights, vec![1.0, 0.5, 0.25, 1.0, 0.75]);
    assert_eq!(selfpaced::kept_count(0.3, 10), 3);
    assert_eq!(selfpaced::kept_count(0.31, 10), 4);
    assert_eq!(selfpaced::select(&conf, 1.0, Weighting::Hard).weights, vec![1.0; 5]);
    let constant = SelfPacedConfig { schedule: Schedule::Constant, ..SelfPacedConfig::default() };
    let logged = serde_json::to_value(constant.select(7, 10, &[0.1, 0.2])).unwrap();
    assert_eq!(logged["step"], 7);
    assert_eq!(logged["kept"], serde_json::json!([1]));
}

// ---- config ----

#[test]
fn config_defaults_and_names() {
    let config: AdamConfig =
        serde_json::from_str(r#"{"dark": {"mix_mode": "insert"}, "loss": {"alpha": 0.5}}"#).unwrap();
    assert_eq!(config.dark.mix_mode, MixMode::Insert);
    assert_eq!(config.dark.noisy_positives, DarkConfig::default().noisy_positives);
    assert_eq!(config.loss.alpha, 0.5);
    assert_eq!(config.loss.kd_teacher_temperature, LossConfig::default().kd_teacher_temperature);
    assert!(config.validate().is_ok());
    assert!(serde_json::from_str::<AdamConfig>(r#"{"dark": {"nosiy_ratio": 0.1}}"#).is_err());
    let bad = AdamConfig {
        dark: DarkConfig { band_low: 0.8, band_high: 0.2, ..DarkConfig::default() },
        ..AdamConfig::default()
    };
    assert!(bad.validate().unwrap_err().contains("band_low"));
}

#[test]
fn worked_example_of_method_md() {
    let d = Device::flex();
    let original = [8.0f32, 3.0, 1.0, -2.0];
    // 1. Near one-hot soft labels.
    let conf = selfpaced::confidence(&original, ConfidenceMeasure::Softmax, 1.0);
    assert!((conf - 0.9924).abs() < 1e-4, "{conf}");
    // 2. The band.
    let scores = TeacherScores { positive: 8.0, negatives: vec![3.0, 1.0, -2.0] };
    assert_eq!(scores.band(0.25, 0.75), Some((4.25, 6.75)));
    // 3. The search, with the example's teacher scores.
    let pos: Vec<u32> = (1000..1040).collect();
    let negs: Vec<Vec<u32>> = vec![(3000..3040).collect(), (4000..4040).collect(), (5000..5040).collect()];
    let q = [2000u32, 2001, 2002];
    let mut round = 0;
    let out = dark::generate_adaptive(
        &[DarkInstance { query: &q, positive: &pos, negatives: &negs, key: 0 }],
        &[scores],
        &SPECIAL,
        &DarkConfig::default(),
        |batch| {
            round += 1;
            let ratios: Vec<f32> = batch.iter().map(|(_, ex)| ex.ratio).collect();
            match round {
                1 => {
                    assert_close(&ratios, &[0.3; 4], 1e-6);
                    vec![7.4, 6.2, 3.9, 4.8]
                }
                2 => {
                    assert_close(&ratios, &[0.625; 2], 1e-6);
                    vec![5.1, 5.6]
                }
                _ => panic!("all in band after two rounds"),
            }
        },
    );
    let ratios: Vec<f32> = out[0].iter().map(|e| e.ratio).collect();
    assert_close(&ratios, &[0.625, 0.3, 0.625, 0.3], 1e-6);
    let teacher_scores: Vec<f32> = out[0].iter().map(|e| e.teacher_score.unwrap()).collect();
    assert_eq!(teacher_scores, vec![5.1, 6.2, 5.6, 4.8]);
    assert!(out[0].iter().all(|e| e.band_reached == Some(true)));
    assert_eq!(out[0][2].negative, Some(0));
    // 4.-5. Distillation over all eight candidates.
    let teacher = t2(&[&[8.0, 3.0, 1.0, -2.0, 5.1, 6.2, 5.6, 4.8]], &d);
    let student = t2(&[&[0.71, 0.52, 0.40, 0.18, 0.60, 0.66, 0.55, 0.58]], &d);
    let kd = values(loss::listwise_kl(student.clone(), teacher.clone(), None, 0.05, 1.0));
    assert_close(&kd, &[0.077_491_79], 1e-4);
    let kd_orig = values(loss::listwise_kl(student.clone().narrow(1, 0, 4), teacher.narrow(1, 0, 4), None, 0.05, 1.0));
    assert_close(&kd_orig, &[0.007_745_13], 1e-3);
    // 6. Contrastive.
    let cl = values(loss::contrastive_loss(student.narrow(1, 0, 4), &[0], None, 0.05));
    assert_close(&cl, &[0.024_131_6], 1e-4);
    // 7. Self-paced selection.
    let sp = SelfPacedConfig::default();
    let batch = [0.992, 0.41, 0.87, 0.65];
    assert_eq!(sp.select(0, 100, &batch).kept, vec![0, 2]);
    let quarter = sp.select(25, 100, &batch);
    assert!((quarter.lambda - 0.661_437_8).abs() < 1e-5);
    assert_eq!(quarter.kept, vec![0, 2, 3]);
    let total = loss::adam_objective(
        Tensor::<1>::from_floats([cl[0]], &d),
        Tensor::<1>::from_floats([kd[0]], &d),
        Tensor::<1>::from_floats([1.0], &d),
        1.0,
    );
    assert_close(&values(total.total), &[0.101_623_4], 1e-4);
}
