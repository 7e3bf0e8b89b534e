#![no_main]
//! The client's approvals-stream parsing: any line is skipped or understood, never a panic.
libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    for line in text.split('\n') {
        let _ = haltstate::__private::parse_sse_line(line);
    }
});
