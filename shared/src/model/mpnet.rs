//! MPNet as in Hugging Face `MPNetModel` (the encoder of all-mpnet-base-v2), in burn. Reference:
//! transformers `models/mpnet/modeling_mpnet.py`. It differs from BERT in three places:
//! - positions start after the padding index (`create_position_ids_from_input_ids`: token `i` of a
//!   right-padded row sits at position `i + pad_token_id + 1`), and there are no token types;
//! - self-attention adds a relative-position bias, one learned value per head and distance bucket
//!   (`MPNetEncoder.relative_attention_bias`, computed once and shared by every layer);
//! - names: `attention.attn.{q,k,v,o}`, with `o` inside the attention block and its LayerNorm
//!   beside it (`attention.LayerNorm`).
//!
//! Field names follow the Hugging Face tensor names, so loading is a fixed renaming.

use super::dropout::dropout;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

use super::bert::{Intermediate, ResidualOutput, activation_code, embedding, linear};
use crate::config::BertConfig;

/// Word + position embeddings, LayerNorm, dropout (`embeddings`).
#[derive(Module, Debug)]
pub struct MPNetEmbeddings {
    pub word_embeddings: Embedding,
    pub position_embeddings: Embedding,
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
    /// The padding id; real tokens' positions start at `pad_token_id + 1`.
    pub pad_token_id: usize,
}

/// `attention.attn`: the projections q, k, v and the output projection o.
#[derive(Module, Debug)]
pub struct MPNetSelfAttention {
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    pub num_heads: usize,
}

/// `attention`: self-attention, dropout, residual and LayerNorm.
#[derive(Module, Debug)]
pub struct MPNetAttention {
    pub attn: MPNetSelfAttention,
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
}

#[derive(Module, Debug)]
pub struct MPNetLayer {
    pub attention: MPNetAttention,
    pub intermediate: Intermediate,
    pub output: ResidualOutput,
    /// As in `BertLayer`: 0 = exact GELU, 1 = tanh GELU, 2 = ReLU.
    pub activation: usize,
}

#[derive(Module, Debug)]
pub struct MPNetEncoder {
    pub layer: Vec<MPNetLayer>,
    /// `[buckets, heads]`: the attention bias of each relative-distance bucket.
    pub relative_attention_bias: Embedding,
}

/// `MPNetModel` without the pooler: token vectors of the last layer.
#[derive(Module, Debug)]
pub struct MPNetModel {
    pub embeddings: MPNetEmbeddings,
    pub encoder: MPNetEncoder,
}

/// The bucket of a relative position (`key − query`), as `MPNetEncoder.relative_position_bucket`
/// with 32 buckets and a maximum distance of 128: half the buckets for keys before the query,
/// half after; exact buckets up to distance 7, logarithmic ones beyond. The logarithm is taken
/// in f32, as PyTorch does, so the boundaries fall where the reference puts them.
pub fn relative_position_bucket(relative_position: i64) -> usize {
    const NUM_BUCKETS: i64 = 32 / 2;
    const MAX_EXACT: i64 = NUM_BUCKETS / 2;
    const MAX_DISTANCE: f64 = 128.0;
    let n = -relative_position;
    let base = if n < 0 { NUM_BUCKETS } else { 0 };
    let n = n.abs();
    let bucket = if n < MAX_EXACT {
        n
    } else {
        let log_ratio = (n as f32 / MAX_EXACT as f32).ln();
        let scale = (MAX_DISTANCE / MAX_EXACT as f64).ln() as f32;
        let large = MAX_EXACT + (log_ratio / scale * (NUM_BUCKETS - MAX_EXACT) as f32) as i64;
        large.min(NUM_BUCKETS - 1)
    };
    (base + bucket) as usize
}

impl MPNetEmbeddings {
    fn new(config: &BertConfig, device: &Device) -> Self {
        let embedding = |n| embedding(n, config.hidden_size, config, device);
        Self {
            word_embeddings: embedding(config.vocab_size),
            position_embeddings: embedding(config.max_position_embeddings),
            layer_norm: LayerNormConfig::new(config.hidden_size).with_epsilon(config.layer_norm_eps).init(device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            pad_token_id: config.pad_token_id,
        }
    }

    /// `input_ids`: `[batch, seq]`, right-padded → `[batch, seq, hidden]`.
    fn forward(&self, input_ids: Tensor<2, Int>) -> Tensor<3> {
        let [_, seq] = input_ids.dims();
        let words = self.word_embeddings.forward(input_ids);
        // Rows are right-padded, so token i of every row is at position i + pad + 1; padding
        // positions differ from the reference's (it puts them at `pad`) but are masked out.
        let first = self.pad_token_id + 1;
        let positions = self.position_embeddings.weight.val().narrow(0, first, seq).unsqueeze::<3>();
        dropout(&self.dropout, self.layer_norm.forward(words + positions))
    }
}

impl MPNetSelfAttention {
    /// `x`: `[b, s, h]`; `mask`: `[b, heads, s, s]`, true where a key is padding; `bias`:
    /// `[b, heads, s, s]`, added to the scaled scores.
    fn forward(&self, x: Tensor<3>, mask: Tensor<4, Bool>, bias: Tensor<4>) -> Tensor<3> {
        let [b, s, h] = x.dims();
        let heads = self.num_heads;
        let split = |t: Tensor<3>| t.reshape([b, s, heads, h / heads]).swap_dims(1, 2);
        let q = split(super::apply_linear(&self.q, x.clone()));
        let k = split(super::apply_linear(&self.k, x.clone()));
        let v = split(super::apply_linear(&self.v, x));
        // Attention dropout is left out, as in `bert.rs` (the fused kernel has none).
        let context = super::attention(q, k, v, mask, Some(bias));
        super::apply_linear(&self.o, context.swap_dims(1, 2).reshape([b, s, h]))
    }
}

impl MPNetLayer {
    fn new(config: &BertConfig, activation: usize, device: &Device) -> Self {
        let h = config.hidden_size;
        Self {
            attention: MPNetAttention {
                attn: MPNetSelfAttention {
                    q: linear(h, h, config, device),
                    k: linear(h, h, config, device),
                    v: linear(h, h, config, device),
                    o: linear(h, h, config, device),
                    num_heads: config.num_attention_heads,
                },
                layer_norm: LayerNormConfig::new(h).with_epsilon(config.layer_norm_eps).init(device),
                dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            },
            intermediate: Intermediate { dense: linear(h, config.intermediate_size, config, device) },
            output: ResidualOutput::new(config.intermediate_size, config, device),
            activation,
        }
    }

    fn forward(&self, x: Tensor<3>, mask: Tensor<4, Bool>, bias: Tensor<4>) -> Tensor<3> {
        let attended = self.attention.attn.forward(x.clone(), mask, bias);
        let x = self.attention.layer_norm.forward(dropout(&self.attention.dropout, attended) + x);
        let inner = self.intermediate.forward(x.clone(), self.activation);
        self.output.forward(inner, x)
    }
}

impl MPNetEncoder {
    /// The relative-position bias `[1, heads, s, s]` of a sequence of length `s`.
    fn position_bias(&self, s: usize, device: &Device) -> Tensor<4> {
        let buckets: Vec<i64> = (0..s as i64)
            .flat_map(|query| (0..s as i64).map(move |key| relative_position_bucket(key - query) as i64))
            .collect();
        let buckets = Tensor::<2, Int>::from_data(TensorData::new(buckets, [1, s * s]), device);
        let values = self.relative_attention_bias.forward(buckets); // [1, s*s, heads]
        let heads = values.dims()[2];
        values.reshape([s, s, heads]).permute([2, 0, 1]).unsqueeze::<4>()
    }
}

impl MPNetModel {
    /// A randomly initialised model of the given shape (weights are then loaded or trained).
    pub fn new(config: &BertConfig, device: &Device) -> Self {
        let activation = activation_code(config);
        Self {
            embeddings: MPNetEmbeddings::new(config, device),
            encoder: MPNetEncoder {
                layer: (0..config.num_hidden_layers).map(|_| MPNetLayer::new(config, activation, device)).collect(),
                relative_attention_bias: embedding(
                    config.relative_buckets(),
                    config.num_attention_heads,
                    config,
                    device,
                ),
            },
        }
    }

    /// `input_ids`: `[b, s]`; `padding`: `[b, s]`, true at padding. Returns the last layer's
    /// token vectors `[b, s, hidden]`.
    pub fn forward(&self, input_ids: Tensor<2, Int>, padding: Tensor<2, Bool>) -> Tensor<3> {
        let [b, s] = input_ids.dims();
        let device = input_ids.device();
        let heads = self.encoder.relative_attention_bias.weight.dims()[1];
        let mask = padding.reshape([b, 1, 1, s]).expand([b, heads, s, s]);
        let bias = self.encoder.position_bias(s, &device).expand([b, heads, s, s]);
        let mut x = self.embeddings.forward(input_ids);
        for layer in &self.encoder.layer {
            x = layer.forward(x, mask.clone(), bias.clone());
        }
        x
    }

    /// Keeps the first `k` layers.
    pub fn truncate_layers(mut self, k: usize) -> Self {
        self.encoder.layer.truncate(k);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::relative_position_bucket;

    /// Hand-computed from the reference formula: exact buckets below 8, then
    /// 8 + floor(ln(n / 8) / ln(16) · 8), at most 15; keys after the query add 16.
    #[test]
    fn buckets_follow_the_reference_formula() {
        assert_eq!(relative_position_bucket(0), 0);
        assert_eq!(relative_position_bucket(-3), 3);
        assert_eq!(relative_position_bucket(3), 19);
        assert_eq!(relative_position_bucket(-8), 8);
        assert_eq!(relative_position_bucket(-12), 9); // ln(1.5)/ln(16)*8 = 1.17
        assert_eq!(relative_position_bucket(12), 25);
        assert_eq!(relative_position_bucket(-127), 15);
        assert_eq!(relative_position_bucket(-1000), 15);
        assert_eq!(relative_position_bucket(1000), 31);
    }
}
