//! The thin `texplain` binary: everything lives in the library.
fn main() -> std::process::ExitCode {
    match texplain::cli::main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
