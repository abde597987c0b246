//! The mitigation methods a run can report (paper section 4.3, Table 1), as one closed set ([`Method`]): what
//! each method needs from the run (explanations, a selection of training samples, masks) and the Table-1 order.
//! Adding a method means adding a variant here; the compiler then finds every place that must handle it.
//!
//! The field's baselines live in the submodules as pure library functions that the pipeline's stages call: JTT
//! (Liu et al. 2021), DFR on validation (Kirichenko et al. 2023), online group DRO (Sagawa et al. 2020) and
//! MaskTune (Asgari et al. 2022). Each module's header names its paper and reference implementation, the paper's
//! defaults and what we follow. None of them reads a config, a run directory or the pipeline: they take plain
//! parameter structs, tensors and label/group vectors (groups g = 2*y + place, see [`crate::data`]).
pub mod dfr;
pub mod groupdro;
pub mod jtt;
pub mod masktune;

use serde::{Deserialize, Serialize};
use std::fmt;

/// A method of `mitigation.methods` (YAML: lower case). Declaration order is the Table-1 order.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Empirical risk minimisation on the (spuriously correlated) training set: every other method starts here.
    Erm,
    /// As many training samples as TExplain flags, drawn at random, masked the same way (the paper's baseline).
    Random,
    /// The flagged samples (top word is not a class word), masked where their target word points.
    Texplain,
    /// TExplain's selection masked with the true background (needs the data's bird masks): the masks' ceiling.
    Oracle,
}

/// Which training samples a fine-tuning method is fine-tuned on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleSelection {
    /// The samples whose explanation's top word is not a class word.
    Flagged,
    /// As many samples as are flagged, drawn uniformly at random.
    Random,
}

/// Where the masked region of a selected sample comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskSource {
    /// The word-targeted relevance map of the masks stage.
    Relevance,
    /// The true background (the complement of the data's bird mask).
    TrueBackground,
}

impl Method {
    /// Every method, in the Table-1 order.
    pub const ALL: [Method; 4] = [
        Method::Erm,
        Method::Random,
        Method::Texplain,
        Method::Oracle,
    ];

    /// The name used in YAML, folder names and `results.csv`.
    pub fn name(self) -> &'static str {
        match self {
            Method::Erm => "erm",
            Method::Random => "random",
            Method::Texplain => "texplain",
            Method::Oracle => "oracle",
        }
    }

    /// Case-insensitive inverse of [`Method::name`]; `None` for a name this version does not know (a results file
    /// from another version may hold one).
    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The samples the method fine-tunes on; `None` for ERM, which trains on the whole training set.
    pub fn selection(self) -> Option<SampleSelection> {
        match self {
            Method::Erm => None,
            Method::Random => Some(SampleSelection::Random),
            Method::Texplain | Method::Oracle => Some(SampleSelection::Flagged),
        }
    }

    /// Where the method's masks come from; `None` for ERM.
    pub fn mask_source(self) -> Option<MaskSource> {
        match self {
            Method::Erm => None,
            Method::Random | Method::Texplain => Some(MaskSource::Relevance),
            Method::Oracle => Some(MaskSource::TrueBackground),
        }
    }

    /// Whether the method needs the run's explanations (the LM, translator, explain and flags stages).
    pub fn needs_explanations(self) -> bool {
        self.selection().is_some()
    }

    /// Whether the method needs the data's true bird masks (`fg_masks/`).
    pub fn needs_true_masks(self) -> bool {
        self.mask_source() == Some(MaskSource::TrueBackground)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Table order of two method names as found in results files: known methods in the Table-1 order, then unknown
/// names alphabetically.
pub fn table_order(a: &str, b: &str) -> std::cmp::Ordering {
    let rank = |m: &str| Method::from_name(m).map_or(Method::ALL.len(), |m| m as usize);
    rank(a).cmp(&rank(b)).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order_follows_table_one() {
        for m in Method::ALL {
            assert_eq!(Method::from_name(m.name()), Some(m));
            let yaml = serde_yaml::to_string(&m).unwrap();
            assert_eq!(yaml.trim(), m.name());
        }
        assert_eq!(Method::from_name("TExplain"), Some(Method::Texplain));
        assert_eq!(Method::from_name("jtt-v9"), None);
        let mut names = vec!["zeta", "oracle", "texplain", "erm", "alpha", "random"];
        names.sort_by(|a, b| table_order(a, b));
        assert_eq!(
            names,
            ["erm", "random", "texplain", "oracle", "alpha", "zeta"]
        );
    }

    #[test]
    fn what_each_method_needs() {
        assert!(!Method::Erm.needs_explanations());
        assert!(Method::Random.needs_explanations());
        assert!(Method::Oracle.needs_true_masks());
        assert!(!Method::Texplain.needs_true_masks());
        assert_eq!(Method::Random.selection(), Some(SampleSelection::Random));
    }
}
