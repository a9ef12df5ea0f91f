//! A `mock-entra` scenario document applied to a running mock: applied or refused with a
//! message, never a panic. One mock serves the whole run and is reset after each input.
#![no_main]

use std::sync::OnceLock;

use mock_entra::MockEntra;

static MOCK: OnceLock<Option<MockEntra>> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(document) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let mock = MOCK.get_or_init(|| MockEntra::builder().try_start().ok());
    if let Some(mock) = mock {
        let _ = mock.apply_scenario(&document);
        mock.reset();
    }
});
