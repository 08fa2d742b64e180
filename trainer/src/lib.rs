//! `adam`: distil a cross-encoder into a dual-encoder retriever (ADAM, Tao et al. 2022).
//! `retrieval` is used by `distill` (dev evaluation).

pub mod backend;
pub mod bench;
pub mod bench_train;
pub mod bm25;
pub mod checkpoint;
pub mod cli;
pub mod dataset;
pub mod demo;
pub mod distill;
pub mod distill_config;
pub mod embed;
pub mod embed_cache;
pub mod eval;
pub mod export_web;
pub mod instances;
pub mod io;
pub mod memory;
pub mod models;
pub mod negatives;
pub mod optim;
pub mod progress;
pub mod report;
pub mod retrieval;
pub mod score_cache;
pub mod soft_labels;
pub mod svg;
pub mod teacher;
pub mod teacher_inspect;
pub mod teacher_model;
pub mod teaching;
