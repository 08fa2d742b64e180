//! The cross-encoder equals transformers' `BertForSequenceClassification` (golden values from
//! `scripts/golden_cross_encoder.py`): all-MiniLM-L6-v2 with a recorded head, loaded both from
//! the bare checkpoint (new head) and from a `bert.`-prefixed classification checkpoint.

use adam_core::encoder::CrossEncoder;
use adam_core::loader::{CrossEncoderOptions, ModelSource};
use adam_tests::{TempDir, fixture, golden, write_classification_checkpoint};
use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    pairs: Vec<Pair>,
    heads: Vec<Head>,
}

#[derive(Deserialize)]
struct Pair {
    query: String,
    passage: String,
}

#[derive(Deserialize)]
struct Head {
    num_labels: usize,
    classifier_weight: Vec<Vec<f32>>,
    classifier_bias: Vec<f32>,
    logits: Vec<Vec<f32>>,
}

fn golden_values() -> Golden {
    serde_json::from_slice(&std::fs::read(golden("minilm_cross_encoder.json")).unwrap()).unwrap()
}

fn pairs(g: &Golden) -> Vec<(&str, &str)> {
    g.pairs.iter().map(|p| (p.query.as_str(), p.passage.as_str())).collect()
}

/// The relevance score the cross-encoder should give: the logit, or label 1 − label 0.
fn expected_scores(head: &Head) -> Vec<f32> {
    head.logits.iter().map(|l| if l.len() == 1 { l[0] } else { l[1] - l[0] }).collect()
}

fn assert_scores(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 2e-4, "{what}: pair {i}: {g} vs transformers {w}");
    }
}

#[test]
fn bare_checkpoint_without_head_is_an_error_naming_the_classifier() {
    let Some(dir) = fixture("models/all-MiniLM-L6-v2") else { return };
    let err = CrossEncoder::load(&ModelSource::Dir(dir), &Device::flex(), &CrossEncoderOptions::default())
        .err()
        .expect("a checkpoint without a head must not load silently");
    let msg = err.to_string();
    assert!(msg.contains("classifier.weight") && msg.contains("model.safetensors"), "{msg}");
}

#[test]
fn new_head_on_minilm_equals_transformers() {
    let Some(dir) = fixture("models/all-MiniLM-L6-v2") else { return };
    let g = golden_values();
    let device = Device::flex();
    for head in &g.heads {
        let options = CrossEncoderOptions { max_length: Some(256), new_head: true };
        let mut ce = CrossEncoder::load(&ModelSource::Dir(dir.clone()), &device, &options).unwrap();
        if head.num_labels != 1 {
            // The config has no num_labels; rebuild the head with the golden shape.
            ce.model.model.classifier = burn::nn::LinearConfig::new(384, head.num_labels).init(&device);
        }
        let w: Vec<f32> = head.classifier_weight.iter().flatten().copied().collect();
        // burn's Linear stores [in, out]; PyTorch's [out, in].
        let w = Tensor::<2>::from_data(TensorData::new(w, [head.num_labels, 384]), &device).transpose();
        let b = Tensor::<1>::from_data(TensorData::new(head.classifier_bias.clone(), [head.num_labels]), &device);
        ce.model.model.classifier.weight = Param::from_tensor(w);
        ce.model.model.classifier.bias = Some(Param::from_tensor(b));
        let got = ce.score(&pairs(&g)).unwrap();
        assert_scores(&got, &expected_scores(head), &format!("{} label(s)", head.num_labels));
    }
}

#[test]
fn classification_checkpoint_loads_as_saved_by_transformers() {
    let Some(dir) = fixture("models/all-MiniLM-L6-v2") else { return };
    let g = golden_values();
    let tmp = TempDir::new("cross-encoder-ckpt");
    for head in &g.heads {
        write_classification_checkpoint(&dir, &tmp.0, &head.classifier_weight, &head.classifier_bias);
        let options = CrossEncoderOptions { max_length: Some(256), new_head: false };
        let ce = CrossEncoder::load(&ModelSource::Dir(tmp.0.clone()), &Device::flex(), &options).unwrap();
        let got = ce.score(&pairs(&g)).unwrap();
        assert_scores(&got, &expected_scores(head), &format!("saved checkpoint, {} label(s)", head.num_labels));
    }
}
