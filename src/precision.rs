//! Mixed precision the way PyTorch's autocast does it (`torch.autocast(device_type, dtype=torch.bfloat16)`,
//! "Automatic Mixed Precision" in the PyTorch docs): inside a bf16 region the matrix products — linear layers,
//! the patch convolution, attention, the LM head — take bf16 inputs, while layer norm, softmax, the losses, the
//! variables themselves (the f32 master weights) and the optimiser state stay f32.
//!
//! tch 0.24 exposes only CUDA autocast with its default dtype (fp16) and no way to choose bf16 or to enable it on
//! the CPU, so the casts are explicit: the models call [`lower`] on the inputs of each matrix product and [`upper`]
//! on the inputs of each f32 op and on their outputs (logits, prefix embeddings, token activations are always f32).
//! Both are no-ops outside a bf16 region, so an f32 run performs exactly the operations it performed before this
//! module existed. The region is thread-local state, as autocast's is: [`autocast`] opens it around a training
//! loop or an inference call; the model code only asks [`current`].
//!
//! Weights go through [`lower_weight`], which keeps each weight's bf16 copy for the rest of the region, as
//! autocast's weight-cast cache does: a decoding loop (thousands of forward passes of a frozen language model in
//! one region) casts every weight once, not once per token. A training step opens its own region, so the cache
//! never outlives an optimiser step.
//!
//! Gradients flow through the casts back to the f32 variables, so the optimiser sees f32 gradients and updates f32
//! weights; checkpoints are written from those, in f32. bf16 keeps f32's exponent range, so no loss scaling is
//! needed (PyTorch uses a `GradScaler` only with fp16).
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// The compute precision of a training or benchmark (YAML `precision`, `texplain bench --precision`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in f32.
    #[default]
    F32,
    /// bf16 matrix products, f32 master weights, norms, softmax, losses and optimiser state.
    Bf16,
}

impl Precision {
    /// The name as YAML and the command line spell it.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }

    /// The kind matrix products compute in.
    pub fn compute_kind(self) -> Kind {
        match self {
            Precision::F32 => Kind::Float,
            Precision::Bf16 => Kind::BFloat16,
        }
    }
}

/// A cached weight cast: the source (held, so its memory cannot be reused by another tensor while cached), its
/// version counter when cast (an in-place update invalidates the copy), and the bf16 copy.
struct CachedCast {
    source: Tensor,
    version: i64,
    cast: Tensor,
}

thread_local! {
    static REGION: Cell<Precision> = const { Cell::new(Precision::F32) };
    static WEIGHT_CASTS: RefCell<HashMap<usize, CachedCast>> = RefCell::new(HashMap::new());
}

/// Restores the enclosing region's precision when dropped (also on a panic or an early return).
struct Restore(Precision);

impl Drop for Restore {
    fn drop(&mut self) {
        REGION.with(|r| r.set(self.0));
        WEIGHT_CASTS.with(|c| c.borrow_mut().clear());
    }
}

/// Runs `f` with `precision` as the current compute precision of this thread (nested regions restore the outer
/// one on exit), like `with torch.autocast(...)`. Entering and leaving a region empty the weight-cast cache.
pub fn autocast<T>(precision: Precision, f: impl FnOnce() -> T) -> T {
    WEIGHT_CASTS.with(|c| c.borrow_mut().clear());
    let _restore = Restore(REGION.with(|r| r.replace(precision)));
    f()
}

/// The compute precision of the current region (f32 outside any).
pub fn current() -> Precision {
    REGION.with(Cell::get)
}

/// The input of a matrix product: `xs` cast to bf16 inside a bf16 region when it is an f32 tensor (integer and
/// boolean tensors pass unchanged); `xs` itself otherwise.
pub fn lower(xs: &Tensor) -> Tensor {
    match current() {
        Precision::Bf16 if xs.kind() == Kind::Float => xs.to_kind(Kind::BFloat16),
        _ => xs.shallow_clone(),
    }
}

/// A model weight as the input of a matrix product: [`lower`], with the bf16 copy kept for the rest of the region
/// (looked up by the weight's memory, shape, strides and version). A copy made without a gradient of a weight that
/// requires one (a weight cast under `no_grad`) is not kept, so a later forward pass with gradients in the same
/// region still reaches the weight.
pub fn lower_weight(w: &Tensor) -> Tensor {
    if current() != Precision::Bf16 || w.kind() != Kind::Float {
        return w.shallow_clone();
    }
    let key = w.data_ptr() as usize;
    let version = w.internal_version();
    let hit = WEIGHT_CASTS.with(|c| {
        c.borrow().get(&key).and_then(|e| {
            (e.version == version && e.source.size() == w.size() && e.source.stride() == w.stride())
                .then(|| e.cast.shallow_clone())
        })
    });
    if let Some(cast) = hit {
        return cast;
    }
    let cast = w.to_kind(Kind::BFloat16);
    if cast.requires_grad() == w.requires_grad() {
        let entry = CachedCast {
            source: w.shallow_clone(),
            version,
            cast: cast.shallow_clone(),
        };
        WEIGHT_CASTS.with(|c| c.borrow_mut().insert(key, entry));
    }
    cast
}

/// The input of an f32 op (layer norm, softmax, a loss) or a model's output: `xs` cast back to f32 inside a bf16
/// region when it is a bf16 tensor; `xs` itself otherwise.
pub fn upper(xs: &Tensor) -> Tensor {
    match current() {
        Precision::Bf16 if xs.kind() == Kind::BFloat16 => xs.to_kind(Kind::Float),
        _ => xs.shallow_clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_nest_and_restore() {
        assert_eq!(current(), Precision::F32);
        autocast(Precision::Bf16, || {
            assert_eq!(current(), Precision::Bf16);
            autocast(Precision::F32, || assert_eq!(current(), Precision::F32));
            assert_eq!(current(), Precision::Bf16);
        });
        assert_eq!(current(), Precision::F32);
        let caught = std::panic::catch_unwind(|| autocast(Precision::Bf16, || panic!("inside")));
        assert!(caught.is_err());
        assert_eq!(current(), Precision::F32, "a panic restores the region");
    }

    #[test]
    fn casts_follow_the_region_and_spare_integers() {
        let x = Tensor::from_slice(&[1.0f32, 2.0]);
        let ids = Tensor::from_slice(&[1i64, 2]);
        assert_eq!(lower(&x).kind(), Kind::Float, "no-op outside a region");
        autocast(Precision::Bf16, || {
            let low = lower(&x);
            assert_eq!(low.kind(), Kind::BFloat16);
            assert_eq!(upper(&low).kind(), Kind::Float);
            assert_eq!(lower(&ids).kind(), Kind::Int64);
            assert_eq!(upper(&x).kind(), Kind::Float);
        });
    }

    #[test]
    fn weight_casts_are_kept_for_the_region_and_dropped_when_stale() {
        let w = Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
        let ptr = |t: &Tensor| t.data_ptr() as usize;
        assert_eq!(ptr(&lower_weight(&w)), ptr(&w), "no-op outside a region");
        autocast(Precision::Bf16, || {
            let a = lower_weight(&w);
            let b = lower_weight(&w);
            assert_eq!(a.kind(), Kind::BFloat16);
            assert_eq!(ptr(&a), ptr(&b), "cast once per region");
            // An in-place update makes the copy stale.
            let _ = w.shallow_clone().fill_(5.0);
            let c = lower_weight(&w);
            assert_ne!(ptr(&c), ptr(&a));
            assert_eq!(c.double_value(&[0]), 5.0);
        });
        // A weight that needs a gradient: a copy made under no_grad is not reused with gradients on.
        let v = Tensor::from_slice(&[1.0f32, 2.0]).set_requires_grad(true);
        autocast(Precision::Bf16, || {
            let frozen = tch::no_grad(|| lower_weight(&v));
            assert!(!frozen.requires_grad());
            let live = lower_weight(&v);
            assert!(live.requires_grad(), "the gradient reaches the weight");
            let again = lower_weight(&v);
            assert_eq!(ptr(&again), ptr(&live));
            again.sum(Kind::Float).backward();
        });
        assert_eq!(Vec::<f32>::try_from(v.grad()).unwrap(), vec![1.0, 1.0]);
    }

    #[test]
    fn names_parse_from_yaml_and_reject_others() {
        for (text, want) in [("f32", Precision::F32), ("bf16", Precision::Bf16)] {
            let p: Precision = serde_yaml::from_str(text).unwrap();
            assert_eq!((p, p.name()), (want, text));
        }
        let err = serde_yaml::from_str::<Precision>("fp16").unwrap_err();
        assert!(err.to_string().contains("fp16"), "{err}");
        assert_eq!(Precision::Bf16.compute_kind(), Kind::BFloat16);
    }
}
