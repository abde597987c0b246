//! Config loading: every shipped config validates, `base:` and `--set` work, and each kind of bad input gives
//! one clear error naming the file, the key path and the value.
use std::path::{Path, PathBuf};
use texplain::config::Experiment;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A minimal valid config whose data folder exists.
fn minimal(dir: &Path) -> String {
    std::fs::create_dir_all(dir.join("wb")).unwrap();
    format!(
        "name: t\ndata:\n  root: {}\n  image_size: 32\nclassifier:\n  patch_size: 8\n  train: {{lr: 0.001, epochs: 1, batch_size: 4}}\n",
        dir.join("wb").display()
    )
}

fn error_of(path: &Path, sets: &[&str]) -> String {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let err = Experiment::load(path, &sets).expect_err("the config must be rejected");
    format!("{err:#}")
}

#[test]
fn every_shipped_config_parses_and_validates() {
    let mut seen = 0;
    for entry in std::fs::read_dir("configs").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        seen += 1;
        let exp =
            Experiment::load(&path, &[]).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        assert!(!exp.config.seeds.is_empty());
        // Paper-scale configs need the user's own files; the run's preflight must say which are missing.
        if let Err(err) = exp.preflight() {
            let msg = format!("{err:#}");
            assert!(
                msg.contains("does not exist") || msg.contains("lacks"),
                "{}: {msg}",
                path.display()
            );
        }
    }
    assert!(seen >= 1, "configs/ holds no YAML file");
}

#[test]
fn base_is_merged_and_set_overrides_win() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "base.yaml", &minimal(tmp.path()));
    let child = write(
        tmp.path(),
        "child.yaml",
        "base: base.yaml\nname: child\nseeds: [3, 4]\n",
    );
    let exp = Experiment::load(
        &child,
        &[
            "classifier.train.epochs=7".into(),
            "explain.top_p=0.5".into(),
        ],
    )
    .unwrap();
    assert_eq!(exp.config.name, "child");
    assert_eq!(exp.config.seeds, vec![3, 4]);
    assert_eq!(exp.config.data.image_size, 32, "inherited from the base");
    assert_eq!(exp.config.classifier.train.epochs, 7);
    assert_eq!(exp.config.explain.top_p, 0.5);
    assert_eq!(exp.out_dir, PathBuf::from("results/child"));
    let yaml = exp.resolved_yaml().unwrap();
    assert!(yaml.contains("epochs: 7"), "{yaml}");
}

#[test]
fn unknown_key_names_file_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let text = minimal(tmp.path()).replace("  image_size: 32", "  image_size: 32\n  imagesize: 3");
    let path = write(tmp.path(), "c.yaml", &text);
    let msg = error_of(&path, &[]);
    assert!(
        msg.contains("c.yaml") && msg.contains("unknown field `imagesize`") && msg.contains("data"),
        "{msg}"
    );
}

#[test]
fn wrong_type_names_key_and_value() {
    let tmp = tempfile::tempdir().unwrap();
    let text = minimal(tmp.path()).replace("epochs: 1", "epochs: many");
    let path = write(tmp.path(), "c.yaml", &text);
    let msg = error_of(&path, &[]);
    assert!(
        msg.contains("classifier.train") && msg.contains("many"),
        "{msg}"
    );
}

#[test]
fn missing_files_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let msg = error_of(&tmp.path().join("nope.yaml"), &[]);
    assert!(
        msg.contains("nope.yaml") && msg.contains("not found"),
        "{msg}"
    );

    // A missing data folder is the run's preflight's business: `texplain config` still shows the config.
    let text = minimal(tmp.path()).replace("/wb", "/missing-folder");
    let path = write(tmp.path(), "c.yaml", &text);
    let exp = Experiment::load(&path, &[]).unwrap();
    let msg = format!("{:#}", exp.preflight().unwrap_err());
    assert!(
        msg.contains("c.yaml") && msg.contains("data.root") && msg.contains("missing-folder"),
        "{msg}"
    );

    let base = write(tmp.path(), "b.yaml", "base: gone.yaml\n");
    let msg = error_of(&base, &[]);
    assert!(msg.contains("gone.yaml"), "{msg}");
}

#[test]
fn bad_set_path_or_value_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "c.yaml", &minimal(tmp.path()));
    let msg = error_of(&path, &["classifier.trian.epochs=3"]);
    assert!(
        msg.contains("--set classifier.trian.epochs=3") && msg.contains("trian"),
        "{msg}"
    );
    let msg = error_of(&path, &["classifier.train.epochs=lots"]);
    assert!(
        msg.contains("classifier.train.epochs=lots") && msg.contains("lots"),
        "{msg}"
    );
    let msg = error_of(&path, &["name"]);
    assert!(msg.contains("expected path.to.key=value"), "{msg}");
    let msg = error_of(&path, &["name.inner=3"]);
    assert!(msg.contains("name is not a section"), "{msg}");
}

#[test]
fn out_of_range_values_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "c.yaml", &minimal(tmp.path()));
    for (set, expect) in [
        ("explain.top_p=1.5", "explain.top_p: 1.5 is outside (0, 1]"),
        ("explain.top_p=0", "explain.top_p: 0 is outside (0, 1]"),
        ("classifier.train.epochs=-1", "-1"),
        ("seeds=[]", "seeds: the seed list is empty"),
        (
            "classifier.train.lr=0",
            "classifier.train.lr: 0 must be a positive number",
        ),
        ("device=gpu", "device: \"gpu\" is not one of"),
    ] {
        let msg = error_of(&path, &[set]);
        assert!(msg.contains(expect), "--set {set}: {msg}");
    }
}

#[test]
fn synth_placement_spelling_and_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let text = minimal(tmp.path()).replace(
        "  image_size: 32\n",
        "  image_size: 32\n  synth: {size: 32, placement: {kind: anywhere, max_cut: 0.3}, place_masks: true}\n",
    );
    let path = write(tmp.path(), "c.yaml", &text);
    let exp = Experiment::load(&path, &[]).unwrap();
    let synth = exp.config.data.synth.as_ref().unwrap();
    assert_eq!(
        synth.placement,
        texplain::data::scene::Placement::Anywhere { max_cut: 0.3 }
    );
    assert!(synth.place_masks);
    let msg = error_of(&path, &["data.synth.placement.max_cut=0.7"]);
    assert!(
        msg.contains("data.synth") && msg.contains("placement.max_cut") && msg.contains("0.7"),
        "{msg}"
    );
    let msg = error_of(&path, &["data.synth.placement.kind=everywhere"]);
    assert!(msg.contains("everywhere"), "{msg}");
    // `inside` takes no parameter.
    let inside = text.replace(
        "{kind: anywhere, max_cut: 0.3}",
        "{kind: inside, max_cut: 0.3}",
    );
    let msg = error_of(&write(tmp.path(), "i.yaml", &inside), &[]);
    assert!(msg.contains("max_cut"), "{msg}");
}

#[test]
fn unknown_methods_are_rejected_not_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "c.yaml", &minimal(tmp.path()));
    let msg = error_of(&path, &["mitigation.methods=[erm, bogus]"]);
    assert!(
        msg.contains("mitigation.methods[1]: unknown variant `bogus`, expected one of `erm`"),
        "{msg}"
    );
}

#[test]
fn duplicate_seeds_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "c.yaml", &minimal(tmp.path()));
    let msg = error_of(&path, &["seeds=[0, 1, 0]"]);
    assert!(msg.contains("seeds: [0, 1, 0] lists a seed twice"), "{msg}");
}

#[test]
fn baseline_parameters_default_and_bad_values_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let text = minimal(tmp.path()).replace("epochs: 1,", "epochs: 6,");
    let path = write(tmp.path(), "c.yaml", &text);
    let all = "mitigation.methods=[erm, masktune, jtt, dfr, groupdro]";

    // Defaults: the documented ones, resolved against the classifier (4 blocks by default, 6 ERM epochs).
    let exp = Experiment::load(&path, &[all.into()]).unwrap();
    let b = &exp.config.mitigation.baselines;
    assert_eq!(
        b.masktune
            .layer_for(exp.config.classifier.num_hidden_layers),
        3
    );
    let ft = &exp.recipes().masktune;
    assert_eq!((ft.epochs, ft.warmup_epochs, ft.lr), (1, 0.0, 0.001));
    assert_eq!(
        (b.jtt.grid.id_epochs.clone(), b.jtt.grid.lambda_up.clone()),
        (vec![2, 5], vec![5, 20])
    );
    assert_eq!(b.dfr.c_grid, vec![1.0, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01]);
    assert_eq!((b.dfr.tune_retrains, b.dfr.final_retrains), (1, 20));
    assert_eq!(
        (b.groupdro.step_size, b.groupdro.generalization_adjustment),
        (0.01, 0.0)
    );
    // One list of the JTT grid can be set alone; the other keeps its default.
    let exp = Experiment::load(
        &path,
        &[
            all.into(),
            "mitigation.baselines.jtt.grid.id_epochs=[1, 3]".into(),
        ],
    )
    .unwrap();
    assert_eq!(
        exp.config.mitigation.baselines.jtt.grid.lambda_up,
        vec![5, 20]
    );

    for (set, expect) in [
        (
            "mitigation.baselines.masktune.layer=4",
            "mitigation.baselines.masktune.layer: 4 is outside 0..4",
        ),
        (
            "mitigation.baselines.masktune.layer=-1",
            "mitigation.baselines.masktune.layer: -1 is outside 0..4",
        ),
        (
            "mitigation.baselines.jtt.grid.id_epochs=[2, 7]",
            "mitigation.baselines.jtt.grid.id_epochs: 7 is outside 1..=6",
        ),
        (
            "mitigation.baselines.jtt.grid.lambda_up=[]",
            "mitigation.baselines.jtt.grid: id_epochs [2, 5] and lambda_up [] must both list",
        ),
        (
            "mitigation.baselines.dfr.c_grid=[1.0, -0.1]",
            "mitigation.baselines.dfr.c_grid: -0.1 is not a positive number",
        ),
        (
            "mitigation.baselines.dfr.final_retrains=0",
            "mitigation.baselines.dfr.tune_retrains 1 / final_retrains 0",
        ),
        (
            "mitigation.baselines.groupdro.step_size=-1",
            "mitigation.baselines.groupdro.step_size: -1 must be a number >= 0",
        ),
        (
            "mitigation.baselines.groupdro.train={lr: 0, epochs: 2, batch_size: 8}",
            "mitigation.baselines.groupdro.train.lr: 0 must be a positive number",
        ),
        (
            "mitigation.baselines.groupdro.sampling=uniform",
            "unknown variant `uniform`",
        ),
        (
            "mitigation.baselines.jtt.lambda=3",
            "unknown field `lambda`",
        ),
    ] {
        let msg = error_of(&path, &[all, set]);
        assert!(msg.contains(expect), "--set {set}: {msg}");
    }
    // A block is checked only when its method runs.
    Experiment::load(
        &path,
        &["mitigation.baselines.jtt.grid.id_epochs=[7]".into()],
    )
    .unwrap();
}

#[test]
fn fine_tuning_recipe_spelling() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "c.yaml", &minimal(tmp.path()));
    let exp = Experiment::load(
        &path,
        &[
            "mitigation.recipe={train_set: all, sampling: class_balanced, trainable: {last_blocks: 2}, include_start: true}"
                .into(),
        ],
    )
    .unwrap();
    let r = &exp.config.mitigation.recipe;
    assert_eq!(r.train_set, texplain::config::TrainSet::All);
    assert_eq!(r.sampling, texplain::config::RecipeSampling::ClassBalanced);
    assert_eq!(r.trainable, texplain::config::Trainable::LastBlocks(2));
    assert!(r.include_start);
    let yaml = exp.resolved_yaml().unwrap();
    assert!(yaml.contains("last_blocks: 2"), "{yaml}");
    let msg = error_of(&path, &["mitigation.recipe.trainable=some"]);
    assert!(msg.contains("mitigation.recipe"), "{msg}");
}

#[test]
fn an_explain_stage_that_cannot_fit_is_refused_with_its_estimate() {
    let quickstart = Path::new("configs/quickstart.yaml");
    let err = error_of(quickstart, &["explain.samples_per_image=100000000000"]);
    assert!(
        err.contains("quickstart.yaml")
            && err.contains("explain.samples_per_image: 100000000000")
            && err.contains("KV cache of")
            && err.contains("100000000000 rows"),
        "{err}"
    );
    // batch_rows below samples_per_image is no error: one image per batch.
    let exp = Experiment::load(
        quickstart,
        &[
            "explain.samples_per_image=50".to_string(),
            "explain.batch_rows=10".to_string(),
        ],
    )
    .unwrap();
    assert_eq!(exp.config.explain.batch_rows, 10);
}

#[test]
fn the_masks_section_under_its_old_name_gradcam_loads_to_the_same_config() {
    let tmp = tempfile::tempdir().unwrap();
    let section = |name: &str| {
        format!(
            "{}mitigation:\n  {name}:\n    method: rollout\n    threshold: {{rule: top_k, percent: 50}}\n    overlays: 3\n",
            minimal(tmp.path())
        )
    };
    let new = write(tmp.path(), "masks.yaml", &section("masks"));
    let old = write(tmp.path(), "gradcam.yaml", &section("gradcam"));
    let resolved = |path: &Path, sets: &[String]| {
        Experiment::load(path, sets)
            .unwrap()
            .resolved_yaml()
            .unwrap()
    };
    let yaml = resolved(&new, &[]);
    assert_eq!(resolved(&old, &[]), yaml);
    assert!(
        yaml.contains("  masks:\n")
            && yaml.contains("method: rollout")
            && !yaml.contains("gradcam:"),
        "{yaml}"
    );
    // Overrides under either name reach the one section, whichever name the file used.
    let five = yaml.replace("overlays: 3", "overlays: 5");
    for (path, name) in [(&old, "gradcam"), (&old, "masks"), (&new, "gradcam")] {
        let set = [format!("mitigation.{name}.overlays=5")];
        assert_eq!(resolved(path, &set), five, "{name} over {}", path.display());
    }
    // An old base under a new child (and the reverse) merge into one section.
    let child =
        |base: &str, name: &str| format!("base: {base}\nmitigation:\n  {name}:\n    overlays: 5\n");
    let new_over_old = write(tmp.path(), "child1.yaml", &child("gradcam.yaml", "masks"));
    let old_over_new = write(tmp.path(), "child2.yaml", &child("masks.yaml", "gradcam"));
    assert_eq!(resolved(&new_over_old, &[]), five);
    assert_eq!(resolved(&old_over_new, &[]), five);
    // One file with both names is an error naming both.
    let both = write(
        tmp.path(),
        "both.yaml",
        &format!("{}  masks:\n    overlays: 1\n", section("gradcam")),
    );
    let err = format!("{:#}", Experiment::load(&both, &[]).unwrap_err());
    assert!(
        err.contains("mitigation.gradcam is the old name of mitigation.masks"),
        "{err}"
    );
}

#[test]
fn relevance_method_and_threshold_spelling_and_errors() {
    let quickstart = Path::new("configs/quickstart.yaml");
    let exp = Experiment::load(
        quickstart,
        &[
            "mitigation.masks={method: rollout, contrastive: true, threshold: {rule: top_k, percent: 50}}"
                .into(),
        ],
    )
    .unwrap();
    let g = &exp.config.mitigation.masks;
    assert_eq!(g.relevance().name(-1), "contrastive(rollout)");
    assert_eq!(
        g.threshold,
        texplain::config::Threshold::TopK { percent: 50.0 }
    );
    let yaml = exp.resolved_yaml().unwrap();
    assert!(
        yaml.contains("method: rollout") && yaml.contains("contrastive: true"),
        "{yaml}"
    );
    let exp = Experiment::load(
        quickstart,
        &[
            "mitigation.masks.method=gradcam".into(),
            "mitigation.masks.layer=1".into(),
            "mitigation.masks.threshold={rule: otsu}".into(),
        ],
    )
    .unwrap();
    assert_eq!(
        exp.config.mitigation.masks.relevance().name(-1),
        "gradcam@1"
    );
    let exp = Experiment::load(
        quickstart,
        &["mitigation.masks={method: occlusion, occlusion: {window: 2, stride: 1}}".into()],
    )
    .unwrap();
    assert_eq!(
        exp.config.mitigation.masks.relevance().name(-1),
        "occlusion(2/1)"
    );
    // A default section serialises every field, defaults included (what its stage key hashes).
    let exp = Experiment::load(quickstart, &[]).unwrap();
    let yaml = exp.resolved_yaml().unwrap();
    assert!(
        yaml.contains("contrastive: false") && yaml.contains("method: value_paths"),
        "{yaml}"
    );
    // The literal word score (the default) stays out of the serialised section, so default stage keys hold.
    assert!(!yaml.contains("score: literal"), "{yaml}");
    let exp = Experiment::load(
        quickstart,
        &["mitigation.masks={method: contribution, score: attribute}".into()],
    )
    .unwrap();
    assert_eq!(
        exp.config.mitigation.masks.relevance().name(-1),
        "attribute(contribution)"
    );
    assert!(exp.resolved_yaml().unwrap().contains("score: attribute"));

    for (sets, expect) in [
        (
            &["mitigation.masks.method=lrp"][..],
            "unknown variant `lrp`, expected one of `gradcam`, `rollout`, `occlusion`",
        ),
        (
            &["mitigation.masks={method: rollout, layer: 2}"][..],
            "mitigation.masks.layer: 2 is GradCAM's layer, but mitigation.masks.method is rollout",
        ),
        (
            &["mitigation.masks={method: object_complement, score: attribute}"][..],
            "mitigation.masks.score: attribute is a word score, but mitigation.masks.method object_complement ignores the target word",
        ),
        (
            &["mitigation.masks.score=spelling"][..],
            "unknown variant `spelling`, expected `literal` or `attribute`",
        ),
        (
            &["mitigation.masks.layer=7"][..],
            "mitigation.masks.layer: 7 is outside -1 and 0..=3",
        ),
        (
            &[
                "mitigation.masks.method=occlusion",
                "mitigation.masks.mask_value=donor_background",
            ][..],
            "mitigation.masks.mask_value is donor_background",
        ),
        (
            &["mitigation.masks.readout=tokens"][..],
            "mitigation.masks.readout: tokens is rollout's and value_paths', but mitigation.masks.method is gradcam",
        ),
        (
            &["mitigation.masks.layer=-3"][..],
            "mitigation.masks.layer: -3 is no hidden_states index",
        ),
        (
            &["translator.layer=1", "mitigation.masks.layer=2"][..],
            "mitigation.masks.layer: 2 lies after translator.layer 1",
        ),
        (
            &["translator.layer=1", "mitigation.masks.layer=-1"][..],
            "mitigation.masks.layer: -1 lies after translator.layer 1",
        ),
        (
            &["translator.layer=0", "mitigation.masks.method=rollout"][..],
            "mitigation.masks.method: rollout needs attention blocks before translator.layer",
        ),
        (
            &["mitigation.masks.occlusion={window: 2, stride: 1}"][..],
            "mitigation.masks.occlusion: {window: 2, stride: 1} is set, but mitigation.masks.method is gradcam",
        ),
        (
            &["mitigation.masks={method: occlusion, occlusion: {window: 9, stride: 1}}"][..],
            "mitigation.masks.occlusion.window: 9 exceeds the classifier's patch grid of 8 x 8",
        ),
        (
            &["mitigation.masks={method: occlusion, occlusion: {window: 2, stride: 3}}"][..],
            "mitigation.masks.occlusion: window 2 and stride 3 must satisfy",
        ),
        (
            &["mitigation.masks.threshold={rule: top_k, percent: 120}"][..],
            "mitigation.masks.threshold.percent: 120 is outside [0, 100]",
        ),
        (
            &["mitigation.masks.threshold={rule: otsu, k: 1}"][..],
            "mitigation.masks.threshold",
        ),
        (
            &["mitigation.masks.threshold={rule: median}"][..],
            "unknown variant `median`",
        ),
    ] {
        // Against GradCAM (the quickstart's default is value_paths); a later --set of the section wins.
        let mut all = vec!["mitigation.masks.method=gradcam"];
        all.extend_from_slice(sets);
        let msg = error_of(quickstart, &all);
        assert!(msg.contains(expect), "--set {sets:?}: {msg}");
    }
}

#[test]
fn precision_is_per_training_and_explanation_and_f32_by_default() {
    use texplain::precision::Precision;
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "c.yaml", &minimal(tmp.path()));
    let f32_exp = Experiment::load(&path, &[]).unwrap();
    assert_eq!(f32_exp.config.classifier.train.precision, Precision::F32);
    assert!(
        !f32_exp.resolved_yaml().unwrap().contains("precision: bf16"),
        "f32 by default"
    );
    // Each training's own `train:` block; `--set` reaches it like any other key.
    let text = format!(
        "{}language_model:\n  train: {{lr: 0.002, epochs: 1, batch_size: 8, precision: bf16}}\n\
         translator:\n  train: {{lr: 0.001, epochs: 1, batch_size: 8, precision: bf16}}\n\
         explain: {{precision: bf16}}\n",
        minimal(tmp.path())
    );
    let path = write(tmp.path(), "bf16.yaml", &text);
    let exp = Experiment::load(&path, &["classifier.train.precision=bf16".to_string()]).unwrap();
    let c = &exp.config;
    assert_eq!(
        [
            c.classifier.train.precision,
            c.language_model.train.precision,
            c.translator.train.precision,
            c.explain.precision,
            c.mitigation.finetune.precision,
        ],
        [
            Precision::Bf16,
            Precision::Bf16,
            Precision::Bf16,
            Precision::Bf16,
            Precision::F32
        ]
    );
    let yaml = exp.resolved_yaml().unwrap();
    assert_eq!(yaml.matches("precision: bf16").count(), 4, "{yaml}");
    // Stage keys hash the sections' JSON: the precision is in the keys of the stages it changes.
    let json = |v: &texplain::config::schema::ClassifierSection| serde_json::to_string(v).unwrap();
    assert!(json(&c.classifier).contains(r#""precision":"bf16""#));
    assert!(json(&f32_exp.config.classifier).contains(r#""precision":"f32""#));
    let msg = error_of(&path, &["classifier.train.precision=fp16"]);
    assert!(
        msg.contains("classifier.train.precision") && msg.contains("fp16") && msg.contains("bf16"),
        "{msg}"
    );
}

#[test]
fn translator_readout_spelling_default_and_errors() {
    use texplain::config::TranslatorReadout;
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "c.yaml", &minimal(tmp.path()));
    let exp = Experiment::load(&path, &[]).unwrap();
    assert_eq!(exp.config.translator.readout, TranslatorReadout::Flatten);
    for (set, want) in [
        ("translator.readout=flatten", TranslatorReadout::Flatten),
        ("translator.readout=mean", TranslatorReadout::Mean),
        ("translator.readout=sum", TranslatorReadout::Sum),
    ] {
        let exp = Experiment::load(&path, &[set.to_string()]).unwrap();
        assert_eq!(exp.config.translator.readout, want, "{set}");
    }
    let msg = error_of(&path, &["translator.readout=max"]);
    assert!(
        msg.contains("translator.readout") && msg.contains("max"),
        "{msg}"
    );
}

#[test]
fn value_paths_relevance_loads_and_needs_blocks_before_the_translator() {
    let quickstart = Path::new("configs/quickstart.yaml");
    let exp =
        Experiment::load(quickstart, &["mitigation.masks.method=value_paths".into()]).unwrap();
    assert_eq!(
        exp.config.mitigation.masks.relevance().name(-1),
        "value_paths"
    );
    let msg = error_of(
        quickstart,
        &["translator.layer=0", "mitigation.masks.method=value_paths"],
    );
    assert!(
        msg.contains("mitigation.masks.method: value_paths needs attention blocks"),
        "{msg}"
    );
    let msg = error_of(
        quickstart,
        &["mitigation.masks={method: value_paths, layer: 2}"],
    );
    assert!(
        msg.contains("mitigation.masks.layer: 2 is GradCAM's layer"),
        "{msg}"
    );
}
