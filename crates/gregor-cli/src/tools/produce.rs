//! `gregor produce`: not built yet (issue 5).

use anyhow::{Result, bail};
use clap::Args;

/// `gregor produce` arguments.
#[derive(Args, Debug)]
pub struct ProduceArgs {}

/// Runs `gregor produce`.
pub async fn run(_args: ProduceArgs) -> Result<()> {
    bail!("gregor produce is not built yet")
}
