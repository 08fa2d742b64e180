//! `adam`: distil a cross-encoder into a dual-encoder retriever (ADAM, Tao et al. 2022).
//!
//! The library behind the `adam` command line. [`cli`] parses the arguments and runs a command,
//! [`commands`] holds one module per command, and the other modules are what commands share:
//! data ([`dataset`], [`instances`], [`io`], [`score_cache`], [`shard`]), models ([`models`],
//! [`teacher_model`], [`backend`]), training ([`train_loop`], [`optim`], [`checkpoint`], [`data_parallel`],
//! [`distillation`], [`distill_config`]), retrieval and reports ([`retrieval`], [`embed_cache`],
//! [`vector_index`], [`bm25`], [`report`], [`svg`]), and what a command shows while it runs ([`progress`],
//! [`memory`]).

pub mod backend;
pub mod bm25;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod corpus_texts;
pub mod data_parallel;
pub mod dataset;
pub mod distill_config;
pub mod distillation;
pub mod embed_cache;
pub mod fused_adamw;
pub mod instances;
pub mod io;
pub mod memory;
pub mod models;
pub mod optim;
pub mod progress;
pub mod reading;
pub mod report;
pub mod retrieval;
pub mod score_cache;
pub mod shard;
pub mod svg;
pub mod teacher_model;
pub mod train_loop;
pub mod vector_index;
pub mod workers;
