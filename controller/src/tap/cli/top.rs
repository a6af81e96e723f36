//! `weft top`: the tapped requests grouped by source, destination, method
//! and path, with count, best/worst/last latency and success rate, busiest
//! first; refreshed in place every second, or printed once (`--once`).

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tonic::transport::Channel;
use weft_api::tap::tap_event::Event;
use weft_api::tap::{Direction, RequestInit, ResponseEnd, TapEvent};

use super::{TapFilter, open};

#[derive(clap::Args, Debug)]
pub struct TopArgs {
    #[command(flatten)]
    pub filter: TapFilter,
    /// Print the table once, when the tap ends (`--limit`, `--duration`),
    /// instead of refreshing it in place.
    #[arg(long)]
    pub once: bool,
    /// Stop after this long, e.g. `10s` (default: run until interrupted).
    #[arg(long, value_parser = parse_seconds)]
    pub duration: Option<Duration>,
}

/// One row's key: who called whom, how, and where.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Route {
    source: String,
    destination: String,
    method: String,
    path: String,
}

#[derive(Clone, Debug, Default)]
struct Row {
    count: u64,
    successes: u64,
    best_us: u64,
    worst_us: u64,
    last_us: u64,
}

/// The requests seen so far.
#[derive(Default)]
pub struct Table {
    /// Requests whose head has been seen, by proxy and id.
    open: HashMap<(String, u64), Route>,
    rows: BTreeMap<Route, Row>,
}

impl Table {
    pub fn add(&mut self, event: &TapEvent) {
        let key = (event.proxy.clone(), event.request_id);
        match &event.event {
            Some(Event::RequestInit(init)) => {
                self.open.insert(key, route(event, init));
            }
            Some(Event::ResponseEnd(end)) => {
                let Some(route) = self.open.remove(&key) else {
                    return;
                };
                let row = self.rows.entry(route).or_default();
                let latency = end.since_request_init_us;
                row.best_us = if row.count == 0 {
                    latency
                } else {
                    row.best_us.min(latency)
                };
                row.worst_us = row.worst_us.max(latency);
                row.last_us = latency;
                row.count += 1;
                row.successes += u64::from(succeeded(end));
            }
            _ => {}
        }
    }

    pub fn render(&self) -> String {
        let mut rows: Vec<_> = self.rows.iter().collect();
        rows.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
        let mut out = format!(
            "{:<28} {:<28} {:<7} {:<28} {:>6} {:>9} {:>9} {:>9} {:>8}\n",
            "SOURCE", "DESTINATION", "METHOD", "PATH", "COUNT", "BEST", "WORST", "LAST", "SUCCESS"
        );
        for (route, row) in rows {
            let success = 100.0 * row.successes as f64 / row.count as f64;
            out += &format!(
                "{:<28} {:<28} {:<7} {:<28} {:>6} {:>9} {:>9} {:>9} {:>7.2}%\n",
                route.source,
                route.destination,
                route.method,
                route.path,
                row.count,
                latency(row.best_us),
                latency(row.worst_us),
                latency(row.last_us),
                success
            );
        }
        out
    }
}

/// Inbound, the caller is the client (by identity, else by IP) and the
/// callee the tapped pod; outbound, the tapped pod calls the authority.
fn route(event: &TapEvent, init: &RequestInit) -> Route {
    let client = match event.peer_identity.split_once(".serviceaccount.") {
        Some((account, _)) => account.to_string(),
        None => match event.source.parse::<std::net::SocketAddr>() {
            Ok(addr) => addr.ip().to_string(),
            Err(_) => event.source.clone(),
        },
    };
    let (source, destination) = match event.direction() {
        Direction::Outbound => (event.proxy.clone(), init.authority.clone()),
        Direction::Inbound | Direction::Unspecified => (client, event.proxy.clone()),
    };
    Route {
        source,
        destination,
        method: init.method.clone(),
        // Grouped without the query.
        path: init.path.split('?').next().unwrap_or_default().to_string(),
    }
}

/// As Linkerd classifies: no 5xx, no proxy error, and gRPC OK if gRPC.
fn succeeded(end: &ResponseEnd) -> bool {
    end.status < 500 && end.error.is_empty() && end.grpc_status.is_none_or(|s| s == 0)
}

fn latency(us: u64) -> String {
    if us < 1000 {
        format!("{us}µs")
    } else {
        format!("{:.1}ms", us as f64 / 1000.0)
    }
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let seconds = s.strip_suffix('s').unwrap_or(s);
    seconds
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("`{s}` is not a duration in seconds like 10s"))
}

/// `weft top`.
pub async fn top(controller: Channel, args: TopArgs) -> anyhow::Result<ExitCode> {
    let mut events = open(controller, &args.filter).await?;
    let mut table = Table::default();
    let mut refresh = tokio::time::interval(Duration::from_secs(1));
    let until = async {
        match args.duration {
            Some(duration) => tokio::time::sleep(duration).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(until);
    loop {
        tokio::select! {
            event = events.message() => match event.context("the tap ended")? {
                Some(event) => {
                    if let Some(Event::Error(error)) = &event.event {
                        eprintln!("cannot tap {}: {}", event.proxy, error.message);
                    }
                    table.add(&event);
                }
                None => break,
            },
            _ = refresh.tick(), if !args.once => {
                // Clear the screen and draw again from its top.
                print!("\x1b[2J\x1b[H{}", table.render());
            }
            _ = &mut until => break,
        }
    }
    if args.once {
        print!("{}", table.render());
    } else {
        print!("\x1b[2J\x1b[H{}", table.render());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tapped(id: u64, path: &str, status: u32, latency_us: u64) -> [TapEvent; 2] {
        let common = TapEvent {
            request_id: id,
            proxy: "demo/web".into(),
            direction: Direction::Inbound as i32,
            source: format!("127.0.0.1:{}", 40000 + id),
            peer_identity: "app.demo.serviceaccount.identity.weft-system.cluster.local".into(),
            ..TapEvent::default()
        };
        let init = RequestInit {
            method: "GET".into(),
            path: path.into(),
            ..RequestInit::default()
        };
        let end = ResponseEnd {
            status,
            since_request_init_us: latency_us,
            ..ResponseEnd::default()
        };
        [
            TapEvent {
                event: Some(Event::RequestInit(init)),
                ..common.clone()
            },
            TapEvent {
                event: Some(Event::ResponseEnd(end)),
                ..common
            },
        ]
    }

    #[test]
    fn requests_are_grouped_by_caller_callee_method_and_path() {
        let mut table = Table::default();
        let events = [
            tapped(1, "/books?page=1", 200, 900),
            tapped(2, "/books?page=2", 500, 3000),
            tapped(3, "/books", 200, 1500),
            tapped(4, "/authors", 200, 100),
        ];
        for event in events.iter().flatten() {
            table.add(event);
        }
        let out = table.render();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        let books: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            books,
            [
                "app.demo", "demo/web", "GET", "/books", "3", "900µs", "3.0ms", "1.5ms", "66.67%"
            ]
        );
        assert!(lines[2].contains("/authors"), "{out}");
    }
}
