//! Link settings for libtorch (see README "libtorch" and `scripts/fetch-libtorch.sh`).
//!
//! - An rpath to libtorch's `lib/`, so `target/release/texplain` runs without `LD_LIBRARY_PATH`.
//! - When that libtorch holds `libtorch_cuda.so`, link it with `--no-as-needed`: nothing references it by symbol,
//!   so `--as-needed` would drop it and CUDA would never register. `--allow-shlib-undefined` because the CUDA
//!   runtime libraries need not be on the build machine.
use std::path::PathBuf;
use std::process::Command;

fn libtorch_lib_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LIBTORCH").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("lib"));
    }
    if std::env::var("LIBTORCH_USE_PYTORCH").as_deref() == Ok("1") {
        let python = std::env::var("PYTHON_SYS_EXECUTABLE").unwrap_or_else(|_| "python3".into());
        let out = Command::new(python)
            .args(["-c", "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))"])
            .output()
            .ok()?;
        return Some(PathBuf::from(String::from_utf8(out.stdout).ok()?.trim()));
    }
    None
}

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_USE_PYTORCH");
    let Some(lib) = libtorch_lib_dir() else { return };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-search=native={}", lib.display());
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
        println!("cargo:rustc-link-arg=-Wl,--allow-shlib-undefined");
    }
}
