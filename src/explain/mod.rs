//! The explanation side of TExplain (paper section 2): the frozen language model and the trainings around it
//! (LM pretraining, the translator), batched nucleus sampling, explaining images in sentences, the sampled
//! sentences' file format, and their dominant words per image and per class.
pub mod describe;
pub mod lm;
pub mod sample;
pub mod sentences;
pub mod words;
