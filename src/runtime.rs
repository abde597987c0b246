//! Process-wide runtime settings: the one seeding function, thread count, and the device.
use anyhow::{bail, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Seeds libtorch (CPU and CUDA generators) and returns the Rust RNG for the same seed. Every stage that draws
/// random numbers calls this with its seed, so stages are reproducible on their own, also when resumed.
pub fn set_seed(seed: u64) -> ChaCha8Rng {
    tch::manual_seed(seed as i64);
    if tch::Cuda::is_available() {
        tch::Cuda::manual_seed_all(seed);
    }
    ChaCha8Rng::seed_from_u64(seed)
}

/// Derives a stage-specific seed so that stages of one run draw independent streams.
pub fn stage_seed(seed: u64, stage: &str) -> u64 {
    // FNV-1a over the stage name, mixed with the run seed.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for b in stage.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h >> 1
}

/// Applies the configured intra-op thread count (None keeps libtorch's default).
pub fn set_threads(threads: Option<i32>) {
    if let Some(n) = threads {
        tch::set_num_threads(n);
    }
}

/// A human-readable device name for logs and run.json.
pub fn device_name(device: tch::Device) -> String {
    match device {
        tch::Device::Cpu => format!("cpu ({} threads)", tch::get_num_threads()),
        tch::Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}"),
    }
}

/// `auto` picks CUDA device 0 when libtorch sees one, else the CPU.
pub fn parse_device(text: &str) -> Result<tch::Device> {
    match text {
        "auto" => Ok(tch::Device::cuda_if_available()),
        "cpu" => Ok(tch::Device::Cpu),
        "cuda" => cuda(0),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => cuda(n),
            _ => bail!("device: {other:?} is not one of auto, cpu, cuda, cuda:N"),
        },
    }
}

fn cuda(n: usize) -> Result<tch::Device> {
    let count = tch::Cuda::device_count() as usize;
    if n >= count {
        bail!("device: cuda:{n} was asked for, but libtorch sees {count} CUDA device(s)");
    }
    Ok(tch::Device::Cuda(n))
}
