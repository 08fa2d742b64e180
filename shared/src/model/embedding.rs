use super::dropout::dropout;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, LayerNorm, LayerNormConfig};
use burn::tensor::{Device, Int, Tensor};

use super::bert::embedding;
use crate::config::BertConfig;

/// Word + position + token-type embeddings, then LayerNorm (and dropout when training).
#[derive(Module, Debug)]
pub struct BertEmbeddings {
    pub word_embeddings: Embedding,
    pub position_embeddings: Embedding,
    pub token_type_embeddings: Embedding,
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
}

impl BertEmbeddings {
    pub fn new(config: &BertConfig, device: &Device) -> Self {
        Self {
            word_embeddings: embedding(config.vocab_size, config.hidden_size, config, device),
            position_embeddings: embedding(config.max_position_embeddings, config.hidden_size, config, device),
            token_type_embeddings: embedding(config.type_vocab_size, config.hidden_size, config, device),
            layer_norm: LayerNormConfig::new(config.hidden_size).with_epsilon(config.layer_norm_eps).init(device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
        }
    }

    /// `input_ids`, `token_type_ids`: `[batch, seq]` → `[batch, seq, hidden]`.
    pub fn forward(&self, input_ids: Tensor<2, Int>, token_type_ids: Tensor<2, Int>) -> Tensor<3> {
        let [_, seq] = input_ids.dims();
        let words = self.word_embeddings.forward(input_ids);
        let types = self.token_type_embeddings.forward(token_type_ids);
        // Absolute positions 0..seq are the same for every row: slice the table once and
        // broadcast it instead of gathering a [batch, seq] index tensor.
        let positions = self.position_embeddings.weight.val().narrow(0, 0, seq).unsqueeze::<3>();
        let x = words + types + positions;
        dropout(&self.dropout, self.layer_norm.forward(x))
    }
}
