//! How a token request proves the app's identity, checked as Entra does: a client secret
//! in the body or in HTTP Basic (`client_secret_basic`, form-encoded parts), a certificate
//! assertion (PS256 with `x5t#S256` or RS256 with `x5t`), or a federated assertion matched
//! against the app's federated identity credentials.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::CredentialKind;
use crate::clock::unix_secs;
use crate::endpoints::Form;
use crate::jose::{self, Jwt};
use crate::state::{App, Directory};
use crate::wire::{EntraErr, MockRequest, err};

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
    let jwt = Jwt::parse(assertion).ok_or_else(malformed)?;
    if jwt.claims.iss.as_deref() == Some(app.client_id.as_str()) {
        let jti = check_certificate(dir, base, app, tenant, &jwt, now)?;
        return Ok(Authenticated {
            acr: "2",
            jti: Some(jti),
        });
    }
    let signed = jwt.header_str("alg") == Some("RS256")
        && jwt.header_str("kid").is_some()
        && dir
            .keys
            .verify(jwt.header_str("kid"), jwt.message, jwt.signature);
    if !signed {
        return Err(err(
            401,
            "invalid_client",
            700027,
            "Client assertion failed signature validation.",
        ));
    }
    if jwt.claims.exp.is_none_or(|exp| exp <= unix_secs(now)) {
        return Err(err(
            401,
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.",
        ));
    }
    super::federation::match_fic(dir, base, app, &jwt.claims, now)?;
    Ok(Authenticated {
        acr: "2",
        jti: None,
    })
}

/// Entra's checks of a certificate assertion: a registered certificate by thumbprint,
/// the signature with its key, `aud` = this tenant's token endpoint, `iss` = `sub` =
/// client id, the time window. Returns the `jti` (replays are refused by the caller).
fn check_certificate(
    dir: &Directory,
    base: &str,
    app: &App,
    (tid, segment): (&str, &str),
    jwt: &Jwt<'_>,
    now: SystemTime,
) -> Result<(String, SystemTime), EntraErr> {
    let claims = &jwt.claims;
    let invalid = |why: &str| {
        err(
            401,
            "invalid_client",
            700027,
            format!("Client assertion failed signature validation. {why}"),
        )
    };
    // MSAL Python pads its base64url thumbprints; Entra accepts both.
    let thumbprint = |name: &str| jwt.header_str(name).map(|t| t.trim_end_matches('='));
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
    let algorithm = match jwt.algorithm() {
        Some(alg @ (Algorithm::PS256 | Algorithm::RS256)) => alg,
        _ => return Err(invalid("Unsupported signing algorithm.")),
    };
    let key = DecodingKey::from_rsa_der(&cert.public_key);
    if !jose::verify(jwt.message, jwt.signature, &key, algorithm) {
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
    if exp.saturating_add(SKEW) <= now_secs || nbf > now_secs.saturating_add(SKEW) {
        return Err(err(
            401,
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.",
        ));
    }
    let jti = claims.jti.as_deref().unwrap_or_default();
    if jti.is_empty() || dir.seen_jti.contains_key(jti) {
        return Err(invalid("The assertion's jti was already used (replay)."));
    }
    // A hostile `exp` far in the future must not overflow the clock.
    let forget_at = SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(exp.saturating_add(SKEW)))
        .unwrap_or(now + Duration::from_secs(10 * 365 * 86_400));
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
