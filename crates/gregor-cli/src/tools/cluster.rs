//! `gregor cluster`: not built yet (issue 5).

use anyhow::{Result, bail};
use clap::Args;

/// `gregor cluster` arguments.
#[derive(Args, Debug)]
pub struct ClusterArgs {}

/// Runs `gregor cluster`.
pub async fn run(_args: ClusterArgs) -> Result<()> {
    bail!("gregor cluster is not built yet")
}
