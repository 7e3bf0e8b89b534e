#![no_main]
//! Policy loading: any text loads or gives diagnostics that point inside the text.
libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    if let Err(error) = haltstate_authority::PolicyEngine::from_source("fuzz.cedar", text) {
        let lines = text.split('\n').count();
        for d in error.diagnostics() {
            assert!(d.line >= 1 && d.line <= lines, "line {} outside 1..={lines}", d.line);
            assert!(d.column >= 1, "column {}", d.column);
        }
        let _ = error.to_string();
    }
});
