//! cargo-fuzz entry point for `weft_fuzz::plugin_config`; the body lives in the
//! library so the stable corpus replay runs exactly the same checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_fuzz::plugin_config(data));
