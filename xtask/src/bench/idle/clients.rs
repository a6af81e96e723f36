//! Idle keep-alive clients: a connection that sends one request, reads the
//! whole answer and then stays open, saying nothing. HTTP/1.1, and HTTP/2
//! with prior knowledge spoken frame by frame (one request on stream 1),
//! so that ten thousand of them cost this process only their sockets.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

use crate::bench::fixed_rate::connection::Connection;
use crate::harness::HTTP_TIMEOUT;

/// The protocol an idle client spoke before falling silent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
}

impl Protocol {
    pub fn label(self) -> &'static str {
        match self {
            Self::Http1 => "HTTP/1.1",
            Self::Http2 => "HTTP/2",
        }
    }
}

/// An open connection that has had its answer.
pub enum Idle {
    Http1 { _connection: Connection },
    Http2 { _stream: TcpStream },
}

/// Opens a connection to `addr`, sends one `GET /` for `authority` and
/// reads its 200; any other answer is an error.
pub fn open(protocol: Protocol, addr: SocketAddr, authority: &str) -> io::Result<Idle> {
    match protocol {
        Protocol::Http1 => {
            let mut connection = Connection::open(addr, HTTP_TIMEOUT).map_err(io::Error::other)?;
            let request = format!("GET / HTTP/1.1\r\nHost: {authority}\r\n\r\n");
            let answer = connection.exchange(request.as_bytes())?;
            if answer.status != 200 {
                return Err(io::Error::other(format!("answered {}", answer.status)));
            }
            Ok(Idle::Http1 {
                _connection: connection,
            })
        }
        Protocol::Http2 => {
            let mut stream = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT)?;
            stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
            stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
            stream.set_nodelay(true)?;
            stream.write_all(&http2_request(authority))?;
            read_http2_answer(&mut stream)?;
            Ok(Idle::Http2 { _stream: stream })
        }
    }
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
/// HPACK's static table entry 8, `:status: 200`, as servers send it.
const STATUS_200: u8 = 0x88;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).expect("a small frame");
    let mut frame = length.to_be_bytes()[1..].to_vec();
    frame.extend([kind, flags]);
    frame.extend(stream.to_be_bytes());
    frame.extend(payload);
    frame
}

/// The preface, empty SETTINGS and `GET /` on stream 1, its header block
/// from HPACK's static table (`:method: GET`, `:scheme: http`, `:path: /`)
/// and `:authority` as a literal.
fn http2_request(authority: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x86, 0x84, 0x01];
    block.push(u8::try_from(authority.len()).expect("a short authority"));
    block.extend(authority.as_bytes());
    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame(SETTINGS, 0, 0, &[]));
    bytes.extend(frame(HEADERS, END_STREAM | END_HEADERS, 1, &block));
    bytes
}

/// Reads frames until stream 1 ends, acknowledging the server's SETTINGS
/// and PINGs on the way; the response must be a 200.
fn read_http2_answer(stream: &mut TcpStream) -> io::Result<()> {
    let mut status_200 = false;
    loop {
        let mut head = [0u8; 9];
        stream.read_exact(&mut head)?;
        let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags) = (head[3], head[4]);
        let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0; length];
        stream.read_exact(&mut payload)?;
        match kind {
            SETTINGS if flags & ACK == 0 => stream.write_all(&frame(SETTINGS, ACK, 0, &[]))?,
            PING if flags & ACK == 0 => stream.write_all(&frame(PING, ACK, 0, &payload))?,
            GOAWAY => return Err(io::Error::other("GOAWAY before the answer")),
            RST_STREAM if id == 1 => return Err(io::Error::other("the request was reset")),
            HEADERS if id == 1 && !status_200 => status_200 = payload.first() == Some(&STATUS_200),
            _ => {}
        }
        if id == 1 && matches!(kind, HEADERS | DATA) && flags & END_STREAM != 0 {
            return if status_200 {
                Ok(())
            } else {
                Err(io::Error::other("answered other than 200"))
            };
        }
    }
}
