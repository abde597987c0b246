//! The explanation side of TExplain (paper sections 2 and 4.3): language-model and translator training,
//! batched nucleus sampling, and word-targeted GradCAM.
pub mod gradcam;
pub mod lm;
pub mod sample;
