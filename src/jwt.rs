//! JOSE, as this crate reads and writes it: splitting a compact JWS, strict base64url,
//! the header (always a JSON object) and the claims, and RS256/PS256 signatures.
//!
//! Everything here handles untrusted input: nothing panics, and errors never repeat the
//! token.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::ValidationError;

/// Tokens longer than this are not Entra tokens; they are refused before decoding.
pub(crate) const MAX_TOKEN_LEN: usize = 64 * 1024;

/// The claims of an Entra access token that matter for cross-tenant app-only access.
///
/// ```
/// use azure_cross_tenant::insecure::decode_unverified;
///
/// // header {"alg":"none"} . payload {"tid":"t","oid":"o","aud":"https://vault.azure.net","appid":"a","ver":"1.0"} . no signature
/// let token = "eyJhbGciOiJub25lIn0.eyJ0aWQiOiJ0Iiwib2lkIjoibyIsImF1ZCI6Imh0dHBzOi8vdmF1bHQuYXp1cmUubmV0IiwiYXBwaWQiOiJhIiwidmVyIjoiMS4wIn0.";
/// let claims = decode_unverified(token)?;
/// assert_eq!(claims.tid.as_deref(), Some("t"));
/// assert_eq!(claims.aud, vec!["https://vault.azure.net".to_string()]);
/// assert_eq!(claims.app_id(), Some("a"));
/// # Ok::<(), azure_cross_tenant::ValidationError>(())
/// ```
#[derive(Clone, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Claims {
    /// The issuing tenant.
    #[serde(default, deserialize_with = "opt_string")]
    pub tid: Option<String>,
    /// The object id of the service principal in the issuing tenant.
    #[serde(default, deserialize_with = "opt_string")]
    pub oid: Option<String>,
    /// The audience(s): the resource the token is for.
    #[serde(default, deserialize_with = "string_or_list")]
    pub aud: Vec<String>,
    /// The issuer.
    #[serde(default, deserialize_with = "opt_string")]
    pub iss: Option<String>,
    /// The client id of the app (v1 tokens).
    #[serde(default, deserialize_with = "opt_string")]
    pub appid: Option<String>,
    /// The client id of the app (v2 tokens).
    #[serde(default, deserialize_with = "opt_string")]
    pub azp: Option<String>,
    /// App roles granted to the app in the issuing tenant.
    #[serde(default, deserialize_with = "string_or_list")]
    pub roles: Vec<String>,
    /// Token version, `1.0` or `2.0`.
    #[serde(default, deserialize_with = "opt_string")]
    pub ver: Option<String>,
    /// `app` for app-only tokens (an optional claim).
    #[serde(default, deserialize_with = "opt_string")]
    pub idtyp: Option<String>,
    /// Subject.
    #[serde(default, deserialize_with = "opt_string")]
    pub sub: Option<String>,
    /// Expiry, seconds since the epoch.
    #[serde(default, deserialize_with = "opt_secs")]
    pub exp: Option<u64>,
    /// Not before, seconds since the epoch.
    #[serde(default, deserialize_with = "opt_secs")]
    pub nbf: Option<u64>,
    /// Issued at, seconds since the epoch.
    #[serde(default, deserialize_with = "opt_secs")]
    pub iat: Option<u64>,
    /// Every claim, as decoded.
    #[serde(skip)]
    pub raw: Map<String, Value>,
}

impl Claims {
    /// The app's client id: `appid` (v1) or `azp` (v2).
    pub fn app_id(&self) -> Option<&str> {
        self.appid.as_deref().or(self.azp.as_deref())
    }
}

impl fmt::Debug for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Claims hold no secret, but `raw` can be long; show the fields that matter.
        f.debug_struct("Claims")
            .field("tid", &self.tid)
            .field("oid", &self.oid)
            .field("aud", &self.aud)
            .field("iss", &self.iss)
            .field("app_id", &self.app_id())
            .field("roles", &self.roles)
            .field("ver", &self.ver)
            .field("idtyp", &self.idtyp)
            .field("exp", &self.exp)
            .finish_non_exhaustive()
    }
}

fn opt_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        _ => None,
    })
}

fn opt_secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)),
        _ => None,
    })
}

fn string_or_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => vec![s],
        Value::Array(a) => a
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    })
}

/// Decodes a JWT's claims **without checking its signature, issuer or lifetime**.
///
/// For diagnostics only (logging which tenant and app a token is for, the local answer to
/// pasting tokens into a website). Never base an access decision on its result.
pub fn decode_unverified(token: &str) -> Result<Claims, ValidationError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(ValidationError::Malformed("longer than 64 KiB"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ValidationError::Malformed("not three dot-separated parts"));
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|_| ValidationError::Malformed("a part is not base64url"))
    };
    let header: Value = serde_json::from_slice(&decode(header)?)
        .map_err(|_| ValidationError::Malformed("the header is not JSON"))?;
    if !header.is_object() {
        return Err(ValidationError::Malformed(
            "the header is not a JSON object",
        ));
    }
    let payload = decode(payload)?;
    let raw: Map<String, Value> = serde_json::from_slice(&payload)
        .map_err(|_| ValidationError::Malformed("the payload is not a JSON object"))?;
    claims_from(raw)
}

/// Typed claims read from the payload map by reference (no copy of the map), which then
/// becomes `raw`.
pub(crate) fn claims_from(raw: Map<String, Value>) -> Result<Claims, ValidationError> {
    let value = Value::Object(raw);
    let mut claims = Claims::deserialize(&value)
        .map_err(|_| ValidationError::Malformed("the payload has unexpected claim types"))?;
    if let Value::Object(raw) = value {
        claims.raw = raw;
    }
    Ok(claims)
}

/// Claims of `token` if it is a JWT; `None` for opaque tokens.
pub(crate) fn peek_claims(token: &str) -> Option<Claims> {
    decode_unverified(token).ok()
}

/// The claims of a token that has a JWT's shape (three dot-separated parts), decoded
/// strictly; `Ok(None)` for any other shape (an opaque or encrypted token). A token that
/// looks like a JWT but does not decode is an error, so a check on its claims cannot be
/// skipped by mangling it.
pub(crate) fn claims_if_jwt(token: &str) -> Result<Option<Claims>, ValidationError> {
    if token.split('.').count() != 3 {
        return Ok(None);
    }
    decode_unverified(token).map(Some)
}

/// The RSA signature schemes this crate signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RsaAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PSS with SHA-256.
    Ps256,
}

/// A compact JWS of `header` and `claims`, signed with `key`. The caller's header names
/// the algorithm; this only signs. Fails only if the RNG or the key does.
pub(crate) fn sign(
    header: &Value,
    claims: &Value,
    key: &aws_lc_rs::rsa::KeyPair,
    alg: RsaAlg,
) -> Result<String, aws_lc_rs::error::Unspecified> {
    use aws_lc_rs::signature::{self, RsaEncoding};
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let padding: &'static dyn RsaEncoding = match alg {
        RsaAlg::Ps256 => &signature::RSA_PSS_SHA256,
        RsaAlg::Rs256 => &signature::RSA_PKCS1_SHA256,
    };
    let mut sig = vec![0; key.public_modulus_len()];
    key.sign(
        padding,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

/// Whether `signature` is an RS256 signature of `message` by the RSA key (`n`, `e`),
/// both big-endian without leading zeros.
pub(crate) fn verify_rs256(n: &[u8], e: &[u8], message: &[u8], signature: &[u8]) -> bool {
    aws_lc_rs::signature::RsaPublicKeyComponents { n, e }
        .verify(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            message,
            signature,
        )
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for t in [
            "",
            "a.b",
            "a.b.c.d",
            "!!.!!.!!",
            "e30.bm90anNvbg.",
            "W10.e30.",
        ] {
            assert!(decode_unverified(t).is_err(), "{t}");
        }
        assert!(decode_unverified("e30.e30.").is_ok());
    }

    #[test]
    fn audience_may_be_a_list() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"aud":["a","b"],"roles":"r","exp":1.5}"#);
        let c = decode_unverified(&format!("e30.{payload}.")).unwrap();
        assert_eq!(c.aud, vec!["a", "b"]);
        assert_eq!(c.roles, vec!["r"]);
        assert_eq!(c.exp, Some(1));
    }
}

/// The parts of a JWT, split once.
pub(crate) struct Parts<'a> {
    pub(crate) header: &'a str,
    pub(crate) payload: &'a str,
    pub(crate) signature: &'a str,
}

pub(crate) fn split(token: &str) -> Result<Parts<'_>, ValidationError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(ValidationError::Malformed("longer than 64 KiB"));
    }
    let mut it = token.split('.');
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(header), Some(payload), Some(signature), None) => Ok(Parts {
            header,
            payload,
            signature,
        }),
        _ => Err(ValidationError::Malformed("not three dot-separated parts")),
    }
}

pub(crate) fn b64_json<T: serde::de::DeserializeOwned>(
    part: &str,
    what: &'static str,
) -> Result<T, ValidationError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| ValidationError::Malformed("a part is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|_| ValidationError::Malformed(what))
}

/// The header fields that matter; everything else (`jku`, `x5u`, `x5c`, `jwk`) is
/// ignored on purpose: keys come only from the tenant's published JWKS.
#[derive(Deserialize)]
pub(crate) struct Header {
    pub(crate) alg: Option<Value>,
    pub(crate) kid: Option<Value>,
    pub(crate) crit: Option<Value>,
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// JWT-shaped garbage: claims or an error, never a panic.
        #[test]
        fn arbitrary_jwt_parts_never_panic(h in proptest::collection::vec(any::<u8>(), 0..64), p in proptest::collection::vec(any::<u8>(), 0..256)) {
            let token = format!("{}.{}.x", URL_SAFE_NO_PAD.encode(h), URL_SAFE_NO_PAD.encode(p));
            let _ = decode_unverified(&token);
        }
    }
}
