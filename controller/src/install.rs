//! `weft install` and `weft uninstall`: the manifests the Helm chart
//! `charts/weft` renders, printed for `kubectl apply -f -`.

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct InstallArgs {}

#[derive(clap::Args)]
pub struct UninstallArgs {}

pub fn install(_args: &InstallArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("weft install is not built yet")
}

pub fn uninstall(_args: &UninstallArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("weft uninstall is not built yet")
}
