//! Saving models: a student written as a sentence-transformers folder and a teacher written in
//! the `BertForSequenceClassification` layout load back (through our loader) to the same
//! vectors and scores, under the Hugging Face tensor names; f16 weights load back closely;
//! `write_folder` never replaces an unrelated folder.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use adam_core::encoder::{CrossEncoder, SentenceEncoder};
use adam_core::loader::LoadedModel;
use adam_core::loader::{CrossEncoderOptions, LoadOptions, ModelSource};
use adam_core::save::{ModelFile, SaveOptions, cross_encoder_files, read_side_files, student_files, write_folder};
use adam_tests::{TempDir, fixture, max_abs_diff};
use burn::tensor::Device;
use safetensors::SafeTensors;

const TEXTS: [&str; 4] = [
    "how are glacier caves formed?",
    "A glacier cave is a cave formed within the ice of a glacier.",
    "The ice facade is approximately 60 m high",
    "",
];

fn memory(files: Vec<(String, Vec<u8>)>) -> ModelSource {
    ModelSource::Memory { name: "saved".into(), files: files.into_iter().collect::<HashMap<_, _>>() }
}

fn tensor_shapes(bytes: &[u8]) -> BTreeMap<String, Vec<usize>> {
    let st = SafeTensors::deserialize(bytes).unwrap();
    st.tensors().into_iter().map(|(name, view)| (name, view.shape().to_vec())).collect()
}

fn file<'a>(files: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &files.iter().find(|(p, _)| p == name).unwrap_or_else(|| panic!("{name} not written")).1
}

fn json(files: &[(String, Vec<u8>)], name: &str) -> serde_json::Value {
    serde_json::from_slice(file(files, name)).unwrap()
}

/// A loaded BERT student's folder as `student_files` writes it.
fn files_of(m: &LoadedModel, side_files: &[ModelFile], options: SaveOptions) -> Vec<ModelFile> {
    student_files(
        m.transformer.bert().expect("MiniLM is BERT"),
        &m.config,
        &m.sentence,
        &m.tokenizer,
        side_files,
        options,
    )
    .unwrap()
}

#[test]
fn student_saves_as_sentence_transformers_folder_and_reloads_equal() {
    let Some(dir) = fixture("models/all-MiniLM-L6-v2") else { return };
    let device = Device::flex();
    let encoder = SentenceEncoder::load(&ModelSource::Dir(dir.clone()), &device, &LoadOptions::default()).unwrap();
    let m = &encoder.model;
    let files = files_of(m, &read_side_files(&dir).unwrap(), SaveOptions::default());

    // Hugging Face names and shapes: those of the original checkpoint (which also has a pooler).
    let original = std::fs::read(dir.join("model.safetensors")).unwrap();
    let mut want = tensor_shapes(&original);
    want.retain(|name, _| !name.starts_with("pooler.") && !name.ends_with("position_ids"));
    assert_eq!(tensor_shapes(file(&files, "model.safetensors")), want);
    let modules = json(&files, "modules.json");
    let kinds: Vec<&str> = modules.as_array().unwrap().iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "sentence_transformers.models.Transformer",
            "sentence_transformers.models.Pooling",
            "sentence_transformers.models.Normalize"
        ]
    );
    assert_eq!(json(&files, "1_Pooling/config.json")["pooling_mode_mean_tokens"], true);
    assert_eq!(json(&files, "sentence_bert_config.json")["max_seq_length"], 256);
    assert_eq!(json(&files, "config.json")["architectures"][0], "BertModel");
    assert!(files.iter().any(|(p, _)| p == "tokenizer.json") && files.iter().any(|(p, _)| p == "vocab.txt"));

    let want_vectors = encoder.embed(&TEXTS).unwrap();
    let reloaded = SentenceEncoder::load(&memory(files.clone()), &device, &LoadOptions::default()).unwrap();
    assert_eq!(reloaded.embed(&TEXTS).unwrap(), want_vectors, "reloaded student gives other vectors");

    // On disk, through the atomic folder writer.
    let tmp = TempDir::new("save-student");
    let out = tmp.path("student");
    write_folder(&out, &files).unwrap();
    write_folder(&out, &files).unwrap(); // replacing a model folder is allowed
    let from_disk = SentenceEncoder::load(&ModelSource::Dir(out), &device, &LoadOptions::default()).unwrap();
    assert_eq!(from_disk.embed(&TEXTS).unwrap(), want_vectors);
}

#[test]
fn half_precision_student_reloads_close() {
    let Some(dir) = fixture("models/all-MiniLM-L6-v2") else { return };
    let device = Device::flex();
    let encoder = SentenceEncoder::load(&ModelSource::Dir(dir), &device, &LoadOptions::default()).unwrap();
    let m = &encoder.model;
    let files = files_of(m, &[], SaveOptions { half: true });
    let full = files_of(m, &[], SaveOptions::default());
    let (half_len, full_len) = (file(&files, "model.safetensors").len(), file(&full, "model.safetensors").len());
    assert!(half_len * 10 < full_len * 6, "f16 file {half_len} bytes vs f32 {full_len}");
    let st = SafeTensors::deserialize(file(&files, "model.safetensors")).unwrap();
    assert!(st.tensors().iter().all(|(_, v)| v.dtype() == safetensors::Dtype::F16));
    let reloaded = SentenceEncoder::load(&memory(files), &device, &LoadOptions::default()).unwrap();
    for (a, b) in reloaded.embed(&TEXTS).unwrap().iter().zip(encoder.embed(&TEXTS).unwrap()) {
        let d = max_abs_diff(a, &b);
        assert!(d < 5e-3, "f16 student differs by {d}");
    }
}

#[test]
fn truncated_student_saves_its_layer_count() {
    let Some(dir) = fixture("models/all-MiniLM-L6-v2") else { return };
    let device = Device::flex();
    let options = LoadOptions { layers: Some(2), ..Default::default() };
    let encoder = SentenceEncoder::load(&ModelSource::Dir(dir), &device, &options).unwrap();
    let m = &encoder.model;
    assert_eq!(m.config.num_hidden_layers, 2);
    let files = files_of(m, &[], SaveOptions::default());
    assert_eq!(json(&files, "config.json")["num_hidden_layers"], 2);
    assert!(!tensor_shapes(file(&files, "model.safetensors")).keys().any(|k| k.starts_with("encoder.layer.2.")));
    let reloaded = SentenceEncoder::load(&memory(files), &device, &LoadOptions::default()).unwrap();
    assert_eq!(reloaded.embed(&TEXTS).unwrap(), encoder.embed(&TEXTS).unwrap());
}

#[test]
fn teacher_saves_as_sequence_classification_and_reloads_equal() {
    let Some(dir) = fixture("models/all-MiniLM-L6-v2") else { return };
    let device = Device::flex();
    device.seed(7);
    let options = CrossEncoderOptions { max_length: Some(128), new_head: true };
    let teacher = CrossEncoder::load(&ModelSource::Dir(dir.clone()), &device, &options).unwrap();
    let m = &teacher.model;
    let files =
        cross_encoder_files(&m.model, &m.config, &m.tokenizer, &read_side_files(&dir).unwrap(), SaveOptions::default())
            .unwrap();
    let names = tensor_shapes(file(&files, "model.safetensors"));
    assert_eq!(names["classifier.weight"], vec![1, 384]);
    assert_eq!(names["bert.pooler.dense.weight"], vec![384, 384]);
    assert!(names.contains_key("bert.encoder.layer.5.attention.self.query.weight"));
    assert!(names.contains_key("bert.embeddings.LayerNorm.weight"));
    assert!(names.keys().all(|k| k.starts_with("bert.") || k.starts_with("classifier.")), "{names:?}");
    let config = json(&files, "config.json");
    assert_eq!(config["architectures"][0], "BertForSequenceClassification");
    assert_eq!(config["id2label"].as_object().unwrap().len(), 1);

    let pairs = [(TEXTS[0], TEXTS[1]), (TEXTS[0], TEXTS[2])];
    let want = teacher.score(&pairs).unwrap();
    let plain = CrossEncoderOptions { max_length: Some(128), new_head: false };
    let reloaded = CrossEncoder::load(&memory(files), &device, &plain).unwrap();
    assert_eq!(reloaded.score(&pairs).unwrap(), want, "reloaded teacher gives other scores");
}

#[test]
fn write_folder_refuses_to_replace_an_unrelated_folder() {
    let tmp = TempDir::new("save-refuse");
    let precious = tmp.path("notes");
    std::fs::create_dir_all(&precious).unwrap();
    std::fs::write(precious.join("thesis.txt"), "do not delete").unwrap();
    let err = write_folder(&precious, &[("config.json".into(), b"{}".to_vec())]).unwrap_err();
    assert!(err.to_string().contains("refusing"), "{err}");
    assert_eq!(std::fs::read_to_string(precious.join("thesis.txt")).unwrap(), "do not delete");
    assert!(!Path::new(&tmp.path(".notes.tmp")).exists());
}
