#![no_main]
//! The server's request decoding: any bytes give a typed answer, never a panic.
libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = haltstate_server::fuzzing::request_bodies(bytes);
});
