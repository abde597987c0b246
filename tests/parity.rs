//! Parity of the Rust models with HF transformers, on the tiny random checkpoints and reference outputs written by
//! `scripts/make_parity_fixtures.py` (torch 2.11.0, transformers 5.24.0), plus the checkpoint-loading rules.
use std::path::{Path, PathBuf};

use tch::{nn, Device, Kind, Tensor};
use texplain::models::gpt2::{Gpt2, KvCache};
use texplain::models::vit::{Config as VitConfig, Vit};
use texplain::models::{load_safetensors, save_safetensors, ModelError};

const TOL: f64 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity")
}

fn io(name: &str) -> std::collections::HashMap<String, Tensor> {
    Tensor::read_safetensors(fixtures().join(name))
        .unwrap()
        .into_iter()
        .collect()
}

fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

fn assert_close(what: &str, got: &Tensor, want: &Tensor) {
    let err = max_abs(got, want);
    eprintln!("{what}: max abs error {err:.3e}");
    assert!(err < TOL, "{what}: max abs error {err}");
}

/// Copies an HF folder into a temp dir with its checkpoint keys rewritten by `edit`.
fn edited_folder(src: &str, edit: impl Fn(&mut Vec<(String, Tensor)>)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = fixtures().join(src);
    std::fs::copy(src.join("config.json"), dir.path().join("config.json")).unwrap();
    let mut tensors = Tensor::read_safetensors(src.join("model.safetensors")).unwrap();
    edit(&mut tensors);
    Tensor::write_safetensors(&tensors, dir.path().join("model.safetensors")).unwrap();
    dir
}

#[test]
fn vit_logits_and_token_activations_match_hf() {
    let mut vs = nn::VarStore::new(Device::Cpu);
    let (vit, report) = Vit::from_hf_folder(&mut vs, &fixtures().join("vit"), None).unwrap();
    assert_eq!(
        report,
        Default::default(),
        "every key used, nothing missing"
    );
    let io = io("vit_io.safetensors");
    let xs = &io["pixel_values"];
    let (hs, last, logits) = tch::no_grad(|| vit.forward_hidden_states(xs, false)).unwrap();
    assert_eq!(hs.len(), 3);
    for (i, h) in hs.iter().enumerate() {
        assert_close(
            &format!("vit hidden_states[{i}]"),
            h,
            &io[&format!("hidden_states_{i}")],
        );
    }
    assert_close("vit last_hidden_state", &last, &io["last_hidden_state"]);
    assert_close("vit logits", &logits, &io["logits"]);
    assert_close(
        "vit forward_t logits",
        &tch::no_grad(|| vit.forward_t(xs, false)),
        &io["logits"],
    );
    for (layer, key) in [
        (0, "hidden_states_0"),
        (1, "hidden_states_1"),
        (2, "hidden_states_2"),
        (-1, "last_hidden_state"),
    ] {
        let f = tch::no_grad(|| vit.forward_features(xs, layer, false)).unwrap();
        assert_close(
            &format!("vit forward_features({layer}).tokens"),
            &f.tokens,
            &io[key],
        );
        assert_close(
            &format!("vit forward_features({layer}).logits"),
            &f.logits,
            &io["logits"],
        );
        let head = tch::no_grad(|| vit.head_from_tokens(&io[key], layer, false)).unwrap();
        assert_close(
            &format!("vit head_from_tokens({layer})"),
            &head,
            &io["logits"],
        );
    }
}

fn check_gpt2(lm: &Gpt2, what: &str) {
    let io = io("gpt2_io.safetensors");
    let ids = &io["input_ids"]; // [2, 7]
    let prefix = &io["prefix_embeds"]; // [2, 3, 32]
    let k = prefix.size()[1];
    tch::no_grad(|| {
        assert_close(
            &format!("{what} logits (ids)"),
            &lm.forward(ids, None, false).unwrap(),
            &io["logits_full"],
        );
        let embeds = Tensor::cat(&[prefix, &lm.embed_tokens(ids).unwrap()], 1); // [2, 10, 32]
        assert_close(
            &format!("{what} logits (prefix + ids)"),
            &lm.forward_embeds(&embeds, None, false).unwrap(),
            &io["logits_prefix"],
        );
        // The same sequence through the KV cache in chunks K+2, 2, 1, 1, 1, exactly as the fixture script did.
        let mut cache = KvCache::new(lm.config().n_layer);
        let mut parts = vec![lm
            .forward_embeds(&embeds.narrow(1, 0, k + 2), Some(&mut cache), false)
            .unwrap()];
        let mut pos = 2;
        for step in [2, 1, 1, 1] {
            parts.push(
                lm.forward(&ids.narrow(1, pos, step), Some(&mut cache), false)
                    .unwrap(),
            );
            pos += step;
        }
        assert_eq!(cache.len(), k + 7);
        assert_close(
            &format!("{what} logits (kv cache)"),
            &Tensor::cat(&parts, 1),
            &io["logits_incremental"],
        );
    });
}

#[test]
fn gpt2_logits_match_hf_with_and_without_cache_and_prefix() {
    let mut vs = nn::VarStore::new(Device::Cpu);
    let (lm, report) = Gpt2::from_hf_folder(&mut vs, &fixtures().join("gpt2")).unwrap();
    assert_eq!(report, Default::default());
    check_gpt2(&lm, "gpt2");
}

#[test]
fn gpt2_base_model_checkpoint_gets_the_prefix_and_its_buffers_are_ignored() {
    // Keys as openai-community/gpt2 stores them: `wte.weight`, `h.0.attn.c_attn.weight`, ..., with mask buffers.
    let mut vs = nn::VarStore::new(Device::Cpu);
    let (lm, report) = Gpt2::from_hf_folder(&mut vs, &fixtures().join("gpt2_base")).unwrap();
    assert!(
        report.missing.is_empty() && report.unused.is_empty(),
        "{report:?}"
    );
    assert_eq!(
        report.ignored,
        [
            "h.0.attn.bias",
            "h.0.attn.masked_bias",
            "h.1.attn.bias",
            "h.1.attn.masked_bias"
        ]
    );
    check_gpt2(&lm, "gpt2 (base-model checkpoint)");
}

#[test]
fn gpt2_lm_head_weight_is_tied_to_wte() {
    // A checkpoint that stores the tied head too: used as nothing else, reported as ignored (not unused).
    let with_head = edited_folder("gpt2", |ts| {
        let wte = ts
            .iter()
            .find(|(k, _)| k == "transformer.wte.weight")
            .unwrap()
            .1
            .copy();
        ts.push(("lm_head.weight".into(), wte));
    });
    let mut vs = nn::VarStore::new(Device::Cpu);
    let (lm, report) = Gpt2::from_hf_folder(&mut vs, with_head.path()).unwrap();
    assert_eq!(report.ignored, ["lm_head.weight"]);
    assert!(report.unused.is_empty());
    check_gpt2(&lm, "gpt2 (with lm_head.weight)");
    // A checkpoint holding only the head: it serves as the embedding.
    let head_only = edited_folder("gpt2", |ts| {
        for (k, _) in ts.iter_mut().filter(|(k, _)| k == "transformer.wte.weight") {
            *k = "lm_head.weight".into();
        }
    });
    let mut vs = nn::VarStore::new(Device::Cpu);
    let (lm, report) = Gpt2::from_hf_folder(&mut vs, head_only.path()).unwrap();
    assert_eq!(report.ignored, ["lm_head.weight"]);
    check_gpt2(&lm, "gpt2 (lm_head.weight only)");
}

#[test]
fn missing_key_is_an_error_that_names_it() {
    let missing = "vit.encoder.layer.1.output.dense.bias";
    let dir = edited_folder("vit", |ts| ts.retain(|(k, _)| k != missing));
    let mut vs = nn::VarStore::new(Device::Cpu);
    let err = Vit::from_hf_folder(&mut vs, dir.path(), None).unwrap_err();
    assert!(
        matches!(&err, ModelError::MissingKeys { keys, .. } if keys == &[missing.to_string()]),
        "{err:?}"
    );
    assert!(err.to_string().contains(missing), "{err}");
    // Without a new head, a checkpoint without the classifier is an error too.
    let headless = edited_folder("vit", |ts| {
        ts.retain(|(k, _)| !k.starts_with("classifier."))
    });
    let mut vs = nn::VarStore::new(Device::Cpu);
    let err = Vit::from_hf_folder(&mut vs, headless.path(), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("classifier.bias, classifier.weight"), "{err}");
}

#[test]
fn new_classification_head_is_allowed_and_named() {
    let io = io("vit_io.safetensors");
    // Checkpoint head with 3 labels, model with 5: the head keeps its fresh init, the rest loads.
    let mut vs = nn::VarStore::new(Device::Cpu);
    let (vit, report) = Vit::from_hf_folder(&mut vs, &fixtures().join("vit"), Some(5)).unwrap();
    assert_eq!(report.missing, ["classifier.bias", "classifier.weight"]);
    assert_eq!(
        report.mismatched,
        [
            ("classifier.bias".to_string(), vec![5], vec![3]),
            ("classifier.weight".to_string(), vec![5, 32], vec![3, 32])
        ]
    );
    assert!(report.unused.is_empty());
    let f = tch::no_grad(|| vit.forward_features(&io["pixel_values"], -1, false)).unwrap();
    assert_close(
        "vit new head: last_hidden_state",
        &f.tokens,
        &io["last_hidden_state"],
    );
    assert_eq!(f.logits.size(), [2, 5]);
    // A backbone-only checkpoint (no classifier keys, no `vit.` prefix as ViTModel saves it) loads too.
    let backbone = edited_folder("vit", |ts| {
        ts.retain(|(k, _)| !k.starts_with("classifier."));
        for (k, _) in ts.iter_mut() {
            *k = k.strip_prefix("vit.").unwrap().to_string();
        }
    });
    let mut vs = nn::VarStore::new(Device::Cpu);
    let (vit, report) = Vit::from_hf_folder(&mut vs, backbone.path(), Some(2)).unwrap();
    assert_eq!(report.missing, ["classifier.bias", "classifier.weight"]);
    assert!(report.mismatched.is_empty() && report.unused.is_empty());
    let f = tch::no_grad(|| vit.forward_features(&io["pixel_values"], 1, false)).unwrap();
    assert_close(
        "vit backbone-only checkpoint: hidden_states[1]",
        &f.tokens,
        &io["hidden_states_1"],
    );
}

#[test]
fn shape_mismatch_is_an_error_naming_key_and_shapes() {
    let mut cfg = VitConfig::from_hf_json(&fixtures().join("vit/config.json")).unwrap();
    cfg.intermediate_size = 48;
    let mut vs = nn::VarStore::new(Device::Cpu);
    let vit = Vit::new(&vs.root(), &cfg);
    let before = vs.variables()["vit.embeddings.cls_token"].copy();
    let err = load_safetensors(
        &mut vs,
        &fixtures().join("vit/model.safetensors"),
        &Vit::load_opts(false),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("vit.encoder.layer.0.intermediate.dense.bias")
            && msg.contains("[48]")
            && msg.contains("[64]"),
        "{msg}"
    );
    // Nothing was copied before the error.
    assert!(vs.variables()["vit.embeddings.cls_token"].equal(&before));
    drop(vit);
}

#[test]
fn saved_checkpoint_has_hf_names_and_reloads() {
    let mut vs = nn::VarStore::new(Device::Cpu);
    let (vit, _) = Vit::from_hf_folder(&mut vs, &fixtures().join("vit"), None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    save_safetensors(&vs, &path).unwrap();
    let mut saved: Vec<String> = Tensor::read_safetensors(&path)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut hf: Vec<String> = Tensor::read_safetensors(fixtures().join("vit/model.safetensors"))
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    saved.sort();
    hf.sort();
    assert_eq!(saved, hf);
    vit.config()
        .to_hf_json(&dir.path().join("config.json"))
        .unwrap();
    let mut vs2 = nn::VarStore::new(Device::Cpu);
    let (vit2, report) = Vit::from_hf_folder(&mut vs2, dir.path(), None).unwrap();
    assert_eq!(report, Default::default());
    let xs = Tensor::randn([1, 3, 32, 32], (Kind::Float, Device::Cpu));
    let (a, b) = tch::no_grad(|| (vit.forward_t(&xs, false), vit2.forward_t(&xs, false)));
    assert!(a.equal(&b));
}

#[test]
fn half_precision_checkpoint_loads_into_the_f32_model() {
    let bf16 = edited_folder("vit", |ts| {
        for (_, t) in ts.iter_mut() {
            *t = t.to_kind(Kind::BFloat16);
        }
    });
    let mut vs = nn::VarStore::new(Device::Cpu);
    let (vit, report) = Vit::from_hf_folder(&mut vs, bf16.path(), None).unwrap();
    assert_eq!(report, Default::default());
    let w = &vs.variables()["vit.encoder.layer.0.attention.attention.query.weight"];
    assert_eq!(w.kind(), Kind::Float);
    let want = Tensor::read_safetensors(fixtures().join("vit/model.safetensors"))
        .unwrap()
        .into_iter()
        .find(|(k, _)| k == "vit.encoder.layer.0.attention.attention.query.weight")
        .unwrap()
        .1;
    assert!(w.equal(&want.to_kind(Kind::BFloat16).to_kind(Kind::Float)));
    let io = io("vit_io.safetensors");
    let logits = tch::no_grad(|| vit.forward_t(&io["pixel_values"], false));
    // bf16 weights (8 bits of mantissa) move the logits, but only a little.
    let err = max_abs(&logits, &io["logits"]);
    assert!(err < 0.1, "{err}");
}
