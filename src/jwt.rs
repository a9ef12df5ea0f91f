//! JOSE, as this crate reads and writes it: splitting a compact JWS, strict base64url,
//! the header (always a JSON object) and the claims, and RS256/PS256 signatures.
//!
//! Everything here handles untrusted input: nothing panics, and errors never repeat the
//! token.

use std::fmt;
use std::sync::Arc;

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
    /// Every claim, as decoded (shared: cloning `Claims` does not copy it).
    #[serde(skip)]
    pub raw: Arc<Map<String, Value>>,
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
///
/// The token must still be well formed: three parts of unpadded base64url, a header that
/// is a JSON object, claims that are a JSON object.
pub fn decode_unverified(token: &str) -> Result<Claims, ValidationError> {
    Jws::parse(token).map(|jws| jws.claims)
}

/// Typed claims read from the payload map by reference (no copy of the map), which then
/// becomes `raw`.
pub(crate) fn claims_from(raw: Map<String, Value>) -> Result<Claims, ValidationError> {
    let value = Value::Object(raw);
    let mut claims = Claims::deserialize(&value)
        .map_err(|_| ValidationError::Malformed("the payload has unexpected claim types"))?;
    if let Value::Object(raw) = value {
        claims.raw = Arc::new(raw);
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

/// A compact JWS, split and decoded: the one way this crate reads a JWT.
pub(crate) struct Jws<'a> {
    pub(crate) header: Header,
    pub(crate) claims: Claims,
    /// `header.payload`: the bytes the signature covers.
    pub(crate) signed: &'a [u8],
    /// The signature, still base64url.
    pub(crate) signature: &'a str,
}

impl<'a> Jws<'a> {
    /// Splits `token` into three parts and decodes the header and the claims. Refuses
    /// anything over [`MAX_TOKEN_LEN`], any part that is not unpadded base64url, a header
    /// or payload that is not a JSON object (RFC 7515 requires objects; a JSON array
    /// would otherwise fill the fields by position).
    pub(crate) fn parse(token: &'a str) -> Result<Self, ValidationError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(ValidationError::Malformed("longer than 64 KiB"));
        }
        let mut it = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            return Err(ValidationError::Malformed("not three dot-separated parts"));
        };
        let header = read_header(header)?;
        let claims = claims_from(json_object(payload, "the payload is not a JSON object")?)?;
        let signed_len = token.len() - signature.len() - 1;
        Ok(Self {
            header,
            claims,
            signed: &token.as_bytes()[..signed_len],
            signature,
        })
    }
}

/// The header fields that matter; everything else (`jku`, `x5u`, `x5c`, `jwk`) is
/// ignored on purpose: keys come only from the tenant's published JWKS.
pub(crate) struct Header {
    pub(crate) alg: Option<Value>,
    pub(crate) kid: Option<Value>,
    pub(crate) crit: Option<Value>,
}

/// Reads a JOSE header (its base64url part): it must be a JSON object. Every header this
/// crate reads goes through here.
pub(crate) fn read_header(part: &str) -> Result<Header, ValidationError> {
    let mut map = json_object(part, "the header is not a JSON object")?;
    Ok(Header {
        alg: map.remove("alg"),
        kid: map.remove("kid"),
        crit: map.remove("crit"),
    })
}

/// Strict base64url: the URL-safe alphabet, no padding, no stray bits.
pub(crate) fn b64url(part: &str) -> Result<Vec<u8>, ValidationError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| ValidationError::Malformed("a part is not unpadded base64url"))
}

fn json_object(part: &str, what: &'static str) -> Result<Map<String, Value>, ValidationError> {
    serde_json::from_slice(&b64url(part)?).map_err(|_| ValidationError::Malformed(what))
}

/// An RSA public key, parsed once, for RS256 verification.
pub(crate) struct RsaPublicKey(aws_lc_rs::signature::ParsedPublicKey);

impl RsaPublicKey {
    /// The key of a JWK's `n` and `e` (base64url), or `None` when they do not form an
    /// RSA key. Keys under 2048 bits are refused when verifying.
    pub(crate) fn from_jwk(n: &str, e: &str) -> Option<Self> {
        let (n, e) = (b64url(n).ok()?, b64url(e).ok()?);
        aws_lc_rs::signature::RsaPublicKeyComponents {
            n: strip_leading_zeros(&n),
            e: strip_leading_zeros(&e),
        }
        .to_parsed_public_key(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256)
        .ok()
        .map(Self)
    }

    /// Whether `signature` (base64url) is this key's RS256 signature of `message`.
    pub(crate) fn verify_rs256(&self, message: &[u8], signature: &str) -> bool {
        b64url(signature).is_ok_and(|sig| self.0.verify_sig(message, &sig).is_ok())
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
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

    #[test]
    fn a_header_must_be_a_json_object() {
        let claims = URL_SAFE_NO_PAD.encode(br#"{"tid":"t"}"#);
        for header in [r#"["RS256","kid",null]"#, r#""RS256""#, "null", "42"] {
            let token = format!("{}.{claims}.", URL_SAFE_NO_PAD.encode(header));
            assert_eq!(
                decode_unverified(&token),
                Err(ValidationError::Malformed(
                    "the header is not a JSON object"
                )),
                "{header}"
            );
        }
    }

    #[test]
    fn base64url_is_strict_no_padding_no_standard_alphabet() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        // `{"a":"??>"}` encodes with `+`/`/` in the standard alphabet and needs padding.
        let json = br#"{"a":"??>","tid":"tt"}"#;
        let header = URL_SAFE_NO_PAD.encode(b"{}");
        let ok = format!("{header}.{}.", URL_SAFE_NO_PAD.encode(json));
        assert!(decode_unverified(&ok).is_ok());
        for payload in [STANDARD.encode(json), URL_SAFE.encode(json)] {
            assert_ne!(payload, URL_SAFE_NO_PAD.encode(json));
            let token = format!("{header}.{payload}.");
            assert_eq!(
                decode_unverified(&token),
                Err(ValidationError::Malformed(
                    "a part is not unpadded base64url"
                )),
                "{payload}"
            );
        }
    }
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
