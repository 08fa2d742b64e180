//! The encoders in burn: BERT as in Hugging Face `BertModel` and MPNet as in `MPNetModel`. Field
//! names follow the Hugging Face tensor names so that loading is a fixed renaming (see
//! [`crate::loader`]).

mod bert;
mod cross_encoder;
pub mod cube_matmul;
mod cube_rows;
mod dropout;
mod embedding;
#[cfg(not(target_arch = "wasm32"))]
mod flex_attention;
#[cfg(not(target_arch = "wasm32"))]
mod flex_exact;
#[cfg(not(target_arch = "wasm32"))]
mod flex_linear;
mod gelu;
mod mlm;
mod mpnet;
mod pooling;
#[cfg(not(target_arch = "wasm32"))]
mod tracked;

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Bool, Device, Int, Tensor};

pub use bert::{BertEncoder, BertLayer, BertModel};
pub use cross_encoder::{CrossEncoderModel, Pooler};
pub use dropout::{dropout, seed_dropout};
pub use embedding::BertEmbeddings;
pub use gelu::gelu;
pub use mlm::{BertForMaskedLm, MlmHead};
pub use mpnet::{MPNetEmbeddings, MPNetEncoder, MPNetLayer, MPNetModel, relative_position_bucket};
pub use pooling::{l2_normalize, pool};

use crate::config::{Architecture, BertConfig};

/// Scaled dot-product attention over `[b, heads, s, d]`, `mask` true where a key is padding:
/// burn's, except on flex, where [`flex_attention::attention`] (inference) and
/// [`tracked::attention`] (training) give the same bits faster, and on the wgpu device with
/// [`cube_matmul::use_register_blocks`] on.
fn attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, mask: Tensor<4, Bool>, bias: Option<Tensor<4>>) -> Tensor<4> {
    if let Some(context) = cube_matmul::attention(&q, &k, &v, &mask, bias.as_ref()) {
        return context;
    }
    #[cfg(not(target_arch = "wasm32"))]
    if q.device() == Device::flex()
        && let Some(context) = flex_inference_attention(&q, &k, &v, &mask, bias.as_ref())
    {
        return context;
    }
    #[cfg(not(target_arch = "wasm32"))]
    return tracked::attention(q, k, v, Some(mask), bias);
    #[cfg(target_arch = "wasm32")]
    burn::tensor::module::attention(q, k, v, Some(mask), bias, burn::tensor::ops::AttentionModuleOptions::default())
}

/// [`flex_attention::attention`] on the tensors' flex primitives; `None` where it declines.
#[cfg(not(target_arch = "wasm32"))]
fn flex_inference_attention(
    q: &Tensor<4>,
    k: &Tensor<4>,
    v: &Tensor<4>,
    mask: &Tensor<4, Bool>,
    bias: Option<&Tensor<4>>,
) -> Option<Tensor<4>> {
    use burn::backend::Flex;
    let flex = |t: &Tensor<4>| t.clone().try_into_primitive::<Flex>().ok();
    let bias = match bias {
        Some(b) => Some(flex(b)?),
        None => None,
    };
    let mask = mask.clone().try_into_primitive::<Flex>().ok()?;
    let context = flex_attention::attention(&flex(q)?, &flex(k)?, &flex(v)?, Some(&mask), bias.as_ref())?;
    Some(Tensor::from_primitive::<Flex>(context))
}

/// `layer.forward(x)`: burn's, except on flex, where [`flex_linear::linear`] (inference) and
/// [`tracked::linear`] (training) give the same bits with one allocation of each product instead
/// of two and a copy, and on the wgpu device with [`cube_matmul::use_register_blocks`] on.
pub fn apply_linear<const D: usize>(layer: &Linear, x: Tensor<D>) -> Tensor<D> {
    if let Some(y) = cube_matmul::linear(layer, &x) {
        return y;
    }
    #[cfg(not(target_arch = "wasm32"))]
    if x.device() == Device::flex()
        && let Some(y) = flex_inference_linear(layer, &x)
    {
        return y;
    }
    #[cfg(not(target_arch = "wasm32"))]
    if let Some(y) = tracked::linear(layer, &x) {
        return y;
    }
    layer.forward(x)
}

/// [`flex_linear::linear`] on the flex primitives; `None` where it declines.
#[cfg(not(target_arch = "wasm32"))]
fn flex_inference_linear<const D: usize>(layer: &Linear, x: &Tensor<D>) -> Option<Tensor<D>> {
    use burn::backend::Flex;
    let x = x.clone().try_into_primitive::<Flex>().ok()?;
    let weight = layer.weight.val().try_into_primitive::<Flex>().ok()?;
    let bias = match &layer.bias {
        Some(b) => Some(b.val().try_into_primitive::<Flex>().ok()?),
        None => None,
    };
    Some(Tensor::from_primitive::<Flex>(flex_linear::linear(&x, &weight, bias.as_ref())?))
}

/// A text encoder of either family, chosen by `config.json`'s `model_type`.
#[derive(Module, Debug)]
pub enum Transformer {
    Bert(BertModel),
    MPNet(MPNetModel),
}

impl Transformer {
    /// A randomly initialised model of the config's family and shape.
    pub fn new(config: &BertConfig, device: &Device) -> Self {
        match config.architecture() {
            Architecture::Bert => Transformer::Bert(BertModel::new(config, device)),
            Architecture::MPNet => Transformer::MPNet(MPNetModel::new(config, device)),
        }
    }

    /// `input_ids`, `token_type_ids`: `[b, s]` (MPNet has no token types and ignores them);
    /// `padding`: `[b, s]`, true at padding. Returns the last layer's token vectors.
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        padding: Tensor<2, Bool>,
    ) -> Tensor<3> {
        match self {
            Transformer::Bert(m) => m.forward(input_ids, token_type_ids, padding),
            Transformer::MPNet(m) => m.forward(input_ids, padding),
        }
    }

    /// Keeps the first `k` layers.
    pub fn truncate_layers(self, k: usize) -> Self {
        match self {
            Transformer::Bert(m) => Transformer::Bert(m.truncate_layers(k)),
            Transformer::MPNet(m) => Transformer::MPNet(m.truncate_layers(k)),
        }
    }

    /// The BERT model, if this is one (saving students takes BERT only).
    pub fn bert(&self) -> Option<&BertModel> {
        match self {
            Transformer::Bert(m) => Some(m),
            Transformer::MPNet(_) => None,
        }
    }

    /// The BERT model, if this is one (training and saving students take BERT only).
    pub fn into_bert(self) -> Option<BertModel> {
        match self {
            Transformer::Bert(m) => Some(m),
            Transformer::MPNet(_) => None,
        }
    }
}
