//! The training recipes of the baselines that train (MaskTune, JTT, group DRO), resolved once from the config's
//! defaults when an [`super::Experiment`] is built: a baseline's own block (`mitigation.baselines.<method>.train` /
//! `.finetune`) where given, else its default derived from ERM's `classifier.train`. The stages and the range
//! checks read the resolved recipe, never the rule. (ERM trains with `classifier.train` and the masked fine-tunings
//! with `mitigation.finetune`, as written.)
use super::schema::{Config, Method, ModelSelection, TrainConfig};

/// The resolved recipe of each baseline that trains.
#[derive(Debug, Clone)]
pub struct BaselineRecipes {
    /// MaskTune's fine-tuning of the ERM model: `masktune.finetune`, or `classifier.train` for one epoch without
    /// warmup, last epoch kept (the reference fine-tunes one epoch at its ERM's learning rate).
    pub masktune: TrainConfig,
    /// JTT's final models (and, stopped after T epochs, its identification models): `jtt.train`, or
    /// `classifier.train`.
    pub jtt: TrainConfig,
    /// Group DRO's training: `groupdro.train`, or `classifier.train`.
    pub groupdro: TrainConfig,
}

impl BaselineRecipes {
    pub fn resolve(cfg: &Config) -> Self {
        let erm = &cfg.classifier.train;
        let b = &cfg.mitigation.baselines;
        let or_erm = |given: &Option<TrainConfig>| given.clone().unwrap_or_else(|| erm.clone());
        Self {
            masktune: b.masktune.finetune.clone().unwrap_or_else(|| TrainConfig {
                epochs: 1,
                warmup_epochs: 0.0,
                select: ModelSelection::Last,
                ..erm.clone()
            }),
            jtt: or_erm(&b.jtt.train),
            groupdro: or_erm(&b.groupdro.train),
        }
    }

    /// The recipe `method` trains with; `None` for the methods that are not a training baseline (DFR fits a last
    /// layer by logistic regression; ERM and the masked fine-tunings read their sections as written).
    pub fn of(&self, method: Method) -> Option<&TrainConfig> {
        match method {
            Method::Masktune => Some(&self.masktune),
            Method::Jtt => Some(&self.jtt),
            Method::Groupdro => Some(&self.groupdro),
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
            | Method::Dfr => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        serde_yaml::from_str(
            "name: t\ndata: {root: d, image_size: 32}\nclassifier: {train: {lr: 0.5, epochs: 7, batch_size: 4}}\n",
        )
        .unwrap()
    }

    /// `TrainConfig` as its key input reads it.
    fn json(t: Option<&TrainConfig>) -> String {
        serde_json::to_string(&t).unwrap()
    }

    #[test]
    fn unset_recipes_default_to_erms() {
        let cfg = config();
        let r = BaselineRecipes::resolve(&cfg);
        let erm = Some(&cfg.classifier.train);
        assert_eq!(json(r.of(Method::Jtt)), json(erm));
        assert_eq!(json(r.of(Method::Groupdro)), json(erm));
        let m = &r.masktune;
        assert_eq!(
            (m.epochs, m.warmup_epochs, m.select, m.lr, m.batch_size),
            (1, 0.0, ModelSelection::Last, 0.5, 4)
        );
        for method in [
            Method::Erm,
            Method::Random,
            Method::Texplain,
            Method::Oracle,
            Method::Dfr,
        ] {
            assert!(r.of(method).is_none(), "{method}");
        }
    }

    #[test]
    fn given_recipes_are_kept() {
        let mut cfg = config();
        let own = TrainConfig {
            epochs: 3,
            ..cfg.classifier.train.clone()
        };
        let b = &mut cfg.mitigation.baselines;
        b.masktune.finetune = Some(own.clone());
        b.jtt.train = Some(own.clone());
        b.groupdro.train = Some(own.clone());
        let r = BaselineRecipes::resolve(&cfg);
        for method in [Method::Masktune, Method::Jtt, Method::Groupdro] {
            assert_eq!(json(r.of(method)), json(Some(&own)), "{method}");
        }
    }
}
