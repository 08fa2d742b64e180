//! The cross-encoder equals transformers' `BertForSequenceClassification` (golden values from
//! `scripts/golden_cross_encoder.py`): all-MiniLM-L6-v2 with a recorded head, loaded both from
//! the bare checkpoint (new head) and from a `bert.`-prefixed classification checkpoint.

use std::collections::HashMap;

use adam_core::encoder::CrossEncoder;
use adam_core::loader::{CrossEncoderOptions, ModelSource};
use adam_tests::{TempDir, fixture, golden};
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
            ce.model.model.classifier =
                burn::nn::LinearConfig::new(384, head.num_labels).init(&device);
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

/// Writes the folder transformers' `save_pretrained` would: `bert.`-prefixed BERT and pooler
/// tensors, `classifier.*`, and config.json with `num_labels`.
fn write_classification_checkpoint(src: &std::path::Path, dst: &std::path::Path, head: &Head) {
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut owned: Vec<(String, Vec<u8>, Vec<usize>, safetensors::Dtype)> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| (format!("bert.{name}"), view.data().to_vec(), view.shape().to_vec(), view.dtype()))
        .collect();
    let w: Vec<u8> = head.classifier_weight.iter().flatten().flat_map(|x| x.to_le_bytes()).collect();
    let b: Vec<u8> = head.classifier_bias.iter().flat_map(|x| x.to_le_bytes()).collect();
    owned.push(("classifier.weight".into(), w, vec![head.num_labels, 384], safetensors::Dtype::F32));
    owned.push(("classifier.bias".into(), b, vec![head.num_labels], safetensors::Dtype::F32));
    let views: Vec<(String, safetensors::tensor::TensorView)> = owned
        .iter()
        .map(|(n, d, s, t)| (n.clone(), safetensors::tensor::TensorView::new(*t, s.clone(), d).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None::<HashMap<String, String>>, &dst.join("model.safetensors")).unwrap();
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("config.json")).unwrap()).unwrap();
    config["num_labels"] = head.num_labels.into();
    config["architectures"] = serde_json::json!(["BertForSequenceClassification"]);
    std::fs::write(dst.join("config.json"), config.to_string()).unwrap();
    std::fs::copy(src.join("tokenizer.json"), dst.join("tokenizer.json")).unwrap();
}

#[test]
fn classification_checkpoint_loads_as_saved_by_transformers() {
    let Some(dir) = fixture("models/all-MiniLM-L6-v2") else { return };
    let g = golden_values();
    let tmp = TempDir::new("cross-encoder-ckpt");
    for head in &g.heads {
        write_classification_checkpoint(&dir, &tmp.0, head);
        let options = CrossEncoderOptions { max_length: Some(256), new_head: false };
        let ce = CrossEncoder::load(&ModelSource::Dir(tmp.0.clone()), &Device::flex(), &options).unwrap();
        let got = ce.score(&pairs(&g)).unwrap();
        assert_scores(&got, &expected_scores(head), &format!("saved checkpoint, {} label(s)", head.num_labels));
    }
}
