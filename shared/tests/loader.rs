//! Weight loading on a tiny BERT written in the Hugging Face layout: names with and without the
//! `bert.` prefix load, Linear weights are transposed, and a missing tensor or a wrong shape is
//! an error naming the file and the tensor.

use std::collections::BTreeMap;
use std::path::Path;

use adam_core::config::BertConfig;
use adam_core::demo::{f32_to_half, half_to_f32};
use adam_core::loader::{Weights, load_bert_weights};
use adam_core::model::BertModel;
use burn::tensor::{DType, Device};
use safetensors::tensor::{Dtype, TensorView};

fn tiny_config() -> BertConfig {
    serde_json::from_str(
        r#"{"vocab_size": 40, "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
            "intermediate_size": 12, "max_position_embeddings": 16, "type_vocab_size": 2}"#,
    )
    .unwrap()
}

/// Every tensor of `BertModel` (plus a pooler) with Hugging Face names and shapes.
fn hf_tensors(c: &BertConfig, prefix: &str) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let (h, i) = (c.hidden_size, c.intermediate_size);
    let mut shapes: Vec<(String, Vec<usize>)> = vec![
        ("embeddings.word_embeddings.weight".into(), vec![c.vocab_size, h]),
        ("embeddings.position_embeddings.weight".into(), vec![c.max_position_embeddings, h]),
        ("embeddings.token_type_embeddings.weight".into(), vec![c.type_vocab_size, h]),
        ("embeddings.LayerNorm.weight".into(), vec![h]),
        ("embeddings.LayerNorm.bias".into(), vec![h]),
        ("pooler.dense.weight".into(), vec![h, h]),
        ("pooler.dense.bias".into(), vec![h]),
    ];
    for l in 0..c.num_hidden_layers {
        let p = format!("encoder.layer.{l}");
        for name in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"] {
            shapes.push((format!("{p}.{name}.weight"), vec![h, h]));
            shapes.push((format!("{p}.{name}.bias"), vec![h]));
        }
        shapes.push((format!("{p}.intermediate.dense.weight"), vec![i, h]));
        shapes.push((format!("{p}.intermediate.dense.bias"), vec![i]));
        shapes.push((format!("{p}.output.dense.weight"), vec![h, i]));
        shapes.push((format!("{p}.output.dense.bias"), vec![h]));
        for ln in ["attention.output.LayerNorm", "output.LayerNorm"] {
            shapes.push((format!("{p}.{ln}.weight"), vec![h]));
            shapes.push((format!("{p}.{ln}.bias"), vec![h]));
        }
    }
    shapes
        .into_iter()
        .enumerate()
        .map(|(k, (name, shape))| {
            let n: usize = shape.iter().product();
            let values = (0..n).map(|j| ((j * 7 + k * 13) % 17) as f32 / 17.0 - 0.5).collect();
            (format!("{prefix}{name}"), (shape, values))
        })
        .collect()
}

/// The tensors stored as `dtype` (F32, F16 or BF16), rounded to nearest as PyTorch's `.half()`.
fn to_safetensors_as(tensors: &BTreeMap<String, (Vec<usize>, Vec<f32>)>, dtype: Dtype) -> Vec<u8> {
    let encode = |x: &f32| -> Vec<u8> {
        match dtype {
            Dtype::F32 => x.to_le_bytes().to_vec(),
            Dtype::F16 => f32_to_half(*x).to_le_bytes().to_vec(),
            Dtype::BF16 => f32_to_bf16(*x).to_le_bytes().to_vec(),
            other => panic!("no test encoding for {other:?}"),
        }
    };
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> =
        tensors.iter().map(|(k, (s, v))| (k.clone(), s.clone(), v.iter().flat_map(encode).collect())).collect();
    let views: Vec<(String, TensorView)> =
        bytes.iter().map(|(k, s, b)| (k.clone(), TensorView::new(dtype, s.clone(), b).unwrap())).collect();
    safetensors::serialize(views, None).unwrap()
}

fn load(tensors: &BTreeMap<String, (Vec<usize>, Vec<f32>)>) -> Result<BertModel, String> {
    load_as(tensors, Dtype::F32)
}

fn load_as(tensors: &BTreeMap<String, (Vec<usize>, Vec<f32>)>, dtype: Dtype) -> Result<BertModel, String> {
    let config = tiny_config();
    let mut model = BertModel::new(&config, &Device::flex());
    let bytes = to_safetensors_as(tensors, dtype);
    load_bert_weights(&mut model, Weights::Bytes(bytes), Path::new("tiny/model.safetensors"))
        .map(|()| model)
        .map_err(|e| e.to_string())
}

fn values(t: burn::tensor::Tensor<2>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

#[test]
fn loads_with_and_without_bert_prefix_and_transposes_linear_weights() {
    for prefix in ["", "bert."] {
        let tensors = hf_tensors(&tiny_config(), prefix);
        let model = load(&tensors).expect("complete weights load");
        let (shape, hf) = &tensors[&format!("{prefix}encoder.layer.1.attention.self.key.weight")];
        let burn_w = values(model.encoder.layer[1].attention.self_attn.key.weight.val());
        // HF stores Linear weights as [out, in]; burn as [in, out].
        let (out_dim, in_dim) = (shape[0], shape[1]);
        for o in 0..out_dim {
            for i in 0..in_dim {
                assert_eq!(burn_w[i * out_dim + o], hf[o * in_dim + i]);
            }
        }
        let emb = values(model.embeddings.word_embeddings.weight.val());
        assert_eq!(&emb, &tensors[&format!("{prefix}embeddings.word_embeddings.weight")].1);
        let gamma = model.encoder.layer[0].output.layer_norm.gamma.val().into_data().try_into_vec_as::<f32>().unwrap();
        assert_eq!(&gamma, &tensors[&format!("{prefix}encoder.layer.0.output.LayerNorm.weight")].1);
    }
}

#[test]
fn missing_tensor_is_named() {
    let mut tensors = hf_tensors(&tiny_config(), "");
    tensors.remove("encoder.layer.1.attention.self.value.bias");
    let Err(err) = load(&tensors) else { panic!("must fail") };
    assert!(err.contains("tiny/model.safetensors"), "{err}");
    assert!(err.contains("encoder.layer.1.attention.self.value.bias"), "{err}");
}

#[test]
fn shape_mismatch_is_named() {
    let mut tensors = hf_tensors(&tiny_config(), "");
    tensors.insert("embeddings.word_embeddings.weight".into(), (vec![39, 8], vec![0.0; 39 * 8]));
    let Err(err) = load(&tensors) else { panic!("must fail") };
    assert!(err.contains("tiny/model.safetensors"), "{err}");
    assert!(err.contains("embeddings.word_embeddings.weight"), "{err}");
    assert!(err.contains("39"), "{err}");
}

/// Half-precision files (the web demo ships f16 to halve downloads) load into f32 parameters
/// holding exactly the stored half values, and the model runs in f32.
#[test]
fn half_precision_weights_are_widened_to_f32() {
    let tensors = hf_tensors(&tiny_config(), "bert.");
    for (dtype, round) in [
        (Dtype::F16, (|x: f32| half_to_f32(f32_to_half(x))) as fn(f32) -> f32),
        (Dtype::BF16, |x: f32| f32::from_bits((f32_to_bf16(x) as u32) << 16)),
    ] {
        let model = load_as(&tensors, dtype).unwrap_or_else(|e| panic!("{dtype:?} weights: {e}"));
        let weight = model.encoder.layer[1].intermediate.dense.weight.val();
        assert_eq!(weight.dtype(), DType::F32, "{dtype:?} must be widened to f32");
        let (shape, hf) = &tensors["bert.encoder.layer.1.intermediate.dense.weight"];
        let burn_w = values(weight);
        let (out_dim, in_dim) = (shape[0], shape[1]);
        for o in 0..out_dim {
            for i in 0..in_dim {
                assert_eq!(burn_w[i * out_dim + o], round(hf[o * in_dim + i]), "{dtype:?} [{o}, {i}]");
            }
        }
        let gamma = model.embeddings.layer_norm.gamma.val();
        assert_eq!(gamma.dtype(), DType::F32);
        let want: Vec<f32> = tensors["bert.embeddings.LayerNorm.weight"].1.iter().map(|&x| round(x)).collect();
        assert_eq!(values1(gamma), want);
        // A forward pass runs in f32 end to end.
        let device = Device::flex();
        let ids = burn::tensor::Tensor::<2, burn::tensor::Int>::from_data(
            burn::tensor::TensorData::new(vec![1i64, 5, 7, 2], [1, 4]),
            &device,
        );
        let types = ids.zeros_like();
        let padding = burn::tensor::Tensor::<2, burn::tensor::Bool>::from_data(
            burn::tensor::TensorData::new(vec![false; 4], [1, 4]),
            &device,
        );
        let out = model.forward(ids, types, padding);
        assert_eq!(out.dtype(), DType::F32);
        assert!(out.into_data().try_into_vec_as::<f32>().unwrap().iter().all(|x| x.is_finite()));
    }
}

/// f32 → bfloat16 (the upper 16 bits), rounding to nearest even; finite test values only.
fn f32_to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    let round = 0x7fff + ((bits >> 16) & 1);
    ((bits + round) >> 16) as u16
}

fn values1(t: burn::tensor::Tensor<1>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

/// A model built from scratch draws its weights with the config's `initializer_range` (the demo's
/// small models rely on it), and 0.02 when the config does not say.
#[test]
fn scratch_models_use_the_initializer_range() {
    let device = Device::flex();
    let std_of = |c: &BertConfig| {
        let model = BertModel::new(c, &device);
        let w = values(model.encoder.layer[0].attention.self_attn.query.weight.val());
        let mean = w.iter().sum::<f32>() / w.len() as f32;
        (w.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / w.len() as f32).sqrt()
    };
    let mut c = tiny_config();
    c.hidden_size = 64;
    c.intermediate_size = 128;
    assert_eq!(c.initializer_range, 0.02);
    let default = std_of(&c);
    assert!((default - 0.02).abs() < 0.003, "std {default}");
    c.initializer_range = 0.1;
    let wide = std_of(&c);
    assert!((wide - 0.1).abs() < 0.015, "std {wide}");
}
