//! The plugin chain from a local file, reloaded when the file's content
//! changes.
//!
//! Changes are changes of content, compared with the bytes the serving chain
//! was loaded from. A modification time cannot say that: two writes within
//! one timestamp tick share it (a tick is a second on some filesystems), so a
//! file read half-written and rejected, then completed in the same tick, was
//! never read again. And the comparison starts from the bytes the startup
//! load read, not from the file as it is when watching begins: an edit made
//! while the proxy started would otherwise be taken as already loaded.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use weft_plugins::{ChainSpec, PluginChain, Runtime};

use super::{Plugins, PluginsError};

/// How often the file is read for changes; it is small, so reading it whole
/// costs about what a stat does.
const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// Reads and loads the chain in `path`; relative module paths are relative
/// to the file.
pub fn load(runtime: &Runtime, path: &Path) -> Result<PluginChain, PluginsError> {
    load_bytes(runtime, path, &read(path)?)
}

/// Loads the chain in `path` now, at startup, and returns what it was loaded
/// from, for [`watch`] to compare the file against.
pub fn install_now(plugins: &Plugins, path: &Path) -> Result<Seen, PluginsError> {
    let bytes = read(path)?;
    plugins.install_now(&path.display().to_string(), |runtime| {
        load_bytes(runtime, path, &bytes)
    })?;
    Ok(Seen(Some(bytes)))
}

/// Reloads the chain whenever the content of `path` differs from `seen`,
/// until the process ends.
pub async fn watch(plugins: Arc<Plugins>, path: PathBuf, seen: Seen) {
    follow(plugins, path, seen, RELOAD_INTERVAL).await
}

async fn follow(plugins: Arc<Plugins>, path: PathBuf, mut seen: Seen, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(read) = seen.change(&path) else {
            continue;
        };
        let loaded = match read {
            Ok(bytes) => {
                let file = path.clone();
                let source = path.display().to_string();
                plugins
                    .install(source, move |runtime| load_bytes(runtime, &file, &bytes))
                    .await
            }
            Err(error) => Err(error),
        };
        if let Err(error) = loaded {
            tracing::error!(%error, "plugin configuration rejected; the previous chain keeps serving");
        }
    }
}

/// The chain file's content as last acted on; `None` when it could not be
/// read, so an unreadable file is reported once rather than every second.
pub struct Seen(Option<Vec<u8>>);

impl Seen {
    /// The file's content, or why it cannot be read, when that differs from
    /// what was seen last.
    fn change(&mut self, path: &Path) -> Option<Result<Vec<u8>, PluginsError>> {
        let now = read(path);
        if now.as_ref().ok() == self.0.as_ref() {
            return None;
        }
        self.0 = now.as_ref().ok().cloned();
        Some(now)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, PluginsError> {
    std::fs::read(path).map_err(|source| PluginsError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn load_bytes(runtime: &Runtime, path: &Path, bytes: &[u8]) -> Result<PluginChain, PluginsError> {
    let spec: ChainSpec = serde_json::from_slice(bytes).map_err(|source| PluginsError::Parse {
        path: path.display().to_string(),
        source,
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    Ok(runtime.load(&spec, base)?)
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::io::Write;
    use std::time::SystemTime;

    use super::*;

    /// A chain file in its own directory, removed when dropped.
    struct TestFile(PathBuf);

    impl TestFile {
        fn new(name: &str, bytes: &[u8]) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "weft-proxy-chain-file-{}-{name}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let file = Self(dir.join("plugins.json"));
            std::fs::write(&file.0, bytes).unwrap();
            file
        }

        fn modified(&self) -> SystemTime {
            std::fs::metadata(&self.0).unwrap().modified().unwrap()
        }

        /// Writes in place, as `>` or an editor does, and puts the
        /// modification time back: what a second write within one timestamp
        /// tick looks like.
        fn rewrite_within_tick(&self, bytes: &[u8], modified: SystemTime) {
            let mut file = File::create(&self.0).unwrap();
            file.write_all(bytes).unwrap();
            file.set_modified(modified).unwrap();
            assert_eq!(self.modified(), modified);
        }
    }

    impl Drop for TestFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
        }
    }

    fn changed(seen: &mut Seen, path: &Path) -> Vec<u8> {
        match seen.change(path) {
            Some(Ok(bytes)) => bytes,
            Some(Err(error)) => panic!("{error}"),
            None => panic!("no change seen"),
        }
    }

    #[test]
    fn a_rewrite_with_the_same_length_and_modification_time_is_a_change() {
        let file = TestFile::new("same-tick", br#"{"plugins":[1]}"#);
        let mut seen = Seen(Some(std::fs::read(&file.0).unwrap()));
        assert!(seen.change(&file.0).is_none(), "nothing changed yet");

        file.rewrite_within_tick(br#"{"plugins":[2]}"#, file.modified());
        assert_eq!(changed(&mut seen, &file.0), br#"{"plugins":[2]}"#);
        assert!(seen.change(&file.0).is_none(), "a change is acted on once");
    }

    #[test]
    fn a_file_read_half_written_is_read_again_when_complete() {
        let file = TestFile::new("half", br#"{"plugins":[]}"#);
        let modified = file.modified();
        let mut seen = Seen(Some(std::fs::read(&file.0).unwrap()));

        file.rewrite_within_tick(br#"{"plugins":["#, modified);
        let half = changed(&mut seen, &file.0);
        assert!(serde_json::from_slice::<ChainSpec>(&half).is_err());

        file.rewrite_within_tick(br#"{"plugins": []}"#, modified);
        assert_eq!(changed(&mut seen, &file.0), br#"{"plugins": []}"#);
    }

    #[test]
    fn an_unreadable_file_is_reported_once_and_read_when_it_returns() {
        let file = TestFile::new("gone", br#"{"plugins":[]}"#);
        let mut seen = Seen(Some(std::fs::read(&file.0).unwrap()));
        std::fs::remove_file(&file.0).unwrap();
        assert!(matches!(
            seen.change(&file.0),
            Some(Err(PluginsError::Read { .. }))
        ));
        assert!(seen.change(&file.0).is_none(), "reported once");

        std::fs::write(&file.0, br#"{"plugins":[]}"#).unwrap();
        assert_eq!(changed(&mut seen, &file.0), br#"{"plugins":[]}"#);
    }

    #[tokio::test]
    async fn an_edit_made_while_the_proxy_starts_is_loaded() {
        let file = TestFile::new("startup", br#"{"plugins":[]}"#);
        let plugins = Arc::new(Plugins::new(Path::new("")).unwrap());
        let seen = install_now(&plugins, &file.0).unwrap();
        let first = plugins.chain().expect("the startup chain");

        // After the startup load read the file, before watching begins.
        std::fs::write(&file.0, br#"{"plugins": []}"#).unwrap();
        let watching = tokio::spawn(follow(
            plugins.clone(),
            file.0.clone(),
            seen,
            Duration::from_millis(10),
        ));
        // The bound only turns a missed edit into a failure instead of a
        // hang; generous, so that a busy machine cannot reach it.
        let swapped = tokio::time::timeout(Duration::from_secs(120), async {
            while plugins
                .chain()
                .is_some_and(|chain| Arc::ptr_eq(&chain, &first))
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        watching.abort();
        assert!(swapped.is_ok(), "the edit was never loaded");
    }
}
