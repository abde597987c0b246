//! Relevance maps: where in an image a score comes from (paper section 4.3, word-targeted GradCAM), the
//! thresholds that turn a map into the mask of the spurious region, and mask application.
pub mod gradcam;
pub mod word;
