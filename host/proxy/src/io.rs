//! Byte streams the proxy wraps around sockets: replaying bytes already read
//! by protocol detection, and counting bytes for the transport metrics.

mod metered;
mod prefixed;

pub use metered::MeteredIo;
pub use prefixed::PrefixedIo;
