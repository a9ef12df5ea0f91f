//! Entry points for the fuzz targets in `fuzz/`: one per parser of outside input. Built
//! only with `--cfg fuzzing` (cargo-fuzz sets it); not part of the API.
//!
//! Each takes the fuzzer's bytes and runs them through what the crate does with such
//! input from the network, a file or a caller, checking only that nothing panics (the
//! targets assert round trips where there is one).

use std::time::Duration;

use crate::{Discovery, Expectations, TenantId, TokenVersion};

/// Splits `data` at its first NUL byte: two inputs from one.
fn halves(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// A token endpoint answer: body, then (after a NUL) the `Retry-After` value; the first
/// byte picks the status.
pub fn token_answer(data: &[u8]) {
    let Some((status, rest)) = data.split_first() else {
        return;
    };
    let status = [200, 400, 401, 429, 500, 503][usize::from(*status) % 6];
    let (body, retry_after) = halves(rest);
    crate::authority::fuzz_answer(body, retry_after, status);
}

/// A bearer token (or any JWT): decoded without checks as `insecure::decode_unverified`
/// does, then through the validator's checks with several expectations.
pub fn jwt(data: &[u8]) {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::jwt::decode_unverified(token);
    let _ = crate::jwt::claims_if_jwt(token);
    let now = 1_800_000_000;
    let tenant: TenantId = match "72f988bf-86f1-41af-91ab-2d7cd011db47".parse() {
        Ok(t) => t,
        Err(_) => return,
    };
    let per_tenant = Expectations::new(tenant)
        .audience("https://vault.azure.net")
        .object_id("a1b2c3d4-0000-0000-0000-000000000001")
        .app_id("11111111-2222-3333-4444-555555555555")
        .role("Commands.Send");
    let shared = Expectations::any_tenant(|_| true)
        .discovery(Discovery::Organizations)
        .audience("api://11111111-2222-3333-4444-555555555555")
        .versions(&[TokenVersion::V2])
        .app_only(false)
        .clock_skew(Duration::ZERO);
    for expect in [&per_tenant, &shared] {
        crate::validate::fuzz_token(token, expect, now);
    }
}

/// OpenID metadata, then (after a NUL) a JWKS.
pub fn jwks(data: &[u8]) {
    let (metadata, jwks) = halves(data);
    crate::jwks::fuzz_documents(metadata, jwks);
}

/// The query (or `form_post` body) of an admin sign-in or consent callback.
pub fn consent_callback(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        crate::consent::fuzz_callback(text);
    }
}

/// An `Authorization` header reaching the tower layer.
#[cfg(feature = "axum")]
pub fn authorization_header(data: &[u8]) {
    crate::inbound::fuzz_authorization(data);
}

/// A `Retry-After` header value.
pub fn retry_after(data: &[u8]) {
    crate::authority::fuzz_retry_after(data);
}

/// A shared-cache (Redis) value or tombstone read back: Redis is not trusted.
pub fn sealed_value(data: &[u8]) {
    crate::l2::fuzz_value(data);
}
