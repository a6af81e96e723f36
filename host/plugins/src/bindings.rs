//! The Rust side of `wit/`, generated at compile time. Generated code stays
//! in this module; the rest of the crate uses the few names re-exported here.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "weft:plugin/plugin",
    with: {
        "weft:plugin/types.request": crate::handles::RequestSlot,
        "weft:plugin/types.response": crate::handles::ResponseSlot,
    },
});

pub use exports::weft::plugin::filter::{
    Completion, Connection, ConnectionAction, Hooks, RequestAction, ResponseAction,
};
pub use weft::plugin::types::{Direction, LocalResponse, Method, Protocol};
