//! The field's baselines for spurious-correlation mitigation, as pure library functions that the pipeline's stages
//! call: JTT (Liu et al. 2021), DFR on validation (Kirichenko et al. 2023), online group DRO (Sagawa et al. 2020)
//! and MaskTune (Asgari et al. 2022). Each module's header names its paper and reference implementation, the
//! paper's defaults and what we follow. None of them reads a config, a run directory or the pipeline: they take
//! plain parameter structs, tensors and label/group vectors (groups g = 2*y + place, see [`crate::data`]).
pub mod dfr;
pub mod groupdro;
pub mod jtt;
pub mod masktune;
