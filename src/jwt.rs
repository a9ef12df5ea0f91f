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
    Ok(string(Some(&Value::deserialize(d)?)))
}

fn opt_secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(secs(Some(&Value::deserialize(d)?)))
}

fn string_or_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(strings(Some(&Value::deserialize(d)?)))
}

/// A claim that must be a string; anything else is as if absent.
fn string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// Seconds since the epoch: a number (a fraction is cut, a negative one is 0).
fn secs(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)),
        _ => None,
    }
}

/// A string or a list of strings (non-strings in the list are skipped).
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
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
/// becomes `raw`. The same typing as `Claims`'s `Deserialize`.
pub(crate) fn claims_from(raw: Map<String, Value>) -> Claims {
    Claims {
        tid: string(raw.get("tid")),
        oid: string(raw.get("oid")),
        aud: strings(raw.get("aud")),
        iss: string(raw.get("iss")),
        appid: string(raw.get("appid")),
        azp: string(raw.get("azp")),
        roles: strings(raw.get("roles")),
        ver: string(raw.get("ver")),
        idtyp: string(raw.get("idtyp")),
        sub: string(raw.get("sub")),
        exp: secs(raw.get("exp")),
        nbf: secs(raw.get("nbf")),
        iat: secs(raw.get("iat")),
        raw: Arc::new(raw),
    }
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
    sign_raw(
        header.to_string().as_bytes(),
        claims.to_string().as_bytes(),
        key,
        alg,
    )
}

/// A compact JWS of these exact header and claims bytes (the mock forges tokens no
/// `Value` can hold, such as repeated members).
pub(crate) fn sign_raw(
    header: &[u8],
    claims: &[u8],
    key: &aws_lc_rs::rsa::KeyPair,
    alg: RsaAlg,
) -> Result<String, aws_lc_rs::error::Unspecified> {
    use aws_lc_rs::signature::{self, RsaEncoding};
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
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
    /// would otherwise fill the fields by position), and a header or payload repeating a
    /// member at any depth (RFC 7515 section 4, RFC 8725: readers that keep the first or
    /// the last copy would disagree about what the token says).
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
        let claims = claims_from(json_object(payload, "the payload is not a JSON object")?);
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

/// The error for a JOSE header or claims set that repeats a member.
const REPEATED: ValidationError =
    ValidationError::Malformed("the header or the claims repeat a member");

/// A base64url part holding one JSON object, no member repeated at any depth.
fn json_object(part: &str, what: &'static str) -> Result<Map<String, Value>, ValidationError> {
    strict::object(&b64url(part)?).map_err(|e| match e {
        strict::Refused::Repeated => REPEATED,
        strict::Refused::NotAnObject => ValidationError::Malformed(what),
    })
}

/// JSON as serde_json reads it into a `Value`, except that an object repeating a member
/// is an error (serde_json keeps the last copy silently). One pass, no second walk.
mod strict {
    use std::cell::Cell;
    use std::fmt;

    use serde::de::{self, DeserializeSeed, Deserializer as _, MapAccess, SeqAccess, Visitor};
    use serde_json::map::Entry;
    use serde_json::{Map, Number, Value};

    pub(super) enum Refused {
        Repeated,
        NotAnObject,
    }

    /// The JSON object `bytes` hold, with nothing after it but whitespace.
    pub(super) fn object(bytes: &[u8]) -> Result<Map<String, Value>, Refused> {
        let repeated = Cell::new(false);
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let parsed = de
            .deserialize_map(ObjectVisitor(Strict(&repeated)))
            .and_then(|map| de.end().map(|()| map));
        parsed.map_err(|_| {
            if repeated.get() {
                Refused::Repeated
            } else {
                Refused::NotAnObject
            }
        })
    }

    /// Reads any value; sets its flag when an object repeats a member.
    #[derive(Clone, Copy)]
    struct Strict<'a>(&'a Cell<bool>);

    impl<'de> DeserializeSeed<'de> for Strict<'_> {
        type Value = Value;

        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Strict<'_> {
        type Value = Value;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON value")
        }

        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }

        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::Number(v.into()))
        }

        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::Number(v.into()))
        }

        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
        }

        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_owned()))
        }

        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }

        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
            while let Some(item) = seq.next_element_seed(self)? {
                items.push(item);
            }
            Ok(Value::Array(items))
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
            members(self, map).map(Value::Object)
        }
    }

    /// The top level: an object and nothing else.
    struct ObjectVisitor<'a>(Strict<'a>);

    impl<'de> Visitor<'de> for ObjectVisitor<'_> {
        type Value = Map<String, Value>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            members(self.0, map)
        }
    }

    fn members<'de, A: MapAccess<'de>>(
        strict: Strict<'_>,
        mut access: A,
    ) -> Result<Map<String, Value>, A::Error> {
        let mut map = Map::new();
        while let Some(name) = access.next_key::<String>()? {
            match map.entry(name) {
                Entry::Vacant(slot) => {
                    slot.insert(access.next_value_seed(strict)?);
                }
                Entry::Occupied(_) => {
                    strict.0.set(true);
                    return Err(de::Error::custom("a member is repeated"));
                }
            }
        }
        Ok(map)
    }
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
    fn a_repeated_member_is_refused_at_any_depth_in_header_and_claims() {
        let enc = |s: &str| URL_SAFE_NO_PAD.encode(s);
        for (header, payload) in [
            ("{}", r#"{"tid":"a","tid":"a"}"#),
            ("{}", r#"{"tid":"a","x":{"y":1,"z":{"w":[{"v":1,"v":2}]}}}"#),
            ("{}", r#"{"a":[{"b":null,"b":null}]}"#),
            (r#"{"kid":"k","kid":"k"}"#, "{}"),
            (r#"{"alg":"none","x":1,"alg":"RS256"}"#, "{}"),
        ] {
            let token = format!("{}.{}.", enc(header), enc(payload));
            assert_eq!(
                decode_unverified(&token),
                Err(REPEATED),
                "{header} {payload}"
            );
        }
        // Not repeated: the same name in sibling objects, escapes that differ in bytes
        // only are one name (`\u0061` is `a`) and so repeated.
        let token = format!(
            "e30.{}.",
            enc(r#"{"a":{"x":1},"b":{"x":1},"c":[{"x":1},{"x":2}]}"#)
        );
        assert!(decode_unverified(&token).is_ok());
        let token = format!("e30.{}.", enc(r#"{"a":1,"\u0061":2}"#));
        assert_eq!(decode_unverified(&token), Err(REPEATED));
        // Trailing data after the object is not an object.
        let token = format!("e30.{}.", enc(r#"{"a":1} {"a":2}"#));
        assert_eq!(
            decode_unverified(&token),
            Err(ValidationError::Malformed(
                "the payload is not a JSON object"
            ))
        );
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

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(".{0,4}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Without repeated members, the strict reader reads what serde_json reads.
        #[test]
        fn the_strict_reader_agrees_with_serde_json_without_repetitions(
            members in proptest::collection::btree_map(".{0,6}", json(), 0..8)
        ) {
            let text = Value::Object(members.into_iter().collect()).to_string();
            let ours = strict::object(text.as_bytes()).ok();
            let theirs: Map<String, Value> = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(ours, Some(theirs));
        }

        /// JWT-shaped garbage: claims or an error, never a panic.
        #[test]
        fn arbitrary_jwt_parts_never_panic(h in proptest::collection::vec(any::<u8>(), 0..64), p in proptest::collection::vec(any::<u8>(), 0..256)) {
            let token = format!("{}.{}.x", URL_SAFE_NO_PAD.encode(h), URL_SAFE_NO_PAD.encode(p));
            let _ = decode_unverified(&token);
        }
    }
}
