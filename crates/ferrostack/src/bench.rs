//! `ferrostack bench ...`: benchmarks that print figures.

use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchWhat {
    /// Token validation, token issue and password authentication rates.
    Identity,
}

pub async fn run(what: BenchWhat) -> anyhow::Result<()> {
    match what {
        BenchWhat::Identity => anyhow::bail!("not yet available"),
    }
}
