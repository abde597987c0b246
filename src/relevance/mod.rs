//! Relevance maps for a frozen ViT (paper section 4.3: where the spurious region is) and the quality of the masks
//! made from them against the true bird masks.
//!
//! Every method explains "a scalar score per image that is a differentiable function of the ViT's activations"
//! ([`ScoreFn`]): the caller plugs in the word-targeted score of TExplain (the log-probability of the target word
//! under the frozen LM given the translator's prefix, [`word::word_score`]) or a class logit (MaskTune,
//! [`maps::class_logit_score`]).
//!
//! * [`gradcam`]: GradCAM at any encoder layer (Selvaraju et al. 2017; the token form of pytorch-grad-cam's ViT
//!   recipe), the score still flowing through the rest of the encoder;
//! * [`rollout`]: gradient-weighted attention rollout, the generic rule of Chefer, Gur & Wolf (ICCV 2021;
//!   hila-chefer/Transformer-MM-Explainability, also used for ViTs in Transformer-Explainability, CVPR 2021);
//! * [`occlusion`]: the score drop when patches are replaced by the masking fill (slow reference, Zeiler &
//!   Fergus 2014);
//! * [`value_paths`]: the CLS reader on value paths, each patch's value path into the CLS token scored through the
//!   translator's CLS slot (Gandelsman, Efros & Steinhardt 2023; MaskCLIP, Zhou et al. 2022);
//! * [`maps::contrastive`]: one map minus another, clipped at 0 (target word against class word);
//! * [`threshold`]: maps to masks (MaskTune's mean + k std, quantile, top-k %, Otsu);
//! * [`quality`]: threshold-free mask quality against the true bird masks (AUROC, IoU at matched coverage,
//!   pointing game) beside a random map and the oracle;
//! * [`sanity`]: the rank correlation of the randomisation sanity check (Adebayo et al. 2018) and the target
//!   word's probability per background;
//! * [`contribution`]: the exact per-slot contribution ⟨∂s/∂A_i, A_i⟩ at the translator's layer (signed,
//!   min-max per image; the CLS slot's share reported);
//! * [`complement`]: the object complement, 1 − the classifier's rollout of its predicted class (a labelled
//!   non-word baseline);
//! * [`attribute`]: the word score that reads the place (log-odds of the target concept's words against the
//!   competing place words), beside the literal-token score;
//! * [`method`]: which of these a config names ([`RelevanceSpec`]);
//! * [`word`]: TExplain's word-targeted score and the map of any method for it ([`word::WordRelevance`]);
//! * [`mask`]: masks applied to images (MaskTune's zero fill), overlays.
//!
//! Every map is returned at patch resolution `[b, p]` and at pixel resolution `[b, 1, H, W]`, each in [0, 1]
//! ([`RelevanceMaps`]). This module takes plain parameters; it reads no experiment config.
pub mod attribute;
pub mod complement;
pub mod contribution;
pub mod gradcam;
pub mod maps;
pub mod mask;
pub mod method;
pub mod occlusion;
pub mod quality;
pub mod rollout;
pub mod sanity;
pub mod threshold;
pub mod value_paths;
pub mod word;

pub use maps::{RelevanceMaps, ScoreFn};
pub use method::{RelevanceMethod, RelevanceSpec};
pub use threshold::Threshold;
