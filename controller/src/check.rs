//! `weft check`: whether a cluster can run Weft (`--pre`), whether the
//! control plane is healthy, and whether the proxies are (`--proxy`).

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct CheckArgs {}

pub async fn check(_args: &CheckArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("weft check is not built yet")
}
