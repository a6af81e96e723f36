//! Cross-process tests, one binary: real weft-proxy and weft-controller
//! processes, real sockets, real clients. One binary links once, where a
//! binary per file would link the proxy, the runtime and the controller
//! sixteen times.

mod admin;
mod controller;
mod dashboard;
mod discovery;
mod errors;
mod hostile_input;
mod http1;
mod http2;
mod identity;
mod idle_connections;
mod linkerd_resources;
mod module_sources;
mod plugin_languages;
mod plugin_runtime;
mod plugins_in_proxy;
mod shipped_plugins;
mod shutdown;
mod soak;
mod stat;
mod streaming;
mod tap;
mod tcp;
mod tracing;
mod transparent;
