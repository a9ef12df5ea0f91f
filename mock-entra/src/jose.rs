//! The mock's own JOSE, independent of the library it tests: compact JWTs are split and
//! decoded here (base64url and JSON), and every signature is made and checked by
//! `jsonwebtoken`. A bug in the library's JWT code therefore cannot hide in the oracle.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

/// A compact JWS split into its parts, header and claims decoded; the signature is not
/// checked (see [`verify`]).
pub(crate) struct Jwt<'a> {
    pub(crate) header: Map<String, Value>,
    pub(crate) claims: TokenClaims,
    /// `header.payload`: what the signature covers.
    pub(crate) message: &'a str,
    /// The signature, base64url as sent.
    pub(crate) signature: &'a str,
}

impl<'a> Jwt<'a> {
    /// Three parts of unpadded base64url, a header and claims that are JSON objects; else
    /// `None`.
    pub(crate) fn parse(token: &'a str) -> Option<Self> {
        let (message, signature) = token.rsplit_once('.')?;
        let (header, payload) = message.split_once('.')?;
        if payload.contains('.') {
            return None;
        }
        Some(Self {
            header: object(header)?,
            claims: TokenClaims::from_map(object(payload)?),
            message,
            signature,
        })
    }

    /// The header's `alg`, if it names one jsonwebtoken knows.
    pub(crate) fn algorithm(&self) -> Option<Algorithm> {
        self.header.get("alg")?.as_str()?.parse().ok()
    }

    /// A header member as a string.
    pub(crate) fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }
}

/// The JSON object a base64url part decodes to.
fn object(part: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// The claims the mock reads from assertions and tokens, typed as Entra reads them: a
/// string claim of another type is absent, `aud` is a string or a list of strings, times
/// are numbers of seconds.
#[derive(Debug, Clone, Default)]
pub(crate) struct TokenClaims {
    pub(crate) iss: Option<String>,
    pub(crate) sub: Option<String>,
    pub(crate) tid: Option<String>,
    pub(crate) aud: Vec<String>,
    pub(crate) exp: Option<u64>,
    pub(crate) nbf: Option<u64>,
    pub(crate) iat: Option<u64>,
    pub(crate) jti: Option<String>,
    /// Every claim, as decoded.
    pub(crate) raw: Map<String, Value>,
}

impl TokenClaims {
    fn from_map(raw: Map<String, Value>) -> Self {
        let text = |name: &str| raw.get(name).and_then(Value::as_str).map(str::to_owned);
        let secs = |name: &str| match raw.get(name) {
            Some(Value::Number(n)) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
            _ => None,
        };
        let aud = match raw.get("aud") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        Self {
            iss: text("iss"),
            sub: text("sub"),
            tid: text("tid"),
            aud,
            exp: secs("exp"),
            nbf: secs("nbf"),
            iat: secs("iat"),
            jti: text("jti"),
            raw,
        }
    }

    /// The same claims as the library's public [`azure_cross_tenant::Claims`] value, for
    /// the mock's API (MockResource hands them to tests). Filled field by field here, so
    /// no library decoding is involved.
    pub(crate) fn to_library_claims(&self) -> azure_cross_tenant::Claims {
        let text = |name: &str| {
            self.raw
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let list = |name: &str| match self.raw.get(name) {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        let mut claims = azure_cross_tenant::Claims::default();
        claims.tid = self.tid.clone();
        claims.oid = text("oid");
        claims.aud = self.aud.clone();
        claims.iss = self.iss.clone();
        claims.appid = text("appid");
        claims.azp = text("azp");
        claims.roles = list("roles");
        claims.ver = text("ver");
        claims.idtyp = text("idtyp");
        claims.sub = self.sub.clone();
        claims.exp = self.exp;
        claims.nbf = self.nbf;
        claims.iat = self.iat;
        claims.raw = std::sync::Arc::new(self.raw.clone());
        claims
    }
}

/// jsonwebtoken's aws-lc-rs backend, named explicitly rather than through its
/// process-wide default: an application that enables both of jsonwebtoken's backends
/// (or installs another default) must not change, or break, how the mock signs.
fn provider() -> &'static jsonwebtoken::crypto::CryptoProvider {
    &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER
}

/// A compact JWS of these exact header and claims bytes, with the signature `sign` makes
/// of the signing input.
pub(crate) fn sign_raw_with(
    header: &[u8],
    claims: &[u8],
    sign: impl FnOnce(&[u8]) -> Vec<u8>,
) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = sign(message.as_bytes());
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Whether `signature` (base64url, as in a compact JWS) is `key`'s signature of
/// `message` under `algorithm`.
pub(crate) fn verify(
    message: &str,
    signature: &str,
    key: &DecodingKey,
    algorithm: Algorithm,
) -> bool {
    let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
        return false;
    };
    (provider().verifier_factory)(&algorithm, key)
        .is_ok_and(|verifier| verifier.verify(message.as_bytes(), &signature).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn parse_reads_header_and_claims_and_refuses_other_shapes() {
        let token = format!(
            "{}.{}.c2ln",
            b64(&json!({"alg": "RS256", "kid": "k"})),
            b64(&json!({"iss": "i", "aud": ["a", 1, "b"], "exp": 10.5, "nbf": -1, "tid": 7}))
        );
        let jwt = Jwt::parse(&token).unwrap();
        assert_eq!(jwt.algorithm(), Some(Algorithm::RS256));
        assert_eq!(jwt.header_str("kid"), Some("k"));
        assert_eq!(jwt.claims.iss.as_deref(), Some("i"));
        assert_eq!(jwt.claims.aud, ["a", "b"]);
        assert_eq!((jwt.claims.exp, jwt.claims.nbf), (Some(10), None));
        assert_eq!(jwt.claims.tid, None);
        assert_eq!(jwt.signature, "c2ln");
        let header = b64(&json!({"alg": "RS256"}));
        for bad in [
            String::new(),
            "a.b".into(),
            format!("{header}.{header}.s.x"),
            format!("{header}.bm90IGpzb24.s"),
            format!("{header}.{}.s", b64(&json!([1]))),
            format!("{header}=.{header}.s"),
        ] {
            assert!(Jwt::parse(&bad).is_none(), "{bad}");
        }
    }
}
