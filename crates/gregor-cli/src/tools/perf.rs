//! `gregor perf`: not built yet (issue 5).

use anyhow::{Result, bail};
use clap::Args;

/// `gregor perf` arguments.
#[derive(Args, Debug)]
pub struct PerfArgs {}

/// Runs `gregor perf`.
pub async fn run(_args: PerfArgs) -> Result<()> {
    bail!("gregor perf is not built yet")
}
