//! `adam`: distil a cross-encoder into a dual-encoder retriever (ADAM, Tao et al. 2022).
//! `retrieval` is used by `distill` (dev evaluation).

pub mod backend;
pub mod bm25;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod dataset;
pub mod distill_config;
pub mod distillation;
pub mod embed_cache;
pub mod instances;
pub mod io;
pub mod memory;
pub mod models;
pub mod optim;
pub mod progress;
pub mod report;
pub mod retrieval;
pub mod score_cache;
pub mod svg;
pub mod teacher_model;
pub mod train_loop;
