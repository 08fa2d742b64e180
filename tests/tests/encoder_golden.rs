//! The encoder equals sentence-transformers on all-MiniLM-L6-v2 (golden values from
//! `scripts/golden_embeddings.py`): token ids, pair token types, mean+normalised and CLS vectors.

use adam_core::config::Pooling;
use adam_core::encoder::SentenceEncoder;
use adam_core::loader::{LoadOptions, ModelSource};
use adam_tests::{assert_close, fixture, golden};
use burn::tensor::Device;
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    max_seq_length: usize,
    texts: Vec<GoldenText>,
    pairs: Vec<GoldenPair>,
}

#[derive(Deserialize)]
struct GoldenText {
    name: String,
    text: String,
    token_ids: Vec<u32>,
    st_embedding: Vec<f32>,
    cls_unnormalized: Vec<f32>,
    st_embedding_first_3_layers: Vec<f32>,
}

#[derive(Deserialize)]
struct GoldenPair {
    name: String,
    query: String,
    passage: String,
    token_ids: Vec<u32>,
    token_type_ids: Vec<u32>,
}

fn golden_values() -> Golden {
    let path = golden("minilm_embeddings.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn load(device: &Device) -> Option<SentenceEncoder> {
    let dir = fixture("models/all-MiniLM-L6-v2")?;
    Some(SentenceEncoder::load(&ModelSource::Dir(dir), device, &LoadOptions::default()).unwrap())
}

#[test]
fn tokenization_matches_hugging_face() {
    let Some(encoder) = load(&Device::flex()) else { return };
    let g = golden_values();
    let tok = &encoder.model.tokenizer;
    assert_eq!(tok.max_length(), g.max_seq_length);
    let texts: Vec<&str> = g.texts.iter().map(|t| t.text.as_str()).collect();
    let batch = tok.encode(&texts).unwrap();
    assert!(g.texts.iter().any(|t| t.token_ids.len() == 256), "a golden text is truncated");
    for (i, t) in g.texts.iter().enumerate() {
        assert_eq!(batch.row(i), t.token_ids.as_slice(), "{}", t.name);
    }
    for p in &g.pairs {
        let b = tok.encode_pairs(&[(p.query.as_str(), p.passage.as_str())]).unwrap();
        assert_eq!(b.ids, p.token_ids, "{}", p.name);
        assert_eq!(b.type_ids, p.token_type_ids, "{}", p.name);
    }
}

#[test]
fn mean_pooled_embeddings_match_sentence_transformers() {
    let Some(encoder) = load(&Device::flex()) else { return };
    assert_eq!(encoder.model.sentence.pooling, Pooling::Mean);
    assert!(encoder.model.sentence.normalize);
    let g = golden_values();
    // One padded batch (as sentence-transformers encoded them) ...
    let texts: Vec<&str> = g.texts.iter().map(|t| t.text.as_str()).collect();
    for (t, v) in g.texts.iter().zip(encoder.embed(&texts).unwrap()) {
        assert_close(&t.name, &v, &t.st_embedding);
    }
    // ... and one at a time: padding must not change a vector.
    for t in g.texts.iter().take(3) {
        let v = encoder.embed(&[t.text.as_str()]).unwrap().remove(0);
        assert_close(&t.name, &v, &t.st_embedding);
    }
}

#[test]
fn cls_pooling_matches_transformers() {
    let Some(mut encoder) = load(&Device::flex()) else { return };
    encoder.model.sentence.pooling = Pooling::Cls;
    encoder.model.sentence.normalize = false;
    let g = golden_values();
    let texts: Vec<&str> = g.texts.iter().map(|t| t.text.as_str()).collect();
    for (t, v) in g.texts.iter().zip(encoder.embed(&texts).unwrap()) {
        assert_close(&t.name, &v, &t.cls_unnormalized);
    }
}

#[test]
fn ndarray_backend_matches_too() {
    #[allow(deprecated)]
    let device = Device::ndarray();
    let Some(encoder) = load(&device) else { return };
    let g = golden_values();
    let texts: Vec<&str> = g.texts.iter().map(|t| t.text.as_str()).collect();
    for (t, v) in g.texts.iter().zip(encoder.embed(&texts).unwrap()) {
        assert_close(&t.name, &v, &t.st_embedding);
    }
}

#[test]
fn the_first_3_layers_match_a_model_cut_by_sentence_transformers() {
    let Some(dir) = fixture("models/all-MiniLM-L6-v2") else { return };
    let device = Device::flex();
    let options = LoadOptions { layers: Some(3), ..Default::default() };
    let encoder = SentenceEncoder::load(&ModelSource::Dir(dir.clone()), &device, &options).unwrap();
    assert_eq!(encoder.model.config.num_hidden_layers, 3);
    let g = golden_values();
    let texts: Vec<&str> = g.texts.iter().map(|t| t.text.as_str()).collect();
    for (t, v) in g.texts.iter().zip(encoder.embed(&texts).unwrap()) {
        assert_close(&t.name, &v, &t.st_embedding_first_3_layers);
    }
    for k in [0, 7] {
        let options = LoadOptions { layers: Some(k), ..Default::default() };
        let err = SentenceEncoder::load(&ModelSource::Dir(dir.clone()), &device, &options).err().unwrap().to_string();
        assert!(err.contains(&format!("first {k} layers")) && err.contains("give 1 to 6"), "{err}");
    }
}
