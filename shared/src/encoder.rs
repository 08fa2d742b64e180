//! The two kinds of model ADAM uses: a dual encoder in the sentence-transformers sense (text →
//! BERT → pooling → (L2 norm) → vector), the student; and a cross-encoder that scores a
//! (query, passage) pair, the teacher.

use burn::tensor::{Device, Tensor};

use crate::Result;
use crate::loader::{
    CrossEncoderOptions, LoadOptions, LoadedCrossEncoder, LoadedModel, ModelSource, load_cross_encoder, load_model,
};
use crate::model::{l2_normalize, pool};
use crate::tokenize::TokenBatch;

pub struct SentenceEncoder {
    pub model: LoadedModel,
    pub device: Device,
}

impl SentenceEncoder {
    pub fn load(source: &ModelSource, device: &Device, options: &LoadOptions) -> Result<Self> {
        Ok(Self { model: load_model(source, device, options)?, device: device.clone() })
    }

    pub fn dim(&self) -> usize {
        self.model.config.hidden_size
    }

    /// Text vectors `[batch, hidden]` for a tokenized batch, on the encoder's device.
    pub fn embed_batch(&self, batch: &TokenBatch) -> Tensor<2> {
        let (ids, types, padding) = batch.to_tensors(&self.device);
        let tokens = self.model.transformer.forward(ids, types, padding.clone());
        let pooled = pool(tokens, padding, self.model.sentence.pooling);
        if self.model.sentence.normalize { l2_normalize(pooled) } else { pooled }
    }

    /// Embeds texts as one batch and reads the vectors back (blocking; on the web use
    /// [`Self::embed_batch`] and `into_data_async`).
    #[cfg(not(target_family = "wasm"))]
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let batch = self.model.tokenizer.encode(texts)?;
        let data = self.embed_batch(&batch).into_data();
        let flat: Vec<f32> =
            data.try_into_vec_as::<f32>().map_err(|e| crate::Error::Invalid(format!("reading embeddings: {e:?}")))?;
        Ok(flat.chunks(self.dim()).map(<[f32]>::to_vec).collect())
    }
}

/// A cross-encoder (teacher) that scores (query, passage) pairs.
pub struct CrossEncoder {
    pub model: LoadedCrossEncoder,
    pub device: Device,
}

impl CrossEncoder {
    pub fn load(source: &ModelSource, device: &Device, options: &CrossEncoderOptions) -> Result<Self> {
        Ok(Self { model: load_cross_encoder(source, device, options)?, device: device.clone() })
    }

    /// One score per pair `[batch]` for a batch made by `TextTokenizer::encode_pairs`.
    pub fn score_batch(&self, batch: &TokenBatch) -> Tensor<1> {
        let (ids, types, padding) = batch.to_tensors(&self.device);
        self.model.model.score(ids, types, padding)
    }

    /// Scores pairs as one batch and reads the scores back (blocking).
    #[cfg(not(target_family = "wasm"))]
    pub fn score(&self, pairs: &[(&str, &str)]) -> Result<Vec<f32>> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let batch = self.model.tokenizer.encode_pairs(pairs)?;
        self.score_batch(&batch)
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| crate::Error::Invalid(format!("reading scores: {e:?}")))
    }
}
