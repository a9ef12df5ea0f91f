//! How a token request proves the app's identity, checked as Entra does: a client secret
//! in the body or in HTTP Basic (`client_secret_basic`, form-encoded parts), a certificate
//! assertion (PS256 with `x5t#S256` or RS256 with `x5t`), or a federated assertion matched
//! against the app's federated identity credentials.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;

use crate::clock::unix_secs;
use crate::testing::CredentialKind;
use crate::testing::endpoints::Form;
use crate::testing::state::{App, Directory};
use crate::testing::wire::{EntraErr, MockRequest, err};

pub(crate) const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The credential a token request carries.
#[derive(Default)]
pub(crate) struct ClientAuth {
    pub(crate) client_id: Option<String>,
    pub(crate) secret: Option<String>,
    pub(crate) assertion: Option<String>,
    pub(crate) assertion_type: Option<String>,
    pub(crate) basic: bool,
}

impl ClientAuth {
    /// Reads the credential from the `Authorization: Basic` header and the form. Both at
    /// once is an `invalid_request` (RFC 6749 section 2.3: one method per request).
    pub(crate) fn read(request: &MockRequest, form: &Form) -> Result<Self, EntraErr> {
        let mut auth = Self {
            client_id: form.get("client_id").map(str::to_owned),
            secret: form.get("client_secret").map(str::to_owned),
            assertion: form.get("client_assertion").map(str::to_owned),
            assertion_type: form.get("client_assertion_type").map(str::to_owned),
            basic: false,
        };
        let Some(header) = request.header("authorization") else {
            return Ok(auth);
        };
        let malformed = || {
            err(
                401,
                "invalid_client",
                7000216,
                "The Authorization header is not valid HTTP Basic client authentication (RFC 6749 section 2.3.1: base64 of form-encoded client_id ':' client_secret).",
            )
        };
        let encoded = match header.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => rest.trim(),
            _ => return Err(malformed()),
        };
        let decoded = STANDARD.decode(encoded).map_err(|_| malformed())?;
        let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
        let form_decode = |s: &str| -> String {
            url::form_urlencoded::parse(format!("v={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let (id, secret) = (form_decode(id), form_decode(secret));
        if auth.secret.is_some() || auth.assertion.is_some() {
            return Err(err(
                400,
                "invalid_request",
                9002313,
                "The request authenticates the client twice: HTTP Basic and credentials in the body. Use one method (RFC 6749 section 2.3).",
            ));
        }
        if let Some(body_id) = &auth.client_id
            && !body_id.eq_ignore_ascii_case(&id)
        {
            return Err(err(
                400,
                "invalid_request",
                9002313,
                "The client_id in the body differs from the one in the Authorization header.",
            ));
        }
        auth.client_id = Some(id);
        auth.secret = Some(secret);
        auth.basic = true;
        Ok(auth)
    }

    pub(crate) fn kind(&self) -> CredentialKind {
        match (&self.secret, &self.assertion) {
            (Some(_), _) if self.basic => CredentialKind::SecretBasic,
            (Some(_), _) => CredentialKind::Secret,
            (None, Some(_)) => CredentialKind::Assertion,
            (None, None) => CredentialKind::None,
        }
    }
}

/// What a successful authentication leaves behind: an assertion `jti` to remember.
pub(crate) struct Authenticated {
    /// `"1"` for a secret, `"2"` for a certificate or assertion (`appidacr`/`azpacr`).
    pub(crate) acr: &'static str,
    pub(crate) jti: Option<(String, SystemTime)>,
}

/// Checks the credential against `app`, for a request to tenant `tid`.
pub(crate) fn authenticate(
    dir: &Directory,
    base: &str,
    app: &App,
    tid: &str,
    segment: &str,
    auth: &ClientAuth,
) -> Result<Authenticated, EntraErr> {
    let now = dir.now();
    let client_id = &app.client_id;
    match auth.kind() {
        CredentialKind::None => Err(err(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )),
        CredentialKind::Secret | CredentialKind::SecretBasic => {
            let given = auth.secret.as_deref().unwrap_or_default();
            match app.secrets.iter().find(|s| s.value == given) {
                None => Err(err(
                    401,
                    "invalid_client",
                    7000215,
                    format!(
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                    ),
                )),
                Some(s) if s.expires <= now => Err(err(
                    401,
                    "invalid_client",
                    7000222,
                    format!(
                        "The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app."
                    ),
                )),
                Some(_) => Ok(Authenticated {
                    acr: "1",
                    jti: None,
                }),
            }
        }
        CredentialKind::Assertion => {
            if auth.assertion_type.as_deref() != Some(ASSERTION_TYPE) {
                return Err(err(
                    400,
                    "invalid_request",
                    50027,
                    "Invalid client_assertion_type.",
                ));
            }
            let assertion = auth.assertion.as_deref().unwrap_or_default();
            check_assertion(dir, base, app, (tid, segment), assertion, now)
        }
    }
}

fn malformed() -> EntraErr {
    err(
        400,
        "invalid_request",
        50027,
        "Invalid JWT token. The token is malformed.",
    )
}

fn check_assertion(
    dir: &Directory,
    base: &str,
    app: &App,
    tenant: (&str, &str),
    assertion: &str,
    now: SystemTime,
) -> Result<Authenticated, EntraErr> {
    let claims = crate::jwt::decode_unverified(assertion).map_err(|_| malformed())?;
    let header = jwt_header(assertion).ok_or_else(malformed)?;
    let (message, sig) = assertion.rsplit_once('.').ok_or_else(malformed)?;
    let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| malformed())?;
    if claims.iss.as_deref() == Some(app.client_id.as_str()) {
        let jti = check_certificate(dir, base, app, tenant, &header, message, &sig, &claims, now)?;
        return Ok(Authenticated {
            acr: "2",
            jti: Some(jti),
        });
    }
    let signed = header["alg"] == "RS256"
        && dir
            .keys
            .verify(header["kid"].as_str(), message.as_bytes(), &sig)
        && header["kid"].is_string();
    if !signed {
        return Err(err(
            401,
            "invalid_client",
            700027,
            "Client assertion failed signature validation.",
        ));
    }
    if claims.exp.is_none_or(|exp| exp <= unix_secs(now)) {
        return Err(err(
            400,
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.",
        ));
    }
    super::federation::match_fic(dir, base, app, &claims, now)?;
    Ok(Authenticated {
        acr: "2",
        jti: None,
    })
}

/// Entra's checks of a certificate assertion: a registered certificate by thumbprint,
/// the signature with its key, `aud` = this tenant's token endpoint, `iss` = `sub` =
/// client id, the time window. Returns the `jti` (replays are refused by the caller).
#[allow(clippy::too_many_arguments)]
fn check_certificate(
    dir: &Directory,
    base: &str,
    app: &App,
    (tid, segment): (&str, &str),
    header: &Value,
    message: &str,
    sig: &[u8],
    claims: &crate::Claims,
    now: SystemTime,
) -> Result<(String, SystemTime), EntraErr> {
    use aws_lc_rs::signature::{self, RsaPublicKeyComponents};
    let invalid = |why: &str| {
        err(
            401,
            "invalid_client",
            700027,
            format!("Client assertion failed signature validation. {why}"),
        )
    };
    // MSAL Python pads its base64url thumbprints; Entra accepts both.
    let thumbprint = |name: &str| header[name].as_str().map(|t| t.trim_end_matches('='));
    let cert = app.certs.iter().find(|c| {
        thumbprint("x5t#S256") == Some(c.x5t_s256.as_str())
            || thumbprint("x5t") == Some(c.x5t.as_str())
    });
    let Some(cert) = cert else {
        return Err(invalid(&format!(
            "Key was not found. The certificate with the presented thumbprint is not registered on application '{}'.",
            app.client_id
        )));
    };
    let algorithm: &'static signature::RsaParameters = match header["alg"].as_str() {
        Some("PS256") => &signature::RSA_PSS_2048_8192_SHA256,
        Some("RS256") => &signature::RSA_PKCS1_2048_8192_SHA256,
        _ => return Err(invalid("Unsupported signing algorithm.")),
    };
    let key = RsaPublicKeyComponents {
        n: &cert.n,
        e: &cert.e,
    };
    if key.verify(algorithm, message.as_bytes(), sig).is_err() {
        return Err(invalid(
            "The signature does not match the registered certificate.",
        ));
    }
    let aud_ok = claims
        .aud
        .iter()
        .any(|aud| is_token_endpoint_of(dir, base, (tid, segment), aud));
    if !aud_ok {
        return Err(invalid(&format!(
            "The audience claim '{}' is not this tenant's token endpoint ({base}{tid}/oauth2/v2.0/token).",
            claims.aud.join(",")
        )));
    }
    if claims.sub.as_deref() != Some(app.client_id.as_str()) {
        return Err(invalid("The sub claim must be the client id."));
    }
    const SKEW: u64 = 300;
    let now_secs = unix_secs(now);
    let exp = claims.exp.unwrap_or(0);
    let nbf = claims.nbf.or(claims.iat).unwrap_or(0);
    if exp + SKEW <= now_secs || nbf > now_secs + SKEW {
        return Err(err(
            400,
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.",
        ));
    }
    let jti = claims
        .raw
        .get("jti")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if jti.is_empty() || dir.seen_jti.contains_key(jti) {
        return Err(invalid("The assertion's jti was already used (replay)."));
    }
    let forget_at = SystemTime::UNIX_EPOCH + Duration::from_secs(exp + SKEW);
    Ok((jti.to_owned(), forget_at))
}

/// Whether `aud` is the v2 or v1 token endpoint of tenant `tid` (or of the path segment
/// the request used, e.g. `organizations`) on this mock's origin.
fn is_token_endpoint_of(
    dir: &Directory,
    base: &str,
    (tid, segment): (&str, &str),
    aud: &str,
) -> bool {
    let Some(path) = aud.strip_prefix(base) else {
        return false;
    };
    let segs: Vec<&str> = path.split('/').collect();
    match segs.as_slice() {
        [seg, "oauth2", "v2.0", "token"] | [seg, "oauth2", "token"] => {
            seg.eq_ignore_ascii_case(segment) || dir.resolve_tenant(seg).as_deref() == Some(tid)
        }
        _ => false,
    }
}

/// The JSON header of a compact JWT, if it is an object.
pub(crate) fn jwt_header(token: &str) -> Option<Value> {
    let header = token.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(header).ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .filter(Value::is_object)
}
