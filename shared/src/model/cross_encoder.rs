//! A cross-encoder in the Hugging Face `BertForSequenceClassification` layout: BERT over the pair
//! `[CLS] query [SEP] passage [SEP]`, the pooler (dense + tanh on `[CLS]`) and a linear head.
//! Public rerankers (e.g. the ms-marco MiniLM cross-encoders) load as they are.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::tensor::activation::tanh;
use burn::tensor::{Bool, Device, Int, Tensor};

use super::BertModel;
use super::bert::linear;
use crate::config::BertConfig;

/// `bert.pooler`: dense + tanh on the `[CLS]` vector.
#[derive(Module, Debug)]
pub struct Pooler {
    pub dense: Linear,
}

/// `BertForSequenceClassification` with `num_labels` outputs (1 for a relevance score).
#[derive(Module, Debug)]
pub struct CrossEncoderModel {
    pub bert: BertModel,
    pub pooler: Pooler,
    pub dropout: Dropout,
    pub classifier: Linear,
}

impl CrossEncoderModel {
    /// A randomly initialised model of the given shape.
    pub fn new(config: &BertConfig, device: &Device) -> Self {
        let h = config.hidden_size;
        Self {
            bert: BertModel::new(config, device),
            pooler: Pooler { dense: linear(h, h, config, device) },
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            classifier: linear(h, config.labels(), config, device),
        }
    }

    /// Logits `[b, num_labels]` for tokenized pairs (see `TextTokenizer::encode_pairs`).
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        padding: Tensor<2, Bool>,
    ) -> Tensor<2> {
        let tokens = self.bert.forward(input_ids, token_type_ids, padding);
        let [b, _, h] = tokens.dims();
        let cls = tokens.narrow(1, 0, 1).reshape([b, h]);
        let pooled = tanh(self.pooler.dense.forward(cls));
        self.classifier.forward(self.dropout.forward(pooled))
    }

    /// One relevance score per pair `[b]`: the single logit, or for a two-label head the
    /// difference "relevant − not relevant" (label 1 − label 0), which orders pairs as the
    /// softmax probability of label 1 does.
    pub fn score(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        padding: Tensor<2, Bool>,
    ) -> Tensor<1> {
        let logits = self.forward(input_ids, token_type_ids, padding);
        let [b, labels] = logits.dims();
        if labels == 1 {
            logits.reshape([b])
        } else {
            (logits.clone().narrow(1, 1, 1) - logits.narrow(1, 0, 1)).reshape([b])
        }
    }
}
