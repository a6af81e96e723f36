//! `weft-demo tcp-echo`: an opaque-TCP upstream. Echoing until the client
//! half-closes, then half-closing back, lets tests check that the proxy
//! passes half-closes through; `--greeting` makes it a server-speaks-first
//! protocol, which the proxy can only recognise by its detection timeout.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Args;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::listener::Listener;

#[derive(Args)]
pub struct TcpEchoArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long)]
    listen: SocketAddr,
    /// Written (with a newline) as soon as a connection is accepted.
    #[arg(long)]
    greeting: Option<String>,
}

pub async fn run(args: TcpEchoArgs) -> anyhow::Result<()> {
    let mut listener = Listener::bind(args.listen).await?;
    let greeting: Option<Arc<[u8]>> = args.greeting.map(|g| format!("{g}\n").into_bytes().into());
    while let Some(stream) = listener.accept().await {
        let greeting = greeting.clone();
        tokio::spawn(async move {
            if let Err(error) = echo(stream, greeting.as_deref()).await {
                eprintln!("weft-demo: echo connection failed: {error}");
            }
        });
    }
    Ok(())
}

async fn echo(mut stream: TcpStream, greeting: Option<&[u8]>) -> std::io::Result<()> {
    if let Some(greeting) = greeting {
        stream.write_all(greeting).await?;
    }
    let (mut reader, mut writer) = stream.split();
    tokio::io::copy(&mut reader, &mut writer).await?;
    // Only our side closes here: the client may still be reading.
    writer.shutdown().await
}
