//! The explanation side of TExplain (paper sections 2 and 4.3): language-model and translator training,
//! batched nucleus sampling, word-targeted GradCAM, and the sampled sentences' file format.
pub mod gradcam;
pub mod lm;
pub mod sample;
pub mod sentences;
