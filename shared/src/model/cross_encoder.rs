//! A cross-encoder in the Hugging Face `BertForSequenceClassification` or
//! `MPNetForSequenceClassification` layout: the encoder over the pair (`[CLS] query [SEP]
//! passage [SEP]`, or MPNet's `<s> query </s></s> passage </s>`), dense + tanh on the first
//! token, dropout and a linear head. The two heads compute the same thing under other names
//! (BERT: `bert.pooler.dense`, `classifier`; MPNet: `classifier.dense`, `classifier.out_proj`,
//! and a dropout before the dense layer too, which does nothing at inference), so one module
//! serves both and the loader and saver rename. Public rerankers (e.g. the ms-marco MiniLM
//! cross-encoders) load as they are.

use super::dropout::dropout;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::tensor::activation::tanh;
use burn::tensor::{Bool, Device, Int, Tensor};

use super::Transformer;
#[cfg(doc)]
use super::bert::BertModel;
use super::bert::linear;
use crate::config::{Architecture, BertConfig};

/// Dense + tanh on the first token (`bert.pooler`, MPNet's `classifier.dense`).
#[derive(Module, Debug)]
pub struct Pooler {
    pub dense: Linear,
}

/// A sequence-classification model with `num_labels` outputs (1 for a relevance score).
#[derive(Module, Debug)]
pub struct CrossEncoderModel {
    /// The encoder (BERT or MPNet).
    pub transformer: Transformer,
    pub pooler: Pooler,
    pub dropout: Dropout,
    pub classifier: Linear,
}

impl CrossEncoderModel {
    /// A randomly initialised model of the config's family and shape.
    pub fn new(config: &BertConfig, device: &Device) -> Self {
        let h = config.hidden_size;
        Self {
            transformer: Transformer::new(config, device),
            pooler: Pooler { dense: linear(h, h, config, device) },
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            classifier: linear(h, config.labels(), config, device),
        }
    }

    /// The encoder family (names the layout the weights are saved in).
    pub fn architecture(&self) -> Architecture {
        match self.transformer {
            Transformer::Bert(_) => Architecture::Bert,
            Transformer::MPNet(_) => Architecture::MPNet,
        }
    }

    /// Transformer layers.
    pub fn layers(&self) -> usize {
        match &self.transformer {
            Transformer::Bert(m) => m.encoder.layer.len(),
            Transformer::MPNet(m) => m.encoder.layer.len(),
        }
    }

    /// Logits `[b, num_labels]` for tokenized pairs (see `TextTokenizer::encode_pairs`).
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        padding: Tensor<2, Bool>,
    ) -> Tensor<2> {
        let tokens = self.transformer.forward(input_ids, token_type_ids, padding);
        self.classify(self.pool(tokens))
    }

    /// For a BERT cross-encoder: every layer's token vectors (embeddings first, see
    /// [`BertModel::forward_layers`]); `None` for MPNet. [`Self::pool`] the last, then
    /// [`Self::classify`], gives [`Self::forward`]'s logits.
    pub fn forward_layers(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        padding: Tensor<2, Bool>,
    ) -> Option<Vec<Tensor<3>>> {
        Some(self.transformer.bert()?.forward_layers(input_ids, token_type_ids, padding))
    }

    /// The pooler on the last layer's first token: `[b, hidden]`.
    pub fn pool(&self, tokens: Tensor<3>) -> Tensor<2> {
        let [b, _, h] = tokens.dims();
        let first = tokens.narrow(1, 0, 1).reshape([b, h]);
        let first = match self.transformer {
            // MPNetClassificationHead drops out the first token's vector before its dense layer.
            Transformer::MPNet(_) => dropout(&self.dropout, first),
            Transformer::Bert(_) => first,
        };
        tanh(head_linear(&self.pooler.dense, first))
    }

    /// Logits `[b, num_labels]` of pooled vectors.
    pub fn classify(&self, pooled: Tensor<2>) -> Tensor<2> {
        head_linear(&self.classifier, dropout(&self.dropout, pooled))
    }

    /// A relevance score per pair `[b]` from logits (see [`Self::score`]).
    pub fn logit_score(logits: Tensor<2>) -> Tensor<1> {
        let [b, labels] = logits.dims();
        if labels == 1 {
            logits.reshape([b])
        } else {
            (logits.clone().narrow(1, 1, 1) - logits.narrow(1, 0, 1)).reshape([b])
        }
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
        Self::logit_score(self.forward(input_ids, token_type_ids, padding))
    }
}

/// The head's layers: burn's `Linear`, but by the register-block kernel where the page switched
/// it on (burn's product took 39 ms for two rows on SwiftShader, 4.8 % of a slider move's kernel
/// time; BENCHMARKS.md, issue 19).
fn head_linear(layer: &Linear, x: Tensor<2>) -> Tensor<2> {
    super::cube_matmul::linear(layer, &x).unwrap_or_else(|| layer.forward(x))
}
