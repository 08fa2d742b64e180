use super::dropout::dropout;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, LayerNorm, LayerNormConfig, Linear};
#[cfg(not(target_arch = "wasm32"))]
use burn::nn::{EmbeddingConfig, LinearConfig};
use burn::tensor::activation::{gelu_approximate, relu};
use burn::tensor::{Bool, Device, Int, Tensor};

use super::embedding::BertEmbeddings;
use super::gelu::gelu;
use crate::config::{Activation, BertConfig};

/// Multi-head self-attention (`attention.self` in Hugging Face names).
#[derive(Module, Debug)]
pub struct SelfAttention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub num_heads: usize,
}

/// Projection after attention, with residual and LayerNorm (`attention.output`, `output`).
#[derive(Module, Debug)]
pub struct ResidualOutput {
    pub dense: Linear,
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
    /// The LayerNorm's epsilon, which burn's `LayerNorm` keeps private.
    pub layer_norm_eps: f64,
}

#[derive(Module, Debug)]
pub struct Attention {
    pub self_attn: SelfAttention,
    pub output: ResidualOutput,
}

#[derive(Module, Debug)]
pub struct Intermediate {
    pub dense: Linear,
}

#[derive(Module, Debug)]
pub struct BertLayer {
    pub attention: Attention,
    pub intermediate: Intermediate,
    pub output: ResidualOutput,
    /// 0 = exact GELU, 1 = tanh GELU, 2 = ReLU (a plain number so the module stays `Module`).
    pub activation: usize,
}

#[derive(Module, Debug)]
pub struct BertEncoder {
    pub layer: Vec<BertLayer>,
}

/// `BertModel` without the pooler: token vectors of the last layer.
#[derive(Module, Debug)]
pub struct BertModel {
    pub embeddings: BertEmbeddings,
    pub encoder: BertEncoder,
}

/// A linear layer with the config's from-scratch initialisation (loading overwrites it).
pub(super) fn linear(d_in: usize, d_out: usize, config: &BertConfig, device: &Device) -> Linear {
    #[cfg(target_arch = "wasm32")]
    {
        let _ = config;
        Linear { weight: loaded_only([d_in, d_out], device), bias: Some(loaded_only([d_out], device)) }
    }
    #[cfg(not(target_arch = "wasm32"))]
    LinearConfig::new(d_in, d_out).with_initializer(config.initializer()).init(device)
}

/// An embedding table with the config's from-scratch initialisation (loading overwrites it).
pub(super) fn embedding(rows: usize, width: usize, config: &BertConfig, device: &Device) -> Embedding {
    #[cfg(target_arch = "wasm32")]
    {
        let _ = config;
        Embedding { weight: loaded_only([rows, width], device) }
    }
    #[cfg(not(target_arch = "wasm32"))]
    EmbeddingConfig::new(rows, width).with_initializer(config.initializer()).init(device)
}

/// A weight that loading fills in, for the page's build: the page only loads models, never
/// trains one from scratch, and burn's `Initializer` for a two-dimensional weight brings its
/// `Orthogonal` case (a QR decomposition, for both of the page's backends) into the wasm
/// (BENCHMARKS.md, issue 19). Every weight must be in the file (`loader::check_applied`); one
/// that is not (a new head, which only training asks for) would start at zero.
#[cfg(target_arch = "wasm32")]
fn loaded_only<const D: usize>(shape: [usize; D], device: &Device) -> burn::module::Param<Tensor<D>> {
    use burn::module::{Param, ParamId};
    Param::uninitialized(
        ParamId::new(),
        move |device, _| Tensor::zeros(shape, device),
        device.clone(),
        true,
        shape.into(),
    )
}

impl Intermediate {
    /// The feed-forward expansion and its activation (`activation` as in [`activation_code`]).
    pub(super) fn forward(&self, x: Tensor<3>, activation: usize) -> Tensor<3> {
        let inner = super::apply_linear(&self.dense, x);
        match activation {
            0 => gelu(inner),
            1 => gelu_approximate(inner),
            _ => relu(inner),
        }
    }
}

impl ResidualOutput {
    pub(super) fn new(d_in: usize, config: &BertConfig, device: &Device) -> Self {
        Self {
            dense: linear(d_in, config.hidden_size, config, device),
            layer_norm: LayerNormConfig::new(config.hidden_size).with_epsilon(config.layer_norm_eps).init(device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            layer_norm_eps: config.layer_norm_eps,
        }
    }

    pub(super) fn forward(&self, x: Tensor<3>, residual: Tensor<3>) -> Tensor<3> {
        let x = dropout(&self.dropout, super::apply_linear(&self.dense, x));
        if let Some(y) = super::cube_rows::residual_layer_norm(&self.layer_norm, self.layer_norm_eps, &x, &residual) {
            return y;
        }
        self.layer_norm.forward(x + residual)
    }
}

impl SelfAttention {
    /// `x`: `[b, s, h]`; `mask`: `[b, heads, s, s]`, true where a key is padding.
    fn forward(&self, x: Tensor<3>, mask: Tensor<4, Bool>) -> Tensor<3> {
        let [b, s, h] = x.dims();
        let heads = self.num_heads;
        let split = |t: Tensor<3>| t.reshape([b, s, heads, h / heads]).swap_dims(1, 2);
        let q = split(super::apply_linear(&self.query, x.clone()));
        let k = split(super::apply_linear(&self.key, x.clone()));
        let v = split(super::apply_linear(&self.value, x));
        // Attention dropout is left out: the fused kernel has none, and distillation
        // fine-tuning works without it (hidden dropout stays).
        let context = super::attention(q, k, v, mask, None);
        context.swap_dims(1, 2).reshape([b, s, h])
    }
}

/// The feed-forward activation as the plain number a layer stores (0 = exact GELU, 1 = tanh GELU,
/// 2 = ReLU); an unknown `hidden_act` (refused when the config is read) falls back to GELU.
pub(super) fn activation_code(config: &BertConfig) -> usize {
    match config.activation(std::path::Path::new("config.json")).unwrap_or(Activation::Gelu) {
        Activation::Gelu => 0,
        Activation::GeluTanh => 1,
        Activation::Relu => 2,
    }
}

impl BertLayer {
    fn new(config: &BertConfig, activation: usize, device: &Device) -> Self {
        let h = config.hidden_size;
        Self {
            attention: Attention {
                self_attn: SelfAttention {
                    query: linear(h, h, config, device),
                    key: linear(h, h, config, device),
                    value: linear(h, h, config, device),
                    num_heads: config.num_attention_heads,
                },
                output: ResidualOutput::new(h, config, device),
            },
            intermediate: Intermediate { dense: linear(h, config.intermediate_size, config, device) },
            output: ResidualOutput::new(config.intermediate_size, config, device),
            activation,
        }
    }

    fn forward(&self, x: Tensor<3>, mask: Tensor<4, Bool>) -> Tensor<3> {
        let attended = self.attention.self_attn.forward(x.clone(), mask);
        let x = self.attention.output.forward(attended, x);
        let inner = self.intermediate.forward(x.clone(), self.activation);
        self.output.forward(inner, x)
    }
}

impl BertModel {
    /// A randomly initialised model of the given shape (weights are then loaded or trained).
    pub fn new(config: &BertConfig, device: &Device) -> Self {
        let activation = activation_code(config);
        Self {
            embeddings: BertEmbeddings::new(config, device),
            encoder: BertEncoder {
                layer: (0..config.num_hidden_layers).map(|_| BertLayer::new(config, activation, device)).collect(),
            },
        }
    }

    /// `input_ids`, `token_type_ids`: `[b, s]`; `padding`: `[b, s]`, true at padding.
    /// Returns the last layer's token vectors `[b, s, hidden]`.
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        padding: Tensor<2, Bool>,
    ) -> Tensor<3> {
        let mut states = self.forward_layers(input_ids, token_type_ids, padding);
        states.pop().expect("the embeddings' output is always there")
    }

    /// Every layer's token vectors `[b, s, hidden]`: the embeddings' output first, then each
    /// layer's (Hugging Face's `hidden_states`), for losses on inner layers.
    pub fn forward_layers(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        padding: Tensor<2, Bool>,
    ) -> Vec<Tensor<3>> {
        let [b, s] = input_ids.dims();
        let heads = self.encoder.layer.first().map_or(1, |l| l.attention.self_attn.num_heads);
        let mask = padding.reshape([b, 1, 1, s]).expand([b, heads, s, s]);
        let mut states = vec![self.embeddings.forward(input_ids, token_type_ids)];
        for layer in &self.encoder.layer {
            let x = layer.forward(states.last().expect("never empty").clone(), mask.clone());
            states.push(x);
        }
        states
    }

    /// Keeps the first `k` layers (layer truncation for smaller students).
    pub fn truncate_layers(mut self, k: usize) -> Self {
        self.encoder.layer.truncate(k);
        self
    }
}
