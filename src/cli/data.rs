//! `texplain data ...`: generate the synthetic data sets and inspect any Waterbirds-family folder. The flags fill
//! the generators' config structs ([`SynthConfig`], [`CaptionSetConfig`], [`UpstreamConfig`], [`CatsApplesConfig`]).
use anyhow::{anyhow, Result};
use clap::{Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Instant;

use crate::data::captions::{synth_caption_set, CaptionSetConfig};
use crate::data::cats_apples::{self, CatsApplesConfig};
use crate::data::inspect::inspect_folder;
use crate::data::scene::Placement;
use crate::data::synth::{generate, SynthConfig};
use crate::data::upstream::{self, ImageFormat, UpstreamConfig};

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Write a synthetic Waterbirds folder (real format, masks, captions, test variants).
    SynthWaterbirds {
        #[arg(long)]
        out: PathBuf,
        /// Multiplies the real group counts.
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Image side in pixels.
        #[arg(long, default_value_t = 64)]
        size: u32,
        /// Train correlation rho.
        #[arg(long, default_value_t = 0.95)]
        correlation: f64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Bird bounding-box side as a fraction of the image.
        #[arg(long, default_value_t = 0.55)]
        bird_size: f64,
        /// Relative jitter of the bird size (uniform in [1 - j, 1 + j]).
        #[arg(long, default_value_t = 0.15)]
        bird_size_jitter: f64,
        /// Where the bird lands: wholly inside the frame, or anywhere with up to --max-cut of it cut by the border.
        #[arg(long, value_enum, default_value_t = PlacementKind::Inside)]
        placement: PlacementKind,
        /// With --placement anywhere: the largest share of the bird's width and of its height the border may cut
        /// off, in [0, 0.5] (default 0.3).
        #[arg(long)]
        max_cut: Option<f64>,
        /// Also write place_masks/ (the water or land pixels: no sky, bird or distractor).
        #[arg(long)]
        place_masks: bool,
        /// Background strength in [0, 1].
        #[arg(long, default_value_t = 1.0)]
        bg_strength: f64,
        #[arg(long)]
        no_distractors: bool,
        #[arg(long)]
        no_variants: bool,
    },
    /// Write the balanced synthetic caption set (images + captions.csv + corpus.txt) for the translator.
    SynthCaptions {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 6000)]
        n_images: usize,
        #[arg(long, default_value_t = 64)]
        size: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 50_000)]
        corpus_sentences: usize,
    },
    /// Write the synthetic upstream corpus (our ImageNet stand-in: 22 categories on 13 backgrounds, independent of
    /// the label unless --background-affinity) as IN-9L class folders plus the Background Challenge variants and
    /// .npy masks.
    SynthUpstream {
        #[arg(long)]
        out: PathBuf,
        /// A YAML file with `UpstreamConfig` fields; the flags below override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Image side in pixels.
        #[arg(long)]
        size: Option<u32>,
        #[arg(long)]
        seed: Option<u64>,
        #[arg(long)]
        train_per_class: Option<usize>,
        #[arg(long)]
        val_per_class: Option<usize>,
        #[arg(long)]
        challenge_per_class: Option<usize>,
        /// Object bounding-box side as a fraction of the image.
        #[arg(long)]
        object_size: Option<f64>,
        /// png or jpeg.
        #[arg(long)]
        format: Option<String>,
        /// Share of each category's images on its habitats (0 = backgrounds independent of the label).
        #[arg(long)]
        background_affinity: Option<f64>,
        /// Skip bg_challenge/ (IN-9L folders only).
        #[arg(long)]
        no_challenge: bool,
    },
    /// Write the synthetic Cats & Dogs with apples set (Faithfulness Test I).
    CatsApples {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 2000)]
        n_train: usize,
        #[arg(long, default_value_t = 2000)]
        n_test: usize,
        #[arg(long, default_value_t = 64)]
        size: u32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Print split x group counts of a Waterbirds-family folder (or prominence counts of a synthetic caption set,
    /// detected by its `scenes.csv`) and write a contact sheet.
    Inspect {
        dir: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

/// `--placement`: the kinds of [`Placement`]; `--max-cut` gives `anywhere` its parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlacementKind {
    Inside,
    Anywhere,
}

impl PlacementKind {
    fn placement(self, max_cut: Option<f64>) -> Result<Placement> {
        match (self, max_cut) {
            (PlacementKind::Inside, Some(c)) => Err(anyhow!(
                "--max-cut {c}: only --placement anywhere cuts birds by the border"
            )),
            (PlacementKind::Inside, None) => Ok(Placement::Inside {}),
            (PlacementKind::Anywhere, c) => Ok(Placement::Anywhere {
                max_cut: c.unwrap_or(0.3),
            }),
        }
    }
}

pub fn run(cmd: DataCommand) -> Result<()> {
    let t0 = Instant::now();
    match cmd {
        DataCommand::SynthWaterbirds {
            out,
            scale,
            size,
            correlation,
            seed,
            bird_size,
            bird_size_jitter,
            placement,
            max_cut,
            place_masks,
            bg_strength,
            no_distractors,
            no_variants,
        } => {
            let cfg = SynthConfig {
                scale,
                size,
                correlation,
                seed,
                bird_size,
                bird_size_jitter,
                placement: placement.placement(max_cut)?,
                place_masks,
                bg_strength,
                distractors: !no_distractors,
                variants: !no_variants,
                ..SynthConfig::default()
            };
            let s = generate(&cfg, &out)?;
            println!(
                "wrote {} images (+{} variant images) to {} in {:.1} s; counts [split][group] = {:?}",
                s.n_images,
                s.n_variant_images,
                out.display(),
                t0.elapsed().as_secs_f64(),
                s.counts
            );
        }
        DataCommand::SynthCaptions {
            out,
            n_images,
            size,
            seed,
            corpus_sentences,
        } => {
            let cfg = CaptionSetConfig {
                n_images,
                size,
                seed,
                corpus_sentences,
                ..CaptionSetConfig::default()
            };
            let s = synth_caption_set(&cfg, &out)?;
            println!(
                "wrote {} images ({} without a bird), {} captions, {} corpus sentences to {} in {:.1} s",
                s.n_images,
                s.n_without_bird,
                s.n_captions,
                s.n_corpus_sentences,
                out.display(),
                t0.elapsed().as_secs_f64()
            );
        }
        DataCommand::SynthUpstream {
            out,
            config,
            size,
            seed,
            train_per_class,
            val_per_class,
            challenge_per_class,
            object_size,
            format,
            background_affinity,
            no_challenge,
        } => {
            let mut cfg = match &config {
                Some(p) => {
                    let text =
                        std::fs::read_to_string(p).map_err(|e| anyhow!("{}: {e}", p.display()))?;
                    serde_yaml::from_str::<UpstreamConfig>(&text)
                        .map_err(|e| anyhow!("{}: {e}", p.display()))?
                }
                None => UpstreamConfig::default(),
            };
            cfg.size = size.unwrap_or(cfg.size);
            cfg.seed = seed.unwrap_or(cfg.seed);
            cfg.train_per_class = train_per_class.unwrap_or(cfg.train_per_class);
            cfg.val_per_class = val_per_class.unwrap_or(cfg.val_per_class);
            cfg.challenge_per_class = challenge_per_class.unwrap_or(cfg.challenge_per_class);
            cfg.object_size = object_size.unwrap_or(cfg.object_size);
            cfg.background_affinity = background_affinity.unwrap_or(cfg.background_affinity);
            if let Some(f) = format {
                cfg.image_format = serde_yaml::from_str::<ImageFormat>(&f)
                    .map_err(|_| anyhow!("--format must be png or jpeg, got {f:?}"))?;
            }
            cfg.challenge &= !no_challenge;
            let s = upstream::generate(&cfg, &out)?;
            println!(
                "wrote {} images (+{} variant images, {} masks) in {} classes x {} backgrounds to {} in {:.1} s",
                s.n_images,
                s.n_variant_images,
                s.n_masks,
                s.class_dirs.len(),
                s.backgrounds.len(),
                out.display(),
                t0.elapsed().as_secs_f64()
            );
        }
        DataCommand::CatsApples {
            out,
            n_train,
            n_test,
            size,
            seed,
        } => {
            let cfg = CatsApplesConfig {
                n_train,
                n_test,
                size,
                seed,
                ..CatsApplesConfig::default()
            };
            let s = cats_apples::generate(&cfg, &out)?;
            println!(
                "wrote Cats & Apples to {}; counts [split][g=2*cat+apple] = {:?}",
                out.display(),
                s.counts
            );
        }
        DataCommand::Inspect { dir, out } => {
            print!("{}", inspect_folder(&dir, &out)?);
            println!("contact sheet: {}", out.display());
        }
    }
    Ok(())
}
