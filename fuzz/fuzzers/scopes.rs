//! `Scopes` parsing: accepted scopes are one `{resource}/.default`, normalized, and parse
//! back to themselves.
#![no_main]
use azure_cross_tenant::Scopes;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let parts: Vec<&str> = text.split('\n').collect();
    if let Ok(scopes) = Scopes::parse(&parts) {
        let again = Scopes::parse(&[scopes.as_str()]).expect("normalized scopes parse");
        assert_eq!(again, scopes);
        assert!(scopes.as_str().ends_with("/.default"));
    }
});
