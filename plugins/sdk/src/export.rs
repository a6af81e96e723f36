//! `export_plugin!`: connects a [`Plugin`] type to the component's `filter`
//! export. The macro only declares the storage and the exported symbols; the
//! forwarding lives in [`Slot`] so that it is ordinary, testable code.

use std::cell::RefCell;

use crate::{
    Completion, Connection, ConnectionAction, Hooks, Plugin, Request, RequestAction, Response,
    ResponseAction,
};

/// Where the exported functions keep the plugin between calls. Empty until
/// `init` succeeds; an empty slot lets everything through.
#[doc(hidden)]
pub struct Slot<P>(RefCell<Option<P>>);

impl<P: Plugin> Slot<P> {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Slot(RefCell::new(None))
    }

    pub fn init(&self, config: &str) -> Result<Hooks, String> {
        // Built before borrowing the slot: `P::init` may take its time and
        // nothing else can run meanwhile, but a failed init must leave the
        // slot empty rather than holding a plugin from an older config.
        let plugin = P::init(config);
        let hooks = plugin
            .as_ref()
            .map(|plugin| plugin.configured_hooks() & P::hooks())
            .map_err(Clone::clone);
        *self.0.borrow_mut() = plugin.ok();
        hooks
    }

    pub fn on_connection(&self, conn: &Connection) -> ConnectionAction {
        match &*self.0.borrow() {
            Some(plugin) => plugin.on_connection(conn),
            None => ConnectionAction::Allow,
        }
    }

    pub fn on_request(&self, req: &Request) -> RequestAction {
        match &*self.0.borrow() {
            Some(plugin) => plugin.on_request(req),
            None => RequestAction::Continue,
        }
    }

    pub fn on_response(&self, req: &Request, rsp: &Response) -> ResponseAction {
        match &*self.0.borrow() {
            Some(plugin) => plugin.on_response(req, rsp),
            None => ResponseAction::Continue,
        }
    }

    pub fn on_complete(&self, req: &Request, completion: &Completion) {
        if let Some(plugin) = &*self.0.borrow() {
            plugin.on_complete(req, completion);
        }
    }
}

/// Exports a [`Plugin`] type as the component's `weft:plugin/filter`.
///
/// Use it once per plugin crate (a `cdylib`), at the top level:
/// `weft_plugin_sdk::export_plugin!(MyPlugin);`
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[allow(unsafe_code)]
        const _: () = {
            ::std::thread_local! {
                // A component instance is single-threaded: this is one slot.
                static WEFT_PLUGIN: $crate::__private::Slot<$plugin> =
                    const { $crate::__private::Slot::new() };
            }

            struct WeftPluginExports;

            use ::std::string::String;
            use $crate::bindings::exports::weft::plugin::filter::Guest;

            impl Guest for WeftPluginExports {
                fn init(config: String) -> ::std::result::Result<$crate::Hooks, String> {
                    WEFT_PLUGIN.with(|slot| slot.init(&config))
                }

                fn on_connection(conn: $crate::Connection) -> $crate::ConnectionAction {
                    WEFT_PLUGIN.with(|slot| slot.on_connection(&conn))
                }

                fn on_request(
                    req: &$crate::bindings::weft::plugin::types::Request,
                ) -> $crate::RequestAction {
                    let req = $crate::Request::new(req);
                    WEFT_PLUGIN.with(|slot| slot.on_request(&req))
                }

                fn on_response(
                    req: &$crate::bindings::weft::plugin::types::Request,
                    rsp: &$crate::Response,
                ) -> $crate::ResponseAction {
                    let req = $crate::Request::new(req);
                    WEFT_PLUGIN.with(|slot| slot.on_response(&req, rsp))
                }

                fn on_complete(
                    req: &$crate::bindings::weft::plugin::types::Request,
                    completion: $crate::Completion,
                ) {
                    let req = $crate::Request::new(req);
                    WEFT_PLUGIN.with(|slot| slot.on_complete(&req, &completion))
                }
            }

            $crate::bindings::__export_weft_plugin_world!(
                WeftPluginExports with_types_in $crate::bindings
            );
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Direction, Protocol};

    /// Denies connections on port 22 once configured with `"ssh"`.
    struct NoSsh;

    impl Plugin for NoSsh {
        fn init(config: &str) -> Result<Self, String> {
            match config {
                "ssh" => Ok(NoSsh),
                other => Err(format!("unknown config {other:?}")),
            }
        }

        fn hooks() -> Hooks {
            Hooks::CONNECTION
        }

        fn on_connection(&self, conn: &Connection) -> ConnectionAction {
            if conn.local_port == 22 {
                ConnectionAction::Deny
            } else {
                ConnectionAction::Allow
            }
        }
    }

    fn ssh_connection() -> Connection {
        Connection {
            direction: Direction::Inbound,
            protocol: Protocol::Opaque,
            client_addr: "10.0.0.1:40000".to_string(),
            local_port: 22,
            peer_identity: None,
            tls: false,
        }
    }

    #[test]
    fn an_uninitialised_slot_lets_everything_through() {
        let slot = Slot::<NoSsh>::new();
        assert_eq!(
            slot.on_connection(&ssh_connection()),
            ConnectionAction::Allow
        );
    }

    #[test]
    fn init_returns_the_hooks_and_hooks_reach_the_plugin() {
        let slot = Slot::<NoSsh>::new();
        assert_eq!(slot.init("ssh"), Ok(Hooks::CONNECTION));
        assert_eq!(
            slot.on_connection(&ssh_connection()),
            ConnectionAction::Deny
        );
    }

    /// Looks at responses only when configured to.
    struct Watcher {
        responses: bool,
    }

    impl Plugin for Watcher {
        fn init(config: &str) -> Result<Self, String> {
            Ok(Watcher {
                responses: config == "responses",
            })
        }

        fn hooks() -> Hooks {
            Hooks::REQUEST | Hooks::RESPONSE
        }

        fn configured_hooks(&self) -> Hooks {
            match self.responses {
                true => Hooks::REQUEST | Hooks::RESPONSE | Hooks::CONNECTION,
                false => Hooks::REQUEST,
            }
        }
    }

    #[test]
    fn a_configuration_leaves_out_hooks_it_makes_no_ops() {
        let slot = Slot::<Watcher>::new();
        assert_eq!(slot.init(""), Ok(Hooks::REQUEST));
        assert_eq!(
            slot.init("responses"),
            Ok(Hooks::REQUEST | Hooks::RESPONSE),
            "never more than the plugin implements"
        );
    }

    #[test]
    fn a_rejected_config_empties_the_slot() {
        let slot = Slot::<NoSsh>::new();
        slot.init("ssh").unwrap();
        assert_eq!(
            slot.init("telnet"),
            Err("unknown config \"telnet\"".to_string())
        );
        assert_eq!(
            slot.on_connection(&ssh_connection()),
            ConnectionAction::Allow
        );
    }
}
