//! The explanation side of TExplain (paper section 2): the frozen language model and the trainings around it
//! (LM pretraining, the translator), batched nucleus sampling, explaining images in sentences, and the sampled
//! sentences' file format.
pub mod describe;
pub mod lm;
pub mod sample;
pub mod sentences;
