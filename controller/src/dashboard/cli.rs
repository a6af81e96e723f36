//! `weft dashboard`: prints the dashboard's URL once the controller answers
//! there, and with `--open` opens it in the desktop's browser.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

#[derive(clap::Args, Debug)]
pub struct DashboardArgs {
    /// The controller's stats API, which serves the dashboard.
    #[arg(long, env = "WEFT_STATS_API", default_value = "http://127.0.0.1:8085")]
    pub stats_api: String,
    /// Open it with `xdg-open` too.
    #[arg(long)]
    pub open: bool,
}

pub async fn run(args: &DashboardArgs) -> anyhow::Result<ExitCode> {
    let url = page_url(&args.stats_api)?;
    // reqwest is built without a TLS provider of its own.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let answered = reqwest::Client::new()
        .get(url.join("api/v1/workloads").expect("a relative path"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status);
    println!("{url}");
    if let Err(error) = answered {
        eprintln!(
            "nothing serves the dashboard there ({error}): is weft-controller running? In a \
             cluster: kubectl -n weft-system port-forward deploy/weft-controller 8085:8085"
        );
        return Ok(ExitCode::FAILURE);
    }
    if args.open {
        let opened = std::process::Command::new("xdg-open")
            .arg(url.as_str())
            .status();
        match opened {
            Ok(status) if status.success() => {}
            Ok(status) => eprintln!("xdg-open {url}: {status}; open it yourself"),
            Err(error) => eprintln!("cannot run xdg-open ({error}); open {url} yourself"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The page's URL: the stats API's root.
fn page_url(stats_api: &str) -> anyhow::Result<reqwest::Url> {
    let mut url = reqwest::Url::parse(stats_api)
        .with_context(|| format!("--stats-api `{stats_api}` is not a URL"))?;
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_at_the_root_of_the_stats_api() {
        assert_eq!(
            page_url("http://127.0.0.1:8085").unwrap().as_str(),
            "http://127.0.0.1:8085/"
        );
        assert_eq!(
            page_url("http://localhost:9000/weft").unwrap().as_str(),
            "http://localhost:9000/weft/"
        );
        assert!(page_url("127.0.0.1:8085").is_err());
    }
}
