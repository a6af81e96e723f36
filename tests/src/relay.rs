//! A TCP relay standing in for the network between two proxies: it
//! forwards every connection to its target and keeps what clients sent,
//! so a test can see what crossed the wire.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct Relay {
    pub addr: SocketAddr,
    sent: Arc<Mutex<Vec<Vec<u8>>>>,
    open: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Relay {
    /// Listens on a free port on loopback and relays to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (connections, relaying) = (sent.clone(), open.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let recorded = {
                    let mut connections = connections.lock().unwrap();
                    connections.push(Vec::new());
                    connections.len() - 1
                };
                let task = tokio::spawn(relay(client, server, connections.clone(), recorded));
                relaying.lock().unwrap().push(task.abort_handle());
            }
        });
        Self { addr, sent, open }
    }

    /// Closes every connection relayed so far, as a network failure would.
    pub fn cut(&self) {
        for connection in self.open.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    /// What each connection's client sent so far, in connection order.
    pub fn sent(&self) -> Vec<Vec<u8>> {
        self.sent.lock().unwrap().clone()
    }
}

async fn relay(client: TcpStream, server: TcpStream, sent: Arc<Mutex<Vec<Vec<u8>>>>, index: usize) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async move {
        let mut buf = vec![0; 16 * 1024];
        while let Ok(n @ 1..) = client_read.read(&mut buf).await {
            sent.lock().unwrap()[index].extend_from_slice(&buf[..n]);
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let downstream = async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}
