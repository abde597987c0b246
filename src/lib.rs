//! texplain: explain what a frozen image classifier has learned in words, and use those words to find and undo
//! spurious correlations (TExplain, "Learned visual features to textual explanations").
//!
//! The library holds everything; `src/main.rs` is a thin clap binary over [`cli`].
pub mod bench;
pub mod cli;
pub mod config;
pub mod data;
pub mod explain;
pub mod faithfulness;
pub mod methods;
pub mod metrics;
pub mod models;
pub mod pipeline;
pub mod progress;
pub mod report;
pub mod rundir;
pub mod runtime;
pub mod stats;
pub mod text;
pub mod train;
