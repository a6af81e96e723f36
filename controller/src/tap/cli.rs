//! `weft tap` and `weft top`: a resource's live requests from the
//! controller's tap relay, as one line per event (Linkerd's `viz tap`
//! format), JSON lines (`-o json`, everything needed to replay a request),
//! or a table of the busiest paths refreshed in place (`top`).

mod render;
mod top;

use std::process::ExitCode;

use anyhow::Context;
use tonic::transport::Channel;
use weft_api::tap::tap_event::Event;
use weft_api::tap::tap_relay_client::TapRelayClient;
use weft_api::tap::{Match, TapEvent, TapRequest};

#[cfg(test)]
pub(crate) use render::inbound_event;
pub use render::{Format, json};
pub use top::{TopArgs, top};

/// Which requests, of which resource.
#[derive(clap::Args, Clone, Debug)]
pub struct TapFilter {
    /// `deploy/NAME`, `pod/NAME` or `ns/NAME`.
    pub resource: String,
    /// The resource's namespace.
    #[arg(long, short, default_value = "default")]
    pub namespace: String,
    /// Only requests whose path begins with this.
    #[arg(long)]
    pub path: Option<String>,
    /// Only requests with this method.
    #[arg(long)]
    pub method: Option<String>,
    /// Only requests for this authority (exactly).
    #[arg(long)]
    pub authority: Option<String>,
    /// Only responses with a status in this range, e.g. `500-599` or `404`.
    #[arg(long, value_parser = parse_status_range)]
    pub response_status: Option<(u32, u32)>,
    /// Requests per second each proxy reports at most.
    #[arg(long, default_value_t = 100)]
    pub max_rps: u32,
    /// Stop after this many requests (0: run until interrupted).
    #[arg(long, default_value_t = 0)]
    pub limit: u32,
}

#[derive(clap::Args, Debug)]
pub struct TapArgs {
    #[command(flatten)]
    pub filter: TapFilter,
    /// `table` (Linkerd's lines), `wide` (with pods and identities) or
    /// `json` (one object per event).
    #[arg(long, short, default_value = "table")]
    pub output: Format,
}

/// `weft tap`: prints each event as it comes.
pub async fn tap(controller: Channel, args: TapArgs) -> anyhow::Result<ExitCode> {
    let mut events = open(controller, &args.filter).await?;
    let mut names = render::ProxyNames::default();
    let mut failed = false;
    while let Some(event) = events.message().await.context("the tap ended")? {
        if let Some(Event::Error(error)) = &event.event {
            eprintln!("cannot tap {}: {}", event.proxy, error.message);
            failed = true;
            if args.output != Format::Json {
                continue;
            }
        }
        println!("{}", render::line(&event, args.output, &mut names));
    }
    Ok(if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Opens the relay's stream of `filter`'s events.
async fn open(
    controller: Channel,
    filter: &TapFilter,
) -> anyhow::Result<tonic::Streaming<TapEvent>> {
    let (status_min, status_max) = filter.response_status.unwrap_or((0, 0));
    let request = TapRequest {
        resource: filter.resource.clone(),
        namespace: filter.namespace.clone(),
        r#match: Some(Match {
            method: filter.method.clone().unwrap_or_default(),
            authority: filter.authority.clone().unwrap_or_default(),
            path_prefix: filter.path.clone().unwrap_or_default(),
            status_min,
            status_max,
        }),
        limit: filter.limit,
        max_rps: filter.max_rps,
    };
    let events = TapRelayClient::new(controller)
        .tap(request)
        .await
        .map_err(|status| anyhow::anyhow!("{}", status.message()))
        .with_context(|| format!("cannot tap {}", filter.resource))?;
    Ok(events.into_inner())
}

/// `500-599`, or one status.
fn parse_status_range(s: &str) -> Result<(u32, u32), String> {
    let status = |s: &str| {
        s.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (100..=599).contains(n))
            .ok_or_else(|| format!("`{s}` is not an HTTP status"))
    };
    let (min, max) = match s.split_once('-') {
        Some((min, max)) => (status(min)?, status(max)?),
        None => (status(s)?, status(s)?),
    };
    if min > max {
        return Err(format!("`{s}`: the range is empty"));
    }
    Ok((min, max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_ranges_parse() {
        assert_eq!(parse_status_range("500-599"), Ok((500, 599)));
        assert_eq!(parse_status_range("404"), Ok((404, 404)));
        assert!(parse_status_range("599-500").is_err());
        assert!(parse_status_range("5xx").is_err());
        assert!(parse_status_range("1000").is_err());
    }
}
