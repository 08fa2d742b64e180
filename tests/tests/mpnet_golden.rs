//! The MPNet encoder equals sentence-transformers on all-mpnet-base-v2 (golden values from
//! `scripts/golden_mpnet.py`): token ids, pair templates, relative-position buckets, the mean +
//! normalised vectors of one padded batch and the first token's raw vector. The model comes from
//! `scripts/fetch_mpnet.sh` (see `adam_tests::mpnet_model`).

use adam_core::config::{Architecture, Pooling};
use adam_core::encoder::{CrossEncoder, SentenceEncoder};
use adam_core::loader::{CrossEncoderOptions, LoadOptions, ModelSource};
use adam_core::model::relative_position_bucket;
use adam_core::save::{SaveOptions, cross_encoder_files, read_side_files, write_folder};
use adam_tests::{assert_close, golden, mpnet_model};
use burn::module::Param;
use burn::tensor::Device;
use burn::tensor::{Tensor, TensorData};
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    max_seq_length: usize,
    texts: Vec<GoldenText>,
    pairs: Vec<GoldenPair>,
    buckets: Vec<usize>,
    cross_encoder: GoldenCrossEncoder,
}

#[derive(Deserialize)]
struct GoldenCrossEncoder {
    max_length: usize,
    logits: Vec<f32>,
}

#[derive(Deserialize)]
struct GoldenText {
    name: String,
    text: String,
    token_ids: Vec<u32>,
    st_embedding: Vec<f32>,
    cls_unnormalized: Vec<f32>,
}

#[derive(Deserialize)]
struct GoldenPair {
    name: String,
    query: String,
    passage: String,
    token_ids: Vec<u32>,
}

fn golden_values() -> Golden {
    serde_json::from_slice(&std::fs::read(golden("mpnet_embeddings.json")).unwrap()).unwrap()
}

/// The buckets need no model: PyTorch's table for distances −600 … 600.
#[test]
fn relative_position_buckets_match_the_reference() {
    let g = golden_values();
    for (i, &want) in g.buckets.iter().enumerate() {
        let rel = i as i64 - 600;
        assert_eq!(relative_position_bucket(rel), want, "relative position {rel}");
    }
}

#[test]
fn mpnet_encodes_as_sentence_transformers() {
    let Some(dir) = mpnet_model() else { return };
    let device = Device::flex();
    let encoder = SentenceEncoder::load(&ModelSource::Dir(dir), &device, &LoadOptions::default()).unwrap();
    let m = &encoder.model;
    assert_eq!(m.config.architecture(), Architecture::MPNet);
    assert_eq!((m.sentence.pooling, m.sentence.normalize), (Pooling::Mean, true));
    let g = golden_values();
    assert_eq!(m.tokenizer.max_length(), g.max_seq_length);

    // Token ids of single texts (one truncated at 384) and of pairs (<s> q </s></s> p </s>).
    let texts: Vec<&str> = g.texts.iter().map(|t| t.text.as_str()).collect();
    let batch = m.tokenizer.encode(&texts).unwrap();
    for (i, t) in g.texts.iter().enumerate() {
        assert_eq!(batch.row(i), t.token_ids.as_slice(), "{}", t.name);
    }
    for p in &g.pairs {
        let b = m.tokenizer.encode_pairs(&[(p.query.as_str(), p.passage.as_str())]).unwrap();
        assert_eq!(b.ids, p.token_ids, "{}", p.name);
        assert!(b.type_ids.iter().all(|&t| t == 0), "{}: MPNet has no token types", p.name);
    }
    // Word pieces wrapped by hand (dark examples) give what the text gives.
    let medium = g.texts.iter().find(|t| t.name == "medium").unwrap();
    let pieces = m.tokenizer.word_pieces(&medium.text).unwrap();
    assert_eq!(m.tokenizer.encode_pieces(&[&pieces], usize::MAX).ids, medium.token_ids);

    // All texts in one padded batch: padding must not move the positions of real tokens.
    let vectors = encoder.embed(&texts).unwrap();
    for (t, v) in g.texts.iter().zip(&vectors) {
        assert_close(&t.name, v, &t.st_embedding);
    }

    // The raw first-token vector of the 365-token text alone (distances up to 364).
    let single = m.tokenizer.encode(&[medium.text.as_str()]).unwrap();
    let (ids, types, padding) = single.to_tensors(&device);
    let tokens = m.transformer.forward(ids, types, padding);
    let hidden = tokens.dims()[2];
    let cls: Vec<f32> = tokens.narrow(1, 0, 1).reshape([hidden]).into_data().try_into_vec_as::<f32>().unwrap();
    assert_close("medium [first token]", &cls, &medium.cls_unnormalized);
}

/// `adam embed --model` takes an MPNet folder as it takes a BERT one.
#[test]
fn adam_embed_reads_an_mpnet_folder() {
    let Some(dir) = mpnet_model() else { return };
    let g = golden_values();
    let tmp = adam_tests::TempDir::new("mpnet-embed");
    let input = tmp.0.join("texts.txt");
    let chosen: Vec<&GoldenText> =
        g.texts.iter().filter(|t| ["plain", "question", "long"].contains(&t.name.as_str())).collect();
    std::fs::write(&input, chosen.iter().map(|t| t.text.as_str()).collect::<Vec<_>>().join("\n")).unwrap();
    let output = tmp.0.join("vectors.jsonl");
    let out = adam_tests::adam(&[
        "embed",
        "--model",
        dir.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", adam_tests::stderr(&out));
    let vectors: Vec<Vec<f32>> =
        std::fs::read_to_string(&output).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(vectors.len(), chosen.len());
    for (v, t) in vectors.iter().zip(&chosen) {
        assert_close(&t.name, v, &t.st_embedding);
    }
}

/// A student's word pieces (MiniLM's vocabulary) carried into the teacher's (MPNet's): the
/// same pieces the teacher makes of the text, with `[MASK]` as MPNet's `<mask>`.
#[test]
fn student_pieces_carry_into_the_mpnet_vocabulary() {
    let (Some(mpnet), Some(minilm)) = (mpnet_model(), adam_tests::fixture("models/all-MiniLM-L6-v2")) else { return };
    let read = |dir: &std::path::Path| {
        let path = dir.join("tokenizer.json");
        adam_core::tokenize::TextTokenizer::from_bytes(&std::fs::read(&path).unwrap(), &path, 512).unwrap()
    };
    let (student, teacher) = (read(&minilm), read(&mpnet));
    assert!(!student.same_vocab(&teacher));
    let text = "Electroencephalography measures the brain's activity, unlike tomography.";
    let pieces = student.word_pieces(text).unwrap();
    assert!(pieces.iter().any(|&p| student.id_to_token(p).starts_with("##")), "the text has continuation pieces");
    assert_eq!(student.carry_pieces(&pieces, &teacher).unwrap(), teacher.word_pieces(text).unwrap());
    // Mask the second piece: the teacher sees its own mask token in that place.
    let mut masked = pieces.clone();
    masked[1] = student.special().mask;
    let carried = student.carry_pieces(&masked, &teacher).unwrap();
    assert_eq!(carried.iter().filter(|&&p| p == teacher.special().mask).count(), 1, "{carried:?}");
    assert_eq!(teacher.id_to_token(teacher.special().mask), "<mask>");
    let sp = teacher.special();
    assert_eq!((sp.cls, sp.pad, sp.sep), (0, 1, 2), "MPNet's <s>, <pad>, </s>, not BERT's names in its vocabulary");
}

/// The golden head of `scripts/golden_mpnet.py::head_weights`, computed the same way (f64, then
/// f32), as burn stores it (`[in, out]`).
fn set_golden_head(ce: &mut CrossEncoder, hidden: usize) {
    let device = ce.device.clone();
    let f = |v: f64| v as f32;
    let dense_w: Vec<f32> = (0..hidden)
        .flat_map(|o| (0..hidden).map(move |i| f(0.05 * (0.37 * o as f64 + 0.11 * i as f64 + 0.5).sin())))
        .collect();
    let dense_b: Vec<f32> = (0..hidden).map(|o| f(0.01 * (0.7 * o as f64).cos())).collect();
    let out_w: Vec<f32> = (0..hidden).map(|i| f((0.13 * i as f64 + 0.2).sin())).collect();
    let m = &mut ce.model.model;
    m.pooler.dense.weight =
        Param::from_tensor(Tensor::<2>::from_data(TensorData::new(dense_w, [hidden, hidden]), &device).transpose());
    m.pooler.dense.bias = Some(Param::from_tensor(Tensor::<1>::from_data(TensorData::new(dense_b, [hidden]), &device)));
    m.classifier.weight = Param::from_tensor(Tensor::<2>::from_data(TensorData::new(out_w, [hidden, 1]), &device));
    m.classifier.bias = Some(Param::from_tensor(Tensor::<1>::from_data(TensorData::new(vec![0.1f32], [1]), &device)));
}

/// `MPNetForSequenceClassification`: all-mpnet-base-v2 with the golden head scores the pairs as
/// transformers does, and saved in that layout it reloads (without `--new-head`) to the same
/// scores.
#[test]
fn mpnet_cross_encoder_equals_transformers_and_reloads_as_saved() {
    let Some(dir) = mpnet_model() else { return };
    let g = golden_values();
    let device = Device::flex();
    let options = CrossEncoderOptions { max_length: Some(g.cross_encoder.max_length), new_head: true };
    let mut ce = CrossEncoder::load(&ModelSource::Dir(dir.clone()), &device, &options).unwrap();
    set_golden_head(&mut ce, 768);
    let pairs: Vec<(&str, &str)> = g.pairs.iter().map(|p| (p.query.as_str(), p.passage.as_str())).collect();
    let check = |got: Vec<f32>, what: &str| {
        for (i, (a, b)) in got.iter().zip(&g.cross_encoder.logits).enumerate() {
            assert!((a - b).abs() <= 2e-4, "{what}: pair {i}: {a} vs transformers {b}");
        }
    };
    check(ce.score(&pairs).unwrap(), "new head");

    let tmp = adam_tests::TempDir::new("mpnet-cross-encoder");
    let files = cross_encoder_files(
        &ce.model.model,
        &ce.model.config,
        &ce.model.tokenizer,
        &read_side_files(&dir).unwrap(),
        SaveOptions::default(),
    )
    .unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&files.iter().find(|(p, _)| p == "config.json").unwrap().1).unwrap();
    assert_eq!(config["architectures"][0], "MPNetForSequenceClassification");
    let weights = &files.iter().find(|(p, _)| p == "model.safetensors").unwrap().1;
    let names: Vec<String> =
        safetensors::SafeTensors::deserialize(weights).unwrap().names().into_iter().map(String::from).collect();
    for name in [
        "mpnet.encoder.relative_attention_bias.weight",
        "mpnet.encoder.layer.11.attention.attn.o.weight",
        "classifier.dense.weight",
        "classifier.out_proj.bias",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
    }
    write_folder(&tmp.0.join("ce"), &files).unwrap();
    let options = CrossEncoderOptions { max_length: Some(g.cross_encoder.max_length), new_head: false };
    let reloaded = CrossEncoder::load(&ModelSource::Dir(tmp.0.join("ce")), &device, &options).unwrap();
    check(reloaded.score(&pairs).unwrap(), "saved and reloaded");
}
