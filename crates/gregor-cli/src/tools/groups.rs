//! `gregor groups`: not built yet (issue 5).

use anyhow::{Result, bail};
use clap::Args;

/// `gregor groups` arguments.
#[derive(Args, Debug)]
pub struct GroupsArgs {}

/// Runs `gregor groups`.
pub async fn run(_args: GroupsArgs) -> Result<()> {
    bail!("gregor groups is not built yet")
}
