//! The trait a plugin implements: what the proxy's `filter` export means in
//! plain Rust, with every hook defaulting to "let it through".

use crate::{
    Completion, Connection, ConnectionAction, Hooks, Request, RequestAction, Response,
    ResponseAction,
};

/// A Weft plugin. Implement it, then [`export_plugin!`](crate::export_plugin)
/// the type.
///
/// The proxy creates the plugin once per instance with [`Plugin::init`] and
/// then calls only the hooks named by [`Plugin::configured_hooks`]. Hooks take `&self`:
/// keep mutable state in a `Cell`/`RefCell` (an instance runs one call at a
/// time) or in [`shared`](crate::shared) when it must hold across instances.
pub trait Plugin: 'static {
    /// Builds the plugin from its configuration (usually JSON). An `Err`
    /// rejects the configuration; the message is shown to the operator.
    fn init(config: &str) -> Result<Self, String>
    where
        Self: Sized;

    /// The hooks this plugin implements; the proxy calls only these.
    fn hooks() -> Hooks
    where
        Self: Sized;

    /// The hooks this instance's configuration needs: all of
    /// [`Plugin::hooks`] unless a configuration makes some of them no-ops
    /// (a split with no routes), which the proxy then never enters.
    fn configured_hooks(&self) -> Hooks
    where
        Self: Sized,
    {
        Self::hooks()
    }

    /// A new connection, once its protocol is known and before anything goes
    /// upstream: authorization of opaque TCP happens here.
    fn on_connection(&self, _conn: &Connection) -> ConnectionAction {
        ConnectionAction::Allow
    }

    /// A request, before it goes upstream: change it or answer it.
    fn on_request(&self, _req: &Request) -> RequestAction {
        RequestAction::Continue
    }

    /// An upstream response, before its body streams to the client.
    fn on_response(&self, _req: &Request, _rsp: &Response) -> ResponseAction {
        ResponseAction::Continue
    }

    /// How a request ended, for telemetry.
    fn on_complete(&self, _req: &Request, _completion: &Completion) {}
}
