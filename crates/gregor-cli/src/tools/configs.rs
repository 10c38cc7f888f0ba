//! `gregor configs`: not built yet (issue 5).

use anyhow::{Result, bail};
use clap::Args;

/// `gregor configs` arguments.
#[derive(Args, Debug)]
pub struct ConfigsArgs {}

/// Runs `gregor configs`.
pub async fn run(_args: ConfigsArgs) -> Result<()> {
    bail!("gregor configs is not built yet")
}
