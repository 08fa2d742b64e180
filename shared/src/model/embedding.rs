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
    /// The LayerNorm's epsilon, which burn's `LayerNorm` keeps private.
    pub layer_norm_eps: f64,
}

impl BertEmbeddings {
    pub fn new(config: &BertConfig, device: &Device) -> Self {
        Self {
            word_embeddings: embedding(config.vocab_size, config.hidden_size, config, device),
            position_embeddings: embedding(config.max_position_embeddings, config.hidden_size, config, device),
            token_type_embeddings: embedding(config.type_vocab_size, config.hidden_size, config, device),
            layer_norm: LayerNormConfig::new(config.hidden_size).with_epsilon(config.layer_norm_eps).init(device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            layer_norm_eps: config.layer_norm_eps,
        }
    }

    /// `input_ids`, `token_type_ids`: `[batch, seq]` → `[batch, seq, hidden]`.
    pub fn forward(&self, input_ids: Tensor<2, Int>, token_type_ids: Tensor<2, Int>) -> Tensor<3> {
        let [batch, seq] = input_ids.dims();
        let words = self.word_embeddings.forward(input_ids);
        let types = self.token_type_embeddings.forward(token_type_ids);
        // Absolute positions 0..seq are the same for every row: slice the table once and
        // broadcast it instead of gathering a [batch, seq] index tensor.
        let positions = self.position_embeddings.weight.val().narrow(0, 0, seq).unsqueeze::<3>();
        let x = words + types;
        // On the page's SwiftShader path, `+ positions` (read through the broadcast's zero stride)
        // and the LayerNorm are one kernel of ours, in burn's order, where burn launches ten.
        if super::cube_matmul::register_blocks() {
            let broadcast = positions.clone().expand([batch, seq, positions.dims()[2]]);
            if let Some(y) =
                super::cube_rows::residual_layer_norm(&self.layer_norm, self.layer_norm_eps, &x, &broadcast)
            {
                return dropout(&self.dropout, y);
            }
        }
        dropout(&self.dropout, self.layer_norm.forward(x + positions))
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::model::cube_matmul::tests::{max_diff, wgpu};
    use crate::model::cube_matmul::use_register_blocks;
    use burn::tensor::TensorData;

    /// On the wgpu device (lavapipe without a GPU), the embeddings with the page's kernels give
    /// burn's values: the positions' add and the LayerNorm in one kernel, within 1e-5.
    #[test]
    fn embeddings_with_the_page_kernels_match_burn_on_wgpu() {
        let json = br#"{"vocab_size": 30, "hidden_size": 48, "num_hidden_layers": 1, "num_attention_heads": 2,
            "intermediate_size": 16, "max_position_embeddings": 16, "type_vocab_size": 2, "model_type": "bert"}"#;
        let config = BertConfig::from_json(json, std::path::Path::new("config.json")).unwrap();
        let device = wgpu();
        let embeddings = BertEmbeddings::new(&config, &device);
        let ids = Tensor::<2, Int>::from_data(TensorData::new(vec![2i64, 5, 7, 3, 2, 9, 29, 0, 4, 4], [2, 5]), &device);
        let types =
            Tensor::<2, Int>::from_data(TensorData::new(vec![0i64, 0, 1, 1, 1, 0, 0, 0, 1, 1], [2, 5]), &device);
        let burns = embeddings.forward(ids.clone(), types.clone());
        use_register_blocks(true);
        let ours = embeddings.forward(ids, types);
        let probe = Tensor::<3>::zeros([2, 5, 48], &device);
        let taken = crate::model::cube_rows::residual_layer_norm(
            &embeddings.layer_norm,
            embeddings.layer_norm_eps,
            &probe,
            &probe.clone().slice([0..1, 0..5, 0..48]).expand([2, 5, 48]),
        );
        use_register_blocks(false);
        assert!(taken.is_some(), "the kernel takes the embeddings' LayerNorm and a broadcast");
        assert_eq!(ours.dims(), [2, 5, 48]);
        assert!(max_diff(ours, burns) <= 1e-5);
    }
}
