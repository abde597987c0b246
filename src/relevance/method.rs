//! Which relevance method maps a sample's target word, as the method code takes it ([`RelevanceSpec`]) and as the
//! YAML names it (`mitigation.masks.method`, `layer`, `contrastive`, `occlusion`, `score`; the config composes
//! the same fields). The methods themselves: [`super::gradcam`], [`super::rollout`], [`super::occlusion`],
//! [`super::contribution`], [`super::complement`], [`super::maps::contrastive`]; the word scores
//! [`super::word::target_log_prob`] and [`super::attribute`]; the word-targeted runner is
//! [`super::word::WordRelevance`].
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::attribute::WordScore;
use super::occlusion::Occlusion;
use super::rollout::Readout;

/// The base relevance method (YAML `method:`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[serde(rename_all = "snake_case")]
pub enum RelevanceMethod {
    /// GradCAM of the word's score at a classifier layer (`layer`; default the translator's).
    #[default]
    Gradcam,
    /// Gradient-weighted attention rollout through the blocks before the translator's layer (Chefer et al. 2021).
    Rollout,
    /// The score's drop when windows of patches are masked (slow reference).
    Occlusion,
    /// The exact per-slot contribution ⟨∂s/∂A_i, A_i⟩ at the translator's layer, signed, min-max per image.
    Contribution,
    /// 1 − the classifier's gradient-weighted rollout of its predicted class logit: a non-word baseline that
    /// ignores the target word.
    ObjectComplement,
    /// The CLS reader on value paths: each patch's value path into the CLS token, scored by the score's gradient at
    /// the CLS slot (Gandelsman et al. 2023, MaskCLIP; [`super::value_paths`]).
    ValuePaths,
}

impl RelevanceMethod {
    pub fn name(self) -> &'static str {
        match self {
            RelevanceMethod::Gradcam => "gradcam",
            RelevanceMethod::Rollout => "rollout",
            RelevanceMethod::Occlusion => "occlusion",
            RelevanceMethod::Contribution => "contribution",
            RelevanceMethod::ObjectComplement => "object_complement",
            RelevanceMethod::ValuePaths => "value_paths",
        }
    }
}

impl std::fmt::Display for RelevanceMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A relevance method with its parameters. In YAML (`texplain masks-eval --relevance`, and the same keys in
/// `mitigation.masks`): `{method: gradcam, layer: 1}`, `{method: rollout, contrastive: true}`,
/// `{method: rollout, readout: tokens}`, `{method: value_paths, readout: tokens}`,
/// `{method: occlusion, occlusion: {window: 2, stride: 1}}`, `{method: contribution, score: attribute}`,
/// `{method: object_complement}`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RelevanceSpec {
    pub method: RelevanceMethod,
    /// GradCAM's layer (HF `hidden_states` index, -1 = `last_hidden_state`); `None`: the layer the translator
    /// reads. Only for `gradcam`.
    pub layer: Option<i64>,
    /// The target word's map minus the class word's, clipped at 0 ([`super::maps::contrastive`]).
    pub contrastive: bool,
    /// Occlusion's windows (default one patch at a time). Only for `occlusion`.
    pub occlusion: Option<Occlusion>,
    /// Which token slots the map explains: `cls` (the default, the references') or `tokens` (every token the score
    /// reads: for rollout weighted by its own relevance, for value_paths read by the score's gradient at that
    /// slot). Only for `rollout` and `value_paths`.
    pub readout: Option<Readout>,
    /// The word score the map differentiates: `literal` (the default) or `attribute`
    /// ([`super::attribute`]). Not for `object_complement`, which reads no word.
    pub score: WordScore,
}

impl RelevanceSpec {
    /// The parameters that belong to another method are an error, naming the field (as `prefix.field`) and value.
    pub fn check(&self, prefix: &str) -> Result<()> {
        if let Some(layer) = self
            .layer
            .filter(|_| self.method != RelevanceMethod::Gradcam)
        {
            bail!(
                "{prefix}layer: {layer} is GradCAM's layer, but {prefix}method is {}",
                self.method
            );
        }
        if let Some(r) = self.readout.filter(|_| {
            !matches!(
                self.method,
                RelevanceMethod::Rollout | RelevanceMethod::ValuePaths
            )
        }) {
            bail!(
                "{prefix}readout: {} is rollout's and value_paths', but {prefix}method is {}",
                serde_json::to_string(&r)
                    .unwrap_or_default()
                    .trim_matches('"'),
                self.method
            );
        }
        if self.method == RelevanceMethod::ObjectComplement {
            if self.contrastive {
                bail!("{prefix}contrastive: true, but {prefix}method object_complement ignores the target word");
            }
            if self.score != WordScore::Literal {
                bail!(
                    "{prefix}score: {} is a word score, but {prefix}method object_complement ignores the target word",
                    self.score.name()
                );
            }
        }
        if let Some(o) = self.occlusion {
            if self.method != RelevanceMethod::Occlusion {
                bail!(
                    "{prefix}occlusion: {{window: {}, stride: {}}} is set, but {prefix}method is {}",
                    o.window,
                    o.stride,
                    self.method
                );
            }
            if o.window < 1 || o.stride < 1 || o.stride > o.window {
                bail!(
                    "{prefix}occlusion: window {} and stride {} must satisfy 1 <= stride <= window",
                    o.window,
                    o.stride
                );
            }
        }
        Ok(())
    }

    /// A short name for tables and file names: `gradcam@-1`, `contrastive(rollout)`, `occlusion(2/1)`,
    /// `attribute(contribution)`;
    /// `score_layer` is the translator's layer (GradCAM's default).
    pub fn name(&self, score_layer: i64) -> String {
        let base = match self.method {
            RelevanceMethod::Gradcam => format!("gradcam@{}", self.layer.unwrap_or(score_layer)),
            RelevanceMethod::Rollout => match self.readout.unwrap_or_default() {
                Readout::Cls => "rollout".to_string(),
                Readout::Tokens => "rollout(tokens)".to_string(),
            },
            RelevanceMethod::Occlusion => {
                let o = self.occlusion.unwrap_or_default();
                format!("occlusion({}/{})", o.window, o.stride)
            }
            RelevanceMethod::Contribution => "contribution".to_string(),
            RelevanceMethod::ObjectComplement => "object_complement".to_string(),
            RelevanceMethod::ValuePaths => match self.readout.unwrap_or_default() {
                Readout::Cls => "value_paths".to_string(),
                Readout::Tokens => "value_paths(tokens)".to_string(),
            },
        };
        let base = match self.score {
            WordScore::Literal => base,
            WordScore::Attribute => format!("attribute({base})"),
        };
        if self.contrastive {
            format!("contrastive({base})")
        } else {
            base
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_spelling_names_and_checks() {
        let parse = |s: &str| serde_yaml::from_str::<RelevanceSpec>(s);
        assert_eq!(parse("{}").unwrap(), RelevanceSpec::default());
        let g = parse("{method: gradcam, layer: 1}").unwrap();
        assert_eq!(g.name(-1), "gradcam@1");
        assert_eq!(RelevanceSpec::default().name(2), "gradcam@2");
        let r = parse("{method: rollout, contrastive: true}").unwrap();
        assert_eq!(r.name(-1), "contrastive(rollout)");
        let o = parse("{method: occlusion, occlusion: {window: 2, stride: 1}}").unwrap();
        assert_eq!(o.name(-1), "occlusion(2/1)");
        assert_eq!(
            parse("{method: occlusion}").unwrap().name(-1),
            "occlusion(1/1)"
        );
        for spec in [g, r, o] {
            spec.check("").unwrap();
        }
        let v = parse("{method: value_paths}").unwrap();
        assert_eq!(v.name(-1), "value_paths");
        v.check("").unwrap();
        let err = parse("{method: value_paths, layer: 3}")
            .unwrap()
            .check("m.")
            .unwrap_err()
            .to_string();
        assert!(err.contains("m.layer: 3"), "{err}");
        let err = parse("{method: lrp}").unwrap_err().to_string();
        assert!(err.contains("lrp"), "{err}");
        assert!(parse("{method: rollout, window: 2}").is_err());
        let t = parse("{method: rollout, readout: tokens}").unwrap();
        assert_eq!(t.name(-1), "rollout(tokens)");
        t.check("").unwrap();
        assert_eq!(
            parse("{method: rollout, readout: cls}").unwrap().name(-1),
            "rollout"
        );
        let err = parse("{method: gradcam, readout: tokens}")
            .unwrap()
            .check("m.")
            .unwrap_err()
            .to_string();
        assert!(err.contains("m.readout: tokens is rollout's"), "{err}");
        let vt = parse("{method: value_paths, readout: tokens}").unwrap();
        assert_eq!(vt.name(-1), "value_paths(tokens)");
        vt.check("").unwrap();
        let err = parse("{method: rollout, layer: 2}")
            .unwrap()
            .check("m.")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("m.layer: 2") && err.contains("rollout"),
            "{err}"
        );
        let err = parse("{method: gradcam, occlusion: {window: 2, stride: 1}}")
            .unwrap()
            .check("m.")
            .unwrap_err()
            .to_string();
        assert!(err.contains("m.occlusion"), "{err}");
        let err = parse("{method: occlusion, occlusion: {window: 1, stride: 2}}")
            .unwrap()
            .check("m.")
            .unwrap_err()
            .to_string();
        assert!(err.contains("stride 2"), "{err}");
    }

    #[test]
    fn word_scores_and_the_new_methods_parse_name_and_check() {
        let parse = |s: &str| serde_yaml::from_str::<RelevanceSpec>(s).unwrap();
        assert_eq!(RelevanceSpec::default().score, WordScore::Literal);
        let a = parse("{method: gradcam, score: attribute}");
        assert_eq!(a.score, WordScore::Attribute);
        assert_eq!(a.name(-1), "attribute(gradcam@-1)");
        a.check("").unwrap();
        assert_eq!(parse("{score: literal}").name(-1), "gradcam@-1");
        let c = parse("{method: contribution, score: attribute, contrastive: true}");
        assert_eq!(c.name(2), "contrastive(attribute(contribution))");
        c.check("").unwrap();
        let o = parse("{method: object_complement}");
        assert_eq!(o.name(-1), "object_complement");
        o.check("").unwrap();
        for (yaml, field) in [
            (
                "{method: object_complement, score: attribute}",
                "m.score: attribute",
            ),
            (
                "{method: object_complement, contrastive: true}",
                "m.contrastive",
            ),
            ("{method: object_complement, layer: 1}", "m.layer: 1"),
            ("{method: contribution, readout: tokens}", "m.readout"),
            ("{method: contribution, layer: 0}", "m.layer: 0"),
        ] {
            let err = parse(yaml).check("m.").unwrap_err().to_string();
            assert!(err.contains(field), "{yaml}: {err}");
        }
        assert!(serde_yaml::from_str::<RelevanceSpec>("{score: spelling}").is_err());
    }
}
