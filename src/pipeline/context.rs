//! What every stage of a run shares: the experiment, the decoded splits, the input pipeline ([`Run`]), one
//! seed's folder ([`Seed`]), and the architecture of a classifier trained from scratch ([`scratch_config`]).
//! Stages take a `&Seed` (or a `&Run` for the shared ones) and the typed outputs of the stages they read.
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

use crate::config::{Experiment, Preset};
use crate::data::InputPipeline;
use crate::data::{waterbirds, Dataset, Label, LoadOptions, Split};
use crate::methods::Method;
use crate::metrics;
use crate::models::vit::{self, Vit};
use crate::report::ResultRow;
use crate::train;
use crate::util::{build_in_partial, sha256};

/// The three splits of a Waterbirds-format folder, decoded once and kept in memory as u8 tensors.
pub struct Splits {
    pub train: Dataset,
    pub val: Dataset,
    pub test: Dataset,
    /// SHA-256 of metadata.csv and the load options: the data's identity in every stage key.
    pub fingerprint: String,
}

impl Splits {
    /// Per-group counts of the training split (the weights of `avg_train_weighted`).
    pub fn train_group_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; crate::data::N_GROUPS];
        for g in self.train.groups() {
            counts[g as usize] += 1;
        }
        counts
    }

    /// Generates the synthetic set when a generator block (`data.synth` or `data.cats_apples`) is given and
    /// `data.root` is missing, then loads all splits of `data.root` (or of its `variants/<data.variant>` folder).
    ///
    /// With `data.label: place` the loaded `y` and `place` are swapped, so the classifier learns the attribute
    /// and the groups read g = 2*place + y (e.g. group 1 = land background with a waterbird).
    pub fn load(exp: &Experiment) -> Result<Splits> {
        let data = &exp.config.data;
        if !data.root.join("metadata.csv").exists() {
            if let Some(cfg) = &data.cats_apples {
                tracing::info!(root = %data.root.display(), "generating the Cats & Apples set");
                generate_into(&data.root, |dir| {
                    crate::data::cats_apples::generate(cfg, dir).map(|_| ())
                })?;
            } else {
                let synth = data.synth.as_ref().with_context(|| {
                    format!(
                        "data.root: {} has no metadata.csv and the config has no data.synth block",
                        data.root.display()
                    )
                })?;
                tracing::info!(root = %data.root.display(), "generating the synthetic Waterbirds set");
                generate_into(&data.root, |dir| {
                    crate::data::synth::generate(synth, dir).map(|_| ())
                })?;
            }
        }
        let root = match data.variant {
            Some(v) => data.root.join("variants").join(v.name()),
            None => data.root.clone(),
        };
        let opts = LoadOptions {
            image_size: data.image_size,
            skip_corrupt: data.skip_corrupt,
        };
        let attr = data.kind.attr_column();
        let load = |split| -> Result<Dataset> {
            let mut d = waterbirds::load_with_attr(&root, split, &opts, attr)
                .with_context(|| format!("loading {split} split of {}", root.display()))?;
            if data.label == Label::Place {
                std::mem::swap(&mut d.y, &mut d.place);
            }
            Ok(d)
        };
        let metadata = std::fs::read(root.join("metadata.csv"))
            .with_context(|| format!("reading {}/metadata.csv", root.display()))?;
        let mut identity = metadata;
        identity.extend(serde_json::to_vec(&opts)?);
        // The label choice changes what every stage learns.
        identity.extend(serde_json::to_vec(&data.label)?);
        let splits = Splits {
            train: load(Split::Train)?,
            val: load(Split::Val)?,
            test: load(Split::Test)?,
            fingerprint: sha256(&identity),
        };
        tracing::info!(
            train = splits.train.len(),
            val = splits.val.len(),
            test = splits.test.len(),
            "data loaded"
        );
        Ok(splits)
    }
}

/// Generates a dataset into a build folder of this writer's own (`<root>.<host>-<pid>.partial`) and renames it to
/// `root` once complete, so an interrupted generation is never mistaken for a finished one.
pub fn generate_into(root: &Path, generate: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    super::stage::may_build(root)?;
    if root.exists() {
        anyhow::bail!(
            "{} exists but is not a finished dataset; move it away (it is never deleted) or point the config elsewhere",
            root.display()
        );
    }
    // Another run generating the same folder may finish first: its copy is kept (the loader checks it).
    build_in_partial(root, |dir| {
        generate(dir).with_context(|| format!("generating {}", root.display()))
    })?;
    Ok(())
}

/// What the stages of one run share.
pub struct Run<'a> {
    pub exp: &'a Experiment,
    pub splits: Splits,
    /// How images become model inputs (normalisation, training augmentation, device).
    pub input: InputPipeline,
}

impl<'a> Run<'a> {
    pub fn new(exp: &'a Experiment, splits: Splits) -> Self {
        let input = InputPipeline {
            normalize: exp.config.data.normalize.clone(),
            augment: exp.config.data.augment.clone(),
            device: exp.device,
        };
        Self { exp, splits, input }
    }

    pub fn out_dir(&self) -> &Path {
        &self.exp.out_dir
    }

    /// The context of one seed's stages.
    pub fn seed(&self, seed: u64) -> Seed<'_> {
        Seed {
            run: self,
            seed,
            dir: self.exp.out_dir.join(format!("seed-{seed}")),
        }
    }

    /// Result rows (val and test) of `model` for one method and seed (evaluated in batches of at least 256).
    pub fn evaluate(
        &self,
        model: &Vit,
        seed: u64,
        method: Method,
        batch_size: usize,
    ) -> Vec<ResultRow> {
        let splits = &self.splits;
        let train_counts = splits.train_group_counts();
        let batch_size = batch_size.max(256);
        [(Split::Val, &splits.val), (Split::Test, &splits.test)]
            .into_iter()
            .map(|(split, data)| {
                let eval = train::evaluate(model, data, &self.input, batch_size);
                ResultRow {
                    seed,
                    method: method.name().to_string(),
                    split,
                    group_acc: eval
                        .group_acc
                        .iter()
                        .map(|a| a.unwrap_or(f64::NAN))
                        .collect(),
                    worst_group: eval.worst_group(),
                    avg_train_weighted: metrics::avg_train_weighted(&eval.group_acc, &train_counts)
                        .unwrap_or(f64::NAN),
                    avg_plain: eval.avg_plain,
                    n: data.len(),
                }
            })
            .collect()
    }
}

/// One seed of a run: the stages under `<run>/seed-<s>/`.
pub struct Seed<'a> {
    pub run: &'a Run<'a>,
    pub seed: u64,
    pub dir: PathBuf,
}

impl Seed<'_> {
    pub fn exp(&self) -> &Experiment {
        self.run.exp
    }

    pub fn splits(&self) -> &Splits {
        &self.run.splits
    }

    pub fn input(&self) -> &InputPipeline {
        &self.run.input
    }
}

/// The architecture of a classifier trained from scratch: the configured preset.
pub fn scratch_config(exp: &Experiment) -> vit::Config {
    let c = &exp.config.classifier;
    match c.preset {
        Preset::VitBasePatch16_384 => vit::Config::vit_base_patch16_384(2),
        Preset::Tiny => vit::Config {
            hidden_size: c.hidden_size,
            num_hidden_layers: c.num_hidden_layers,
            num_attention_heads: c.num_attention_heads,
            intermediate_size: 4 * c.hidden_size,
            num_labels: 2,
            ..vit::Config::tiny(exp.config.data.image_size, c.patch_size)
        },
    }
}
