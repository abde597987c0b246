//! The explanation side of TExplain (paper section 2): the frozen language model and the trainings around it
//! (LM pretraining, the translator), batched nucleus sampling, and explaining images in sentences.
pub mod describe;
pub mod lm;
pub mod sample;
