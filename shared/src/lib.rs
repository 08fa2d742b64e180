//! adam-core: the library behind the `adam` CLI and the browser demo.
//!
//! - [`model`]: BERT as in Hugging Face `BertModel`, loaded from a model folder ([`loader`]).
//! - [`tokenize`]: `tokenizers` wrapper with truncation, batch padding and sentence pairs.
//! - [`encoder`]: a dual-encoder (sentence-transformers style) that embeds texts.
//! - [`data`]: BEIR and MS MARCO files, TREC run files, qrels, mined negatives.
//! - [`metrics`]: trec_eval-compatible retrieval measures.
//! - [`save`]: model folders in the Hugging Face layouts, as bytes (and atomically on disk).
//! - [`teaching`]: a generated retrieval world for teaching (seeded, byte-identical).
//! - [`wordpiece`]: trains a BERT-style WordPiece `tokenizer.json` (for the teaching set).
//! - [`softlabels`]: the teacher's and the student's soft labels over a query's candidates
//!   (with dark examples), their entropies and KL, shared by `adam soft-labels` and the demo.
//! - [`demo`]: the asset files `adam export-web` writes and the browser demo reads.
//!
//! Everything here compiles for `wasm32-unknown-unknown`: no threads, and file access only
//! through functions that also have an in-memory (`&[u8]`/`&str`) twin.

pub mod config;
pub mod dark;
pub mod data;
pub mod demo;
pub mod encoder;
pub mod error;
pub mod loader;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod save;
pub mod selfpaced;
mod simd;
pub mod softlabels;
pub mod teaching;
pub mod tokenize;
pub mod wordpiece;

pub use error::{Error, Result};
