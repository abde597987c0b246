//! The mitigation methods a run can report (paper section 4.3, Table 1), as one closed set ([`Method`]) that the
//! pipeline dispatches on: which fine-tune the ERM model on a masked selection ([`MaskedFinetune`]: which samples,
//! masked where), what each needs from the run (explanations, masks), which group labels it reads ([`GroupLabels`];
//! tables mark the methods that train on them) and the Table-1 order. Adding a method means adding a variant here;
//! the compiler then finds every place that must handle it.
//!
//! The field's baselines live in the submodules as pure library functions that the pipeline's stages call: JTT
//! (Liu et al. 2021), DFR on validation (Kirichenko et al. 2023), online group DRO (Sagawa et al. 2020) and
//! MaskTune (Asgari et al. 2022). Each module's header names its paper and reference implementation, the paper's
//! defaults and what we follow. None of them reads a config, a run directory or the pipeline: they take plain
//! parameter structs, tensors and label/group vectors (groups g = 2*y + place, see [`crate::data`]).
pub mod arms;
pub mod dfr;
pub mod groupdro;
pub mod jtt;
pub mod masktune;

use serde::{Deserialize, Serialize};
use std::fmt;

/// A method of `mitigation.methods` (YAML: lower case). Declaration order is the Table-1 order: the paper's
/// methods, then the field's baselines.
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
    /// Random's selection (the same draw as [`Method::Random`]) masked with the true background: the oracle
    /// without TExplain's selection, so oracle − oracle_random is what the selection adds.
    #[serde(rename = "oracle_random")]
    OracleRandom,
    /// TExplain's selection masked with the centre prior at each sample's TExplain coverage (the pixels farthest
    /// from the image centre): the masks of position alone, so TExplain − frame is what the word map adds.
    Frame,
    /// TExplain's selection masked by 1 − the classifier's gradient-weighted rollout of its class logit (Chefer et
    /// al. 2021), thresholded as TExplain's masks: a non-word mask of everything but the object.
    #[serde(rename = "object_complement")]
    ObjectComplement,
    /// TExplain's selection masked with the spurious object's true mask (needs the data's object masks).
    #[serde(rename = "oracle_object")]
    OracleObject,
    /// TExplain's selection, the spurious object's true mask where a sample carries it and a carrying sample's
    /// object mask where it does not, so that the mask itself says nothing about the class (needs the data's object
    /// masks): oracle_object_balanced − oracle_object is what the mask's own correlation with the label costs.
    #[serde(rename = "oracle_object_balanced")]
    OracleObjectBalanced,
    /// TExplain with its masks lent as the balanced object oracle lends the true ones: a flagged sample whose target
    /// is the run's spurious word ([`arms::spurious_word`]) keeps its own word mask, every other flagged sample takes
    /// the mask of one that targets it, in turn ([`arms::lend_masks`]).
    #[serde(rename = "texplain_lent")]
    TexplainLent,
    /// Random's selection with its masks lent as [`Method::TexplainLent`]'s: texplain_lent − random_lent is what the
    /// selection adds once the masks are lent.
    #[serde(rename = "random_lent")]
    RandomLent,
    /// MaskTune (Asgari et al. 2022): every training image masked where the ERM model's predicted-class GradCAM is
    /// high, one epoch of fine-tuning ([`masktune`]).
    Masktune,
    /// Just Train Twice (Liu et al. 2021): the errors of an early-stopped ERM model upsampled, a model trained anew
    /// ([`jtt`]).
    Jtt,
    /// Deep feature reweighting on validation (Kirichenko et al. 2023): the last layer retrained on group-balanced
    /// validation features ([`dfr`]).
    Dfr,
    /// Online group DRO (Sagawa et al. 2020) with the training split's group labels ([`groupdro`]).
    Groupdro,
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
    /// The centre prior's farthest pixels, as many per sample as its relevance mask covers.
    CentrePrior,
    /// 1 − the classifier's gradient-weighted rollout of its class logit, thresholded by the masks' rule.
    ObjectComplement,
    /// The spurious object's true mask (the data's `object_masks/`).
    TrueObject,
    /// The spurious object's true mask, and on a selected sample without the object a carrying sample's mask.
    TrueObjectBalanced,
    /// The relevance masks of the selected samples that target the run's spurious word, lent in turn to the others.
    RelevanceLent,
}

impl MaskSource {
    /// The name of the masks in a fine-tuning stage's `masks.json` (`relevance`).
    pub fn name(self) -> &'static str {
        match self {
            MaskSource::Relevance => "relevance",
            MaskSource::TrueBackground => "true_background",
            MaskSource::CentrePrior => "centre_prior",
            MaskSource::ObjectComplement => "object_complement",
            MaskSource::TrueObject => "true_object",
            MaskSource::TrueObjectBalanced => "true_object_balanced",
            MaskSource::RelevanceLent => "relevance_lent",
        }
    }
}

/// How a method fine-tunes the ERM model on a selection of training samples, each masked (Random, TExplain,
/// oracle): the methods the pipeline runs after the explanation stages. ERM and each baseline are a procedure of
/// their own, which the pipeline dispatches on the [`Method`] itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskedFinetune {
    pub selection: SampleSelection,
    pub masks: MaskSource,
}

/// Which group labels (g = 2y + place) a method reads beyond the test split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupLabels {
    /// Validation groups for model selection only (worst-group validation accuracy), as every method here does.
    Selection,
    /// The training split's groups, in the training objective or sampler.
    Train,
    /// The validation split's groups, as training data (its half-splits and balanced subsamples).
    Val,
}

impl Method {
    /// Every method, in the Table-1 order.
    pub const ALL: [Method; 15] = [
        Method::Erm,
        Method::Random,
        Method::Texplain,
        Method::Oracle,
        Method::OracleRandom,
        Method::Frame,
        Method::ObjectComplement,
        Method::OracleObject,
        Method::OracleObjectBalanced,
        Method::TexplainLent,
        Method::RandomLent,
        Method::Masktune,
        Method::Jtt,
        Method::Dfr,
        Method::Groupdro,
    ];

    /// The name used in YAML, folder names and `results.csv`.
    pub fn name(self) -> &'static str {
        match self {
            Method::Erm => "erm",
            Method::Random => "random",
            Method::Texplain => "texplain",
            Method::Oracle => "oracle",
            Method::OracleRandom => "oracle_random",
            Method::Frame => "frame",
            Method::ObjectComplement => "object_complement",
            Method::OracleObject => "oracle_object",
            Method::OracleObjectBalanced => "oracle_object_balanced",
            Method::TexplainLent => "texplain_lent",
            Method::RandomLent => "random_lent",
            Method::Masktune => "masktune",
            Method::Jtt => "jtt",
            Method::Dfr => "dfr",
            Method::Groupdro => "groupdro",
        }
    }

    /// Case-insensitive inverse of [`Method::name`]; `None` for a name this version does not know (a results file
    /// from another version may hold one).
    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name.trim()))
    }

    /// How the method fine-tunes on a masked selection; `None` for ERM and the baselines (MaskTune masks every
    /// training image, without a selection).
    pub fn masked_finetune(self) -> Option<MaskedFinetune> {
        let (selection, masks) = match self {
            Method::Random => (SampleSelection::Random, MaskSource::Relevance),
            Method::Texplain => (SampleSelection::Flagged, MaskSource::Relevance),
            Method::Oracle => (SampleSelection::Flagged, MaskSource::TrueBackground),
            Method::OracleRandom => (SampleSelection::Random, MaskSource::TrueBackground),
            Method::Frame => (SampleSelection::Flagged, MaskSource::CentrePrior),
            Method::ObjectComplement => (SampleSelection::Flagged, MaskSource::ObjectComplement),
            Method::OracleObject => (SampleSelection::Flagged, MaskSource::TrueObject),
            Method::OracleObjectBalanced => {
                (SampleSelection::Flagged, MaskSource::TrueObjectBalanced)
            }
            Method::TexplainLent => (SampleSelection::Flagged, MaskSource::RelevanceLent),
            Method::RandomLent => (SampleSelection::Random, MaskSource::RelevanceLent),
            Method::Erm | Method::Masktune | Method::Jtt | Method::Dfr | Method::Groupdro => {
                return None
            }
        };
        Some(MaskedFinetune { selection, masks })
    }

    /// The group labels the method reads besides model selection.
    pub fn group_labels(self) -> GroupLabels {
        match self {
            Method::Groupdro => GroupLabels::Train,
            Method::Dfr => GroupLabels::Val,
            Method::Erm
            | Method::Random
            | Method::Texplain
            | Method::Oracle
            | Method::OracleRandom
            | Method::Frame
            | Method::ObjectComplement
            | Method::OracleObject
            | Method::OracleObjectBalanced
            | Method::TexplainLent
            | Method::RandomLent
            | Method::Masktune
            | Method::Jtt => GroupLabels::Selection,
        }
    }

    /// Whether the method trains on group labels (not only selects a model with them): tables mark it, since it
    /// knows what the others have to find.
    pub fn trains_on_group_labels(self) -> bool {
        self.group_labels() != GroupLabels::Selection
    }

    /// The samples the method fine-tunes on, for the methods that fine-tune a selection; `None` for the others.
    pub fn selection(self) -> Option<SampleSelection> {
        self.masked_finetune().map(|m| m.selection)
    }

    /// Where the method's masks of a selection come from; `None` for methods without a selection.
    pub fn mask_source(self) -> Option<MaskSource> {
        self.masked_finetune().map(|m| m.masks)
    }

    /// Whether the method needs the run's explanations (the LM, translator, explain and flags stages).
    pub fn needs_explanations(self) -> bool {
        self.selection().is_some()
    }

    /// Whether the method needs the data's true bird masks (`fg_masks/`).
    pub fn needs_true_masks(self) -> bool {
        self.mask_source() == Some(MaskSource::TrueBackground)
    }

    /// Whether the method needs the data's true masks of the spurious object (`object_masks/`).
    pub fn needs_object_masks(self) -> bool {
        matches!(
            self.mask_source(),
            Some(MaskSource::TrueObject | MaskSource::TrueObjectBalanced)
        )
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
        assert_eq!(Method::from_name("GroupDRO"), Some(Method::Groupdro));
        assert_eq!(
            Method::from_name("Oracle_Random"),
            Some(Method::OracleRandom)
        );
        let mut names = vec![
            "zeta",
            "groupdro",
            "oracle_object",
            "oracle_object_balanced",
            "oracle",
            "jtt",
            "frame",
            "texplain",
            "erm",
            "object_complement",
            "dfr",
            "alpha",
            "masktune",
            "oracle_random",
            "random",
        ];
        names.sort_by(|a, b| table_order(a, b));
        assert_eq!(
            names,
            [
                "erm",
                "random",
                "texplain",
                "oracle",
                "oracle_random",
                "frame",
                "object_complement",
                "oracle_object",
                "oracle_object_balanced",
                "masktune",
                "jtt",
                "dfr",
                "groupdro",
                "alpha",
                "zeta"
            ]
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

    /// The dispatch table, one row per method: masked fine-tuning (selection and masks), explanations, group
    /// labels.
    #[test]
    fn dispatch_table() {
        use MaskSource::*;
        use SampleSelection::*;
        let masked = |selection, masks| Some(MaskedFinetune { selection, masks });
        let table = [
            (Method::Erm, None, false, GroupLabels::Selection),
            (
                Method::Random,
                masked(Random, Relevance),
                true,
                GroupLabels::Selection,
            ),
            (
                Method::Texplain,
                masked(Flagged, Relevance),
                true,
                GroupLabels::Selection,
            ),
            (
                Method::Oracle,
                masked(Flagged, TrueBackground),
                true,
                GroupLabels::Selection,
            ),
            (
                Method::OracleRandom,
                masked(Random, TrueBackground),
                true,
                GroupLabels::Selection,
            ),
            (
                Method::Frame,
                masked(Flagged, CentrePrior),
                true,
                GroupLabels::Selection,
            ),
            (
                Method::ObjectComplement,
                masked(Flagged, MaskSource::ObjectComplement),
                true,
                GroupLabels::Selection,
            ),
            (
                Method::OracleObject,
                masked(Flagged, TrueObject),
                true,
                GroupLabels::Selection,
            ),
            (
                Method::OracleObjectBalanced,
                masked(Flagged, MaskSource::TrueObjectBalanced),
                true,
                GroupLabels::Selection,
            ),
            (
                Method::TexplainLent,
                masked(Flagged, RelevanceLent),
                true,
                GroupLabels::Selection,
            ),
            (
                Method::RandomLent,
                masked(Random, RelevanceLent),
                true,
                GroupLabels::Selection,
            ),
            (Method::Masktune, None, false, GroupLabels::Selection),
            (Method::Jtt, None, false, GroupLabels::Selection),
            (Method::Dfr, None, false, GroupLabels::Val),
            (Method::Groupdro, None, false, GroupLabels::Train),
        ];
        assert_eq!(table.len(), Method::ALL.len());
        for (i, (m, masked, explains, groups)) in table.into_iter().enumerate() {
            assert_eq!(Method::ALL[i], m, "the table follows the Table-1 order");
            assert_eq!(m.masked_finetune(), masked, "{m}");
            assert_eq!(m.selection(), masked.map(|f| f.selection), "{m}");
            assert_eq!(m.mask_source(), masked.map(|f| f.masks), "{m}");
            assert_eq!(m.needs_explanations(), explains, "{m}");
            assert_eq!(m.group_labels(), groups, "{m}");
            assert_eq!(
                m.trains_on_group_labels(),
                matches!(m, Method::Dfr | Method::Groupdro),
                "{m}"
            );
            assert_eq!(
                m.needs_true_masks(),
                matches!(m, Method::Oracle | Method::OracleRandom),
                "{m}"
            );
            assert_eq!(
                m.needs_object_masks(),
                matches!(m, Method::OracleObject | Method::OracleObjectBalanced),
                "{m}"
            );
        }
    }
}
