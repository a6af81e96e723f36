//! Following files that a Secret or ConfigMap volume may replace: read
//! every so often, compared whole, so an atomic swap of the volume's
//! symlink is seen like an edit in place.

use std::path::PathBuf;
use std::time::Duration;

/// Calls `changed` each time the contents of `paths` differ from the last
/// read (a missing file reads as none), checking every `every`; returns
/// never.
pub async fn on_change<const N: usize>(
    paths: [PathBuf; N],
    every: Duration,
    mut changed: impl FnMut(),
) {
    let contents = || paths.each_ref().map(|path| std::fs::read(path).ok());
    let mut seen = contents();
    loop {
        tokio::time::sleep(every).await;
        let now = contents();
        if now != seen {
            seen = now;
            changed();
        }
    }
}
