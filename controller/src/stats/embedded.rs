//! The embedded source: the controller scrapes every meshed pod's proxy
//! (`/metrics` on its admin port) every few seconds and answers from the
//! samples of the last few minutes, kept in memory.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::scrape::parse;
use super::window::Window;
use super::{Labels, MetricsSource, Selector, Series, SourceError};
use crate::index::PodSummary;
use crate::state::State;

/// The largest `/metrics` answer read from a proxy.
const MAX_SCRAPE_BYTES: usize = 16 << 20;

#[derive(Clone)]
pub struct Embedded {
    window: Arc<Mutex<Window>>,
}

impl Embedded {
    /// Starts scraping the meshed pods of each new state every `interval`,
    /// keeping `retention` of samples.
    pub fn start(
        state: watch::Receiver<Arc<State>>,
        interval: Duration,
        retention: Duration,
    ) -> anyhow::Result<Self> {
        // reqwest is built without a default crypto provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(interval.max(Duration::from_secs(1)))
            .build()?;
        let embedded = Embedded {
            window: Arc::new(Mutex::new(Window::new(retention))),
        };
        tokio::spawn(scrape_every(
            interval,
            state,
            client,
            embedded.window.clone(),
        ));
        Ok(embedded)
    }

    /// A source over samples recorded already, scraping nothing.
    #[cfg(test)]
    pub fn with_window(window: Window) -> Self {
        Embedded {
            window: Arc::new(Mutex::new(window)),
        }
    }

    fn check_window(&self, window: Duration) -> Result<(), SourceError> {
        let retention = self.window.lock().expect("window lock").retention();
        if window > retention {
            return Err(SourceError::Query(format!(
                "the controller keeps {}s of samples; ask for a shorter window (-t) or \
                 use a Prometheus (--prometheus-url)",
                retention.as_secs()
            )));
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl MetricsSource for Embedded {
    async fn rate(
        &self,
        selector: &Selector,
        by: &[&str],
        window: Duration,
    ) -> Result<Vec<Series>, SourceError> {
        self.check_window(window)?;
        let samples = self.window.lock().expect("window lock");
        Ok(samples.rate(selector, by, window, Instant::now()))
    }

    async fn quantile(
        &self,
        q: f64,
        selector: &Selector,
        by: &[&str],
        window: Duration,
    ) -> Result<Vec<Series>, SourceError> {
        self.check_window(window)?;
        let samples = self.window.lock().expect("window lock");
        Ok(samples.quantile(q, selector, by, window, Instant::now()))
    }

    async fn latest(&self, selector: &Selector, by: &[&str]) -> Result<Vec<Series>, SourceError> {
        Ok(self
            .window
            .lock()
            .expect("window lock")
            .latest(selector, by))
    }
}

/// The labels Linkerd's Prometheus configuration gives a pod's series.
pub fn pod_labels(pod: &PodSummary) -> Labels {
    let mut labels = Labels::new();
    labels.insert("namespace".into(), pod.pod.namespace.clone());
    labels.insert("pod".into(), pod.pod.name.clone());
    labels.insert("serviceaccount".into(), pod.service_account.clone());
    if let Some(owner) = &pod.owner {
        labels.insert(owner.kind.label().into(), owner.name.clone());
    }
    labels
}

async fn scrape_every(
    interval: Duration,
    state: watch::Receiver<Arc<State>>,
    client: reqwest::Client,
    window: Arc<Mutex<Window>>,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let targets: Vec<(String, Labels)> = {
            let state = state.borrow();
            state
                .index
                .pod_summaries()
                .filter(|pod| pod.meshed)
                .filter_map(|pod| Some((pod.admin?.to_string(), pod_labels(&pod))))
                .collect()
        };
        let scrapes = targets.iter().map(|(addr, _)| scrape(&client, addr));
        let texts = futures_util::future::join_all(scrapes).await;
        let at = Instant::now();
        let mut window = window.lock().expect("window lock");
        let live: BTreeSet<String> = targets.iter().map(|(addr, _)| addr.clone()).collect();
        window.retain(&live);
        for ((addr, labels), text) in targets.into_iter().zip(texts) {
            match text {
                Ok(text) => window.record(&addr, labels, at, parse(&text)),
                Err(error) => tracing::debug!(%addr, %error, "cannot scrape a proxy"),
            }
        }
    }
}

async fn scrape(client: &reqwest::Client, addr: &str) -> Result<String, String> {
    let mut response = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("/metrics answered {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_SCRAPE_BYTES {
            return Err(format!("/metrics is larger than {MAX_SCRAPE_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| "/metrics is not UTF-8".to_string())
}
