//! Test plugin for the proxy's loader: a valid component that exports
//! `test:other`'s `run` instead of `weft:plugin/filter`. Loading it must fail
//! with a clear error, not a crash.

#![allow(unsafe_code)] // the generated bindings and export

wit_bindgen::generate!({
    path: "wit",
    world: "other",
});

struct Other;

impl Guest for Other {
    fn run() -> u32 {
        42
    }
}

export!(Other);
