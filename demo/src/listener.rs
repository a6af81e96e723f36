//! The listening socket of the servers. Callers (tests, `cargo xtask demo`)
//! may pass port 0 and learn the real address from the one line we print to
//! stdout, which doubles as the signal that connections are now accepted.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};

use crate::shutdown_signal::ShutdownSignal;

/// Accept errors such as EMFILE repeat at once; pausing keeps us from spinning.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

pub struct Listener {
    tcp: TcpListener,
    shutdown: ShutdownSignal,
}

impl Listener {
    /// Binds `addr` and prints `listening on ADDR` with the bound address.
    pub async fn bind(addr: SocketAddr) -> anyhow::Result<Self> {
        let shutdown = ShutdownSignal::install().context("installing signal handlers")?;
        let tcp = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let bound = tcp.local_addr()?;
        // Nothing else is ever written to stdout: readers may close the pipe
        // after this line.
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {bound}")?;
        stdout.flush()?;
        Ok(Self { tcp, shutdown })
    }

    /// The next connection, or `None` once SIGTERM or SIGINT arrives.
    pub async fn accept(&mut self) -> Option<TcpStream> {
        loop {
            tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok((stream, _)) => {
                        // Small responses and echoes must not wait on Nagle.
                        let _ = stream.set_nodelay(true);
                        return Some(stream);
                    }
                    Err(error) => {
                        eprintln!("weft-demo: accept failed: {error}");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    }
                },
                () = self.shutdown.recv() => return None,
            }
        }
    }
}
