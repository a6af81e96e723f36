//! `weft check`: whether a cluster can run Weft (`--pre`), whether the
//! control plane is healthy, and whether the proxies are (`--proxy`), with
//! Linkerd's categories and output.
//!
//! `snapshot::gather` reads what the checks look at from the API server
//! and decides nothing; `checks` decides everything from that `Snapshot`,
//! so the tests run it on recorded API responses (`check/fixtures/`).

mod certificates;
mod cluster;
mod control_plane;
mod data_plane;
mod identity;
mod linkerd_resources;
mod names;
mod report;
mod snapshot;
#[cfg(test)]
mod tests;
mod webhook;

use std::process::ExitCode;

use time::OffsetDateTime;

pub use report::{Category, Check, Outcome, render_json, render_text, success};
pub use snapshot::{MeshObjects, Read, Snapshot, Unreached, gather};

#[derive(clap::Args)]
pub struct CheckArgs {
    /// Checks whether Weft can be installed: the cluster's version and this
    /// user's rights.
    #[arg(long, conflicts_with = "proxy")]
    pre: bool,
    /// Also checks the data plane: every meshed pod's proxy.
    #[arg(long)]
    proxy: bool,
    /// With `--proxy`, only this namespace's pods.
    #[arg(long, short, requires = "proxy")]
    namespace: Option<String>,
    #[arg(long, short, value_enum, default_value_t = Format::Basic)]
    output: Format,
    /// The kubeconfig context to use, as kubectl's `--context`.
    #[arg(long)]
    context: Option<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Basic,
    Json,
}

/// What to check.
#[derive(Clone, Debug)]
pub struct Options {
    pub pre: bool,
    pub proxy: bool,
    /// `--proxy`'s namespace; all when `None`.
    pub namespace: Option<String>,
    /// What the control plane and the proxies should run.
    pub cli_version: String,
}

pub async fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let options = Options {
        pre: args.pre,
        proxy: args.proxy,
        namespace: args.namespace.clone(),
        cli_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let snapshot = gather(args.context.as_deref(), &options).await;
    let categories = checks(&snapshot, &options, OffsetDateTime::now_utc());
    print!(
        "{}",
        match args.output {
            Format::Basic => render_text(&categories),
            Format::Json => render_json(&categories),
        }
    );
    Ok(match success(&categories) {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    })
}

/// Every category `options` asks for, judged on `snapshot` at `now`. When
/// the API cannot be reached, the first category says why and no other runs.
pub fn checks(snapshot: &Snapshot, options: &Options, now: OffsetDateTime) -> Vec<Category> {
    let mut categories = vec![cluster::kubernetes_api(snapshot)];
    let Ok(version) = &snapshot.api else {
        return categories;
    };
    categories.push(cluster::kubernetes_version(version));
    if options.pre {
        categories.push(cluster::pre_kubernetes_setup(snapshot));
        return categories;
    }
    categories.push(control_plane::existence(snapshot, options));
    categories.push(identity::identity(snapshot, now));
    categories.push(webhook::webhook(snapshot, now));
    if options.proxy {
        categories.push(data_plane::data_plane(snapshot, options));
    }
    categories.push(linkerd_resources::linkerd_resources(snapshot));
    categories
}
