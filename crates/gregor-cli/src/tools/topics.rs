//! `gregor topics`: not built yet (issue 5).

use anyhow::{Result, bail};
use clap::Args;

/// `gregor topics` arguments.
#[derive(Args, Debug)]
pub struct TopicsArgs {}

/// Runs `gregor topics`.
pub async fn run(_args: TopicsArgs) -> Result<()> {
    bail!("gregor topics is not built yet")
}
