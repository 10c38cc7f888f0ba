//! `gregor consume`: not built yet (issue 5).

use anyhow::{Result, bail};
use clap::Args;

/// `gregor consume` arguments.
#[derive(Args, Debug)]
pub struct ConsumeArgs {}

/// Runs `gregor consume`.
pub async fn run(_args: ConsumeArgs) -> Result<()> {
    bail!("gregor consume is not built yet")
}
