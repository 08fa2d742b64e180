//! One module per `adam` command: its arguments and its `run`. Commands share code through the
//! library modules beside `commands`, never by importing one another.

pub mod bench;
pub mod bench_index;
pub mod bench_train;
pub mod demo;
pub mod distill;
pub mod embed;
pub mod eval;
pub mod export_web;
pub mod index;
pub mod negatives;
pub mod report;
pub mod soft_labels;
pub mod teacher;
pub mod teaching_set;
