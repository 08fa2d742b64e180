//! BERT with its masked-language-model head, for pre-training a model from scratch on a corpus
//! before it learns to rank (`adam teacher pretrain`). The head is Hugging Face's
//! `BertLMPredictionHead`
//! (<https://github.com/huggingface/transformers/blob/main/src/transformers/models/bert/modeling_bert.py>):
//! dense, GELU, LayerNorm, then the word embeddings (tied, as in `BertForMaskedLM`) plus a bias.

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Bool, Device, Int, Tensor};

use super::bert::{BertModel, linear};
use super::gelu::gelu;
use crate::config::BertConfig;

/// `cls.predictions`: the transform before the tied decoder, and the decoder's bias.
#[derive(Module, Debug)]
pub struct MlmHead {
    pub dense: Linear,
    pub layer_norm: LayerNorm,
    pub bias: Param<Tensor<1>>,
}

/// `BertForMaskedLM`: the encoder and its masked-language-model head.
#[derive(Module, Debug)]
pub struct BertForMaskedLm {
    pub bert: BertModel,
    pub head: MlmHead,
}

impl BertForMaskedLm {
    /// A randomly initialised model of the config's shape (the bias starts at zero).
    pub fn new(config: &BertConfig, device: &Device) -> Self {
        Self {
            bert: BertModel::new(config, device),
            head: MlmHead {
                dense: linear(config.hidden_size, config.hidden_size, config, device),
                layer_norm: LayerNormConfig::new(config.hidden_size).with_epsilon(config.layer_norm_eps).init(device),
                bias: Param::from_tensor(Tensor::zeros([config.vocab_size], device)),
            },
        }
    }

    /// Vocabulary logits `[n, vocab]` at `positions`: indices into the flattened `[b * s]`
    /// tokens of `input_ids` (only the masked ones need the head's large matrix product).
    pub fn logits(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        padding: Tensor<2, Bool>,
        positions: Tensor<1, Int>,
    ) -> Tensor<2> {
        let hidden = self.bert.forward(input_ids, token_type_ids, padding);
        let [b, s, h] = hidden.dims();
        let picked = hidden.reshape([b * s, h]).select(0, positions);
        let x = self.head.layer_norm.forward(gelu(self.head.dense.forward(picked)));
        let words = self.bert.embeddings.word_embeddings.weight.val();
        x.matmul(words.transpose()) + self.head.bias.val().unsqueeze::<2>()
    }

    /// Mean cross-entropy of the tokens at `positions` against `targets` (the original ids).
    pub fn loss(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        padding: Tensor<2, Bool>,
        positions: Tensor<1, Int>,
        targets: Tensor<1, Int>,
    ) -> Tensor<1> {
        let n = targets.dims()[0];
        let logits = self.logits(input_ids, token_type_ids, padding, positions);
        let picked = log_softmax(logits, 1).gather(1, targets.reshape([n, 1]));
        picked.mean().neg()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn config() -> BertConfig {
        let json = br#"{"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
            "intermediate_size": 16, "max_position_embeddings": 16, "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0, "model_type": "bert"}"#;
        BertConfig::from_json(json, std::path::Path::new("config.json")).unwrap()
    }

    /// The logits at a position are the head applied to that token's vector, and the loss is
    /// the mean negative log-probability of the targets there.
    #[test]
    fn logits_and_loss_match_a_direct_computation() {
        let device = Device::flex();
        let model = BertForMaskedLm::new(&config(), &device);
        let ids = Tensor::<2, Int>::from_data(TensorData::new(vec![2i64, 5, 7, 3, 2, 9, 3, 0], [2, 4]), &device);
        let types = Tensor::<2, Int>::zeros([2, 4], &device);
        let pad = Tensor::<2, Bool>::from_data(
            TensorData::new(vec![false, false, false, false, false, false, false, true], [2, 4]),
            &device,
        );
        let positions = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 5], [2]), &device);
        let targets = Tensor::<1, Int>::from_data(TensorData::new(vec![4i64, 11], [2]), &device);
        let logits = model.logits(ids.clone(), types.clone(), pad.clone(), positions.clone());
        assert_eq!(logits.dims(), [2, 20]);
        let hidden = model.bert.forward(ids.clone(), types.clone(), pad.clone());
        let direct = model
            .head
            .layer_norm
            .forward(gelu(model.head.dense.forward(hidden.slice([0..1, 1..2]).reshape([1, 8]))))
            .matmul(model.bert.embeddings.word_embeddings.weight.val().transpose());
        let row0: Vec<f32> = logits.clone().slice([0..1, 0..20]).into_data().try_to_vec::<f32>().unwrap();
        let want: Vec<f32> = direct.into_data().try_to_vec::<f32>().unwrap();
        for (a, b) in row0.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        let l: Vec<f32> = logits.into_data().try_to_vec::<f32>().unwrap();
        let nll = |row: &[f32], t: usize| {
            let max = row.iter().cloned().fold(f32::MIN, f32::max);
            let z: f32 = row.iter().map(|v| (v - max).exp()).sum();
            -(row[t] - max - z.ln())
        };
        let expected = (nll(&l[0..20], 4) + nll(&l[20..40], 11)) / 2.0;
        let loss: f32 = model.loss(ids, types, pad, positions, targets).into_scalar();
        assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
    }
}
