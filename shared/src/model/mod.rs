//! BERT as in Hugging Face `BertModel`, in burn. Field names follow the Hugging Face tensor names
//! so that loading is a fixed renaming (see [`crate::loader`]).

mod bert;
mod cross_encoder;
mod embedding;
mod pooling;

pub use bert::{BertEncoder, BertLayer, BertModel};
pub use cross_encoder::{CrossEncoderModel, Pooler};
pub use embedding::BertEmbeddings;
pub use pooling::{l2_normalize, pool};
