//! `weft-demo load`: steady traffic for the local demo, so the proxy's
//! metrics move while someone watches. Requests go out on a fixed schedule
//! (not one after another), so a slow upstream shows up as failures and
//! latency rather than as a quietly lower rate.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::ensure;
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Empty};
use hyper::header::{HOST, HeaderValue};
use hyper::{Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::{Instant, MissedTickBehavior};

use crate::shutdown_signal::ShutdownSignal;

/// A request still unanswered after this counts as failed, so a stuck
/// upstream cannot pile up requests forever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const REPORT_EVERY: Duration = Duration::from_secs(1);

#[derive(Args)]
pub struct LoadArgs {
    /// The URL to GET, e.g. http://127.0.0.1:4140/.
    #[arg(long)]
    target: Uri,
    /// Host header to send instead of the target's authority (the outbound
    /// proxy routes by it).
    #[arg(long)]
    host: Option<HeaderValue>,
    /// Requests per second.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    rps: u32,
    /// Seconds to run; 0 runs until SIGTERM or SIGINT.
    #[arg(long, default_value_t = 0)]
    duration: u64,
}

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// Outcomes since the last report line.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    last_failure: Mutex<Option<String>>,
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    ensure!(
        args.target.scheme_str() == Some("http") && args.target.authority().is_some(),
        "--target must be an http:// URL with a host, not {}",
        args.target
    );
    let mut shutdown = ShutdownSignal::install()?;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let tally = Arc::new(Tally::default());

    let mut send = tokio::time::interval(REPORT_EVERY / args.rps);
    // After a stall, carry on at the set rate instead of bursting to catch up.
    send.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut report = tokio::time::interval_at(Instant::now() + REPORT_EVERY, REPORT_EVERY);
    let mut reports = 0;
    loop {
        tokio::select! {
            _ = send.tick() => {
                let request = get(&args.target, args.host.as_ref());
                tokio::spawn(send_one(client.clone(), request, tally.clone()));
            }
            _ = report.tick() => {
                print_report(&tally)?;
                reports += 1;
                if reports == args.duration {
                    return Ok(());
                }
            }
            () = shutdown.recv() => return Ok(()),
        }
    }
}

fn get(target: &Uri, host: Option<&HeaderValue>) -> Request<Empty<Bytes>> {
    let mut request = Request::new(Empty::new());
    *request.uri_mut() = target.clone();
    if let Some(host) = host {
        request.headers_mut().insert(HOST, host.clone());
    }
    request
}

async fn send_one(client: HttpClient, request: Request<Empty<Bytes>>, tally: Arc<Tally>) {
    let exchange = async {
        let response = client.request(request).await.map_err(|e| with_causes(&e))?;
        let status = response.status();
        // Read the whole body: a response cut short is a failure too.
        response
            .into_body()
            .collect()
            .await
            .map_err(|e| with_causes(&e))?;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("status {status}"))
        }
    };
    let outcome = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {REQUEST_TIMEOUT:?}")));
    match outcome {
        Ok(()) => tally.ok.fetch_add(1, Ordering::Relaxed),
        Err(failure) => {
            *tally.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(failure);
            tally.failed.fetch_add(1, Ordering::Relaxed)
        }
    };
}

/// hyper's errors say "client error (Connect)" and keep the reason in their sources.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn print_report(tally: &Tally) -> std::io::Result<()> {
    let ok = tally.ok.swap(0, Ordering::Relaxed);
    let failed = tally.failed.swap(0, Ordering::Relaxed);
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ok={ok} failed={failed}")?;
    stdout.flush()?;
    // Failures are explained on stderr so stdout stays one parseable line a second.
    let last_failure = tally
        .last_failure
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(failure) = last_failure {
        eprintln!("weft-demo load: last failure: {failure}");
    }
    Ok(())
}
