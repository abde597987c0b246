//! The `texplain` command line (clap derive). `main` calls [`main`], which prints errors as a chain.
use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "texplain", version)]
pub struct Cli {}

pub fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    let t = tch::Tensor::from_slice(&[1f32, 2.0]);
    println!("{}", t.sum(tch::Kind::Float).double_value(&[]));
    Ok(())
}
