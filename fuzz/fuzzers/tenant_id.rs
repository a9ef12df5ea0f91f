//! `TenantId` parsing: accepted ids are normalized and parse back to themselves.
#![no_main]
use azure_cross_tenant::TenantId;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(tenant) = text.parse::<TenantId>() {
        let again: TenantId = tenant.as_str().parse().expect("a normalized tenant parses");
        assert_eq!(again, tenant);
        assert!(!tenant.as_str().contains(['/', '?', '#', '%', ' ']));
    }
});
