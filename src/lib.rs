//! texplain: explain what a frozen image classifier has learned in words, and use those words to find and undo
//! spurious correlations (TExplain, "Learned visual features to textual explanations").
//!
//! The library holds everything; `src/main.rs` is a thin binary over [`cli`].
//!
//! Modules by layer; imports flow one way, downwards in this list:
//! - utilities: [`util`] (atomic writes, hashing), [`runtime`] (seeds, threads, device), [`precision`] (bf16
//!   mixed precision), [`progress`];
//! - data, text, models: [`data`], [`text`], [`models`], with the pure [`metrics`] and [`stats`];
//! - method code: [`train`], [`pretrain`], [`explain`], [`relevance`], [`flags`], [`methods`], [`faithfulness`],
//!   [`in9`] (the ImageNet-9 / Background Challenge analysis), [`report`], [`reference`], [`bench`];
//! - [`config`]: the YAML schema, loading and validation;
//! - [`pipeline`]: `texplain run`, one module per stage;
//! - [`cli`]: the command line.
pub mod precision;
pub mod progress;
pub mod runtime;
pub mod util;

pub mod data;
pub mod metrics;
pub mod models;
pub mod stats;
pub mod text;

pub mod bench;
pub mod explain;
pub mod faithfulness;
pub mod flags;
pub mod in9;
pub mod methods;
pub mod pretrain;
pub mod reference;
pub mod relevance;
pub mod report;
pub mod train;

pub mod config;

pub mod pipeline;

pub mod cli;
