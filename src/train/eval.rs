//! Evaluating a classifier: its predictions in batches without gradients, and the per-group accuracies of the
//! field's Waterbirds protocol (groups g = 2y + place; worst-group and plain average accuracy, [`crate::metrics`]).
use tch::{Device, Tensor};

use crate::data::{Dataset, InputPipeline};
use crate::metrics;
use crate::models::vit::Vit;

/// Predicted classes for every image of `images` (u8 [n, 3, h, w]), in batches without gradients.
pub fn predict(model: &Vit, images: &Tensor, input: &InputPipeline, batch_size: usize) -> Vec<i64> {
    let n = images.size()[0];
    let mut preds = Vec::with_capacity(n as usize);
    tch::no_grad(|| {
        for start in (0..n).step_by(batch_size.max(1)) {
            let len = (n - start).min(batch_size as i64);
            let xs = input.eval_batch(&images.narrow(0, start, len));
            let batch: Vec<i64> = Vec::try_from(
                model
                    .forward_t(&xs, false)
                    .argmax(-1, false)
                    .to_device(Device::Cpu),
            )
            .expect("argmax gives int64");
            preds.extend(batch);
        }
    });
    preds
}

/// Per-group accuracy of `model` on `data` (groups g = 2y + place).
pub fn evaluate(
    model: &Vit,
    data: &Dataset,
    input: &InputPipeline,
    batch_size: usize,
) -> Evaluation {
    let preds = predict(model, &data.images, input, batch_size);
    Evaluation::new(preds, data)
}

/// Predictions with their per-group accuracies.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub preds: Vec<i64>,
    pub group_acc: Vec<Option<f64>>,
    pub avg_plain: f64,
}

impl Evaluation {
    pub fn new(preds: Vec<i64>, data: &Dataset) -> Self {
        let groups = data.groups();
        let group_acc = metrics::group_accuracies(&preds, &data.y, &groups, crate::data::N_GROUPS)
            .expect("one prediction per sample, groups in 0..4");
        let avg_plain = metrics::avg_plain(&preds, &data.y).expect("one prediction per sample");
        Self {
            preds,
            group_acc,
            avg_plain,
        }
    }

    pub fn worst_group(&self) -> f64 {
        metrics::worst_group(&self.group_acc)
    }
}
