//! The mock's HTTP face: routes each request to the token endpoint, OpenID metadata or
//! JWKS, and answers the way Entra does (status codes, error JSON, headers).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

use crate::testing::directory::{Directory, Identity, KNOWN_RESOURCES, entra_timestamp};
use crate::testing::{CredentialKind, MockFault, RecordedRequest};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The one responder mounted on the wiremock server.
pub(crate) struct Responder(pub(crate) Arc<Mutex<Directory>>);

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut dir = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let segments: Vec<&str> = request
            .url
            .path_segments()
            .map(|s| s.collect())
            .unwrap_or_default();
        let method = request.method.as_str();
        match (method, segments.as_slice()) {
            ("POST", [tenant, "oauth2", "v2.0", "token"]) => token(&mut dir, tenant, request),
            ("GET", [tenant, "v2.0", ".well-known", "openid-configuration"]) => {
                dir.metadata_requests += 1;
                metadata(&dir, tenant, true)
            }
            ("GET", [tenant, ".well-known", "openid-configuration"]) => {
                dir.metadata_requests += 1;
                metadata(&dir, tenant, false)
            }
            ("GET", [tenant, "discovery", "v2.0", "keys"]) => {
                dir.jwks_requests += 1;
                jwks(&dir, tenant, true)
            }
            ("GET", ["metadata", "identity", "oauth2", "token"]) => identity(&mut dir, request, false),
            ("GET", ["msi", "token"]) => identity(&mut dir, request, true),
            ("GET", [tenant, "discovery", "keys"]) => {
                dir.jwks_requests += 1;
                jwks(&dir, tenant, false)
            }
            _ => ResponseTemplate::new(404).set_body_json(json!({
                "error": "not_found",
                "error_description": format!("MockEntra does not serve {method} {}", request.url.path()),
            })),
        }
    }
}

/// What a token request asked, pulled from its form.
struct Form {
    grant_type: Option<String>,
    client_id: Option<String>,
    scope: Option<String>,
    secret: Option<String>,
    assertion_type: Option<String>,
    assertion: Option<String>,
}

impl Form {
    fn parse(body: &[u8]) -> Self {
        let mut form = Self {
            grant_type: None,
            client_id: None,
            scope: None,
            secret: None,
            assertion_type: None,
            assertion: None,
        };
        for (k, v) in url::form_urlencoded::parse(body) {
            let slot = match &*k {
                "grant_type" => &mut form.grant_type,
                "client_id" => &mut form.client_id,
                "scope" => &mut form.scope,
                "client_secret" => &mut form.secret,
                "client_assertion_type" => &mut form.assertion_type,
                "client_assertion" => &mut form.assertion,
                _ => continue,
            };
            *slot = Some(v.into_owned());
        }
        form
    }

    fn credential(&self) -> CredentialKind {
        match (&self.secret, &self.assertion) {
            (Some(_), _) => CredentialKind::Secret,
            (None, Some(_)) => CredentialKind::Assertion,
            (None, None) => CredentialKind::None,
        }
    }
}

/// An Entra error answer under construction.
struct EntraErr {
    status: u16,
    error: &'static str,
    code: u32,
    message: String,
}

fn err(status: u16, error: &'static str, code: u32, message: impl Into<String>) -> EntraErr {
    EntraErr {
        status,
        error,
        code,
        message: message.into(),
    }
}

fn header<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Entra's error JSON, with the ids support asks for.
pub(crate) fn error_response(
    now: SystemTime,
    status: u16,
    error: &str,
    code: u32,
    message: &str,
    correlation_id: Option<&str>,
) -> ResponseTemplate {
    let trace_id = uuid::Uuid::new_v4().to_string();
    let correlation_id = correlation_id
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let timestamp = entra_timestamp(now);
    ResponseTemplate::new(status)
        .insert_header("x-ms-request-id", trace_id.as_str())
        .insert_header("cache-control", "no-store, no-cache")
        .set_body_json(json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {message}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}"
            ),
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }))
}

fn token(dir: &mut Directory, tenant_segment: &str, request: &Request) -> ResponseTemplate {
    let form = Form::parse(&request.body);
    let correlation_id = header(request, "client-request-id").map(str::to_owned);
    let echo_id =
        header(request, "return-client-request-id").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let resolved = dir.resolve_tenant(tenant_segment);
    let now = dir.clock.now();

    let outcome = match &resolved {
        Some(tid) => match dir.take_fault(tid) {
            Some(fault) => Err(Outcome::Fault(fault)),
            None => issue(dir, tid, &form).map_err(Outcome::Entra),
        },
        None => Err(Outcome::Entra(unknown_tenant(tenant_segment))),
    };
    let (mut response, status, delay) = match outcome {
        Ok(body) => (ResponseTemplate::new(200).set_body_json(body), 200, None),
        Err(Outcome::Entra(e)) => (
            error_response(
                now,
                e.status,
                e.error,
                e.code,
                &e.message,
                correlation_id.as_deref(),
            ),
            e.status,
            None,
        ),
        Err(Outcome::Fault(fault)) => {
            let tid = resolved.clone().unwrap_or_default();
            fault_response(dir, &tid, &form, fault, now, correlation_id.as_deref())
        }
    };
    if echo_id && let Some(id) = &correlation_id {
        response = response.insert_header("client-request-id", id.as_str());
    }
    let delay = delay.unwrap_or(Duration::ZERO) + dir.latency;
    if !delay.is_zero() {
        response = response.set_delay(delay);
    }
    dir.log.push(RecordedRequest {
        tenant: tenant_segment.to_owned(),
        tenant_id: resolved,
        client_id: form.client_id.clone(),
        scope: form.scope.clone(),
        grant_type: form.grant_type.clone(),
        client_request_id: correlation_id,
        credential: form.credential(),
        status,
    });
    response
}

enum Outcome {
    Entra(EntraErr),
    Fault(MockFault),
}

fn unknown_tenant(segment: &str) -> EntraErr {
    let lower = segment.to_ascii_lowercase();
    if matches!(lower.as_str(), "common" | "organizations" | "consumers") {
        err(
            400,
            "invalid_request",
            9001023,
            "The grant type is not supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.",
        )
    } else {
        err(
            400,
            "invalid_request",
            90002,
            format!(
                "Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        )
    }
}

fn fault_response(
    dir: &mut Directory,
    tid: &str,
    form: &Form,
    fault: MockFault,
    now: SystemTime,
    correlation_id: Option<&str>,
) -> (ResponseTemplate, u16, Option<Duration>) {
    let raw = |status: u16, body: Vec<u8>| {
        (
            ResponseTemplate::new(status).set_body_raw(body, "application/json"),
            status,
            None,
        )
    };
    match fault {
        MockFault::Throttle { retry_after } => {
            let mut r = error_response(
                now,
                429,
                "temporarily_unavailable",
                90055,
                "The tenant is being throttled; retry after the interval in Retry-After.",
                correlation_id,
            );
            if let Some(after) = retry_after {
                r = r.insert_header("retry-after", after.as_secs().to_string().as_str());
            }
            (r, 429, None)
        }
        MockFault::ServerError { status } => (
            error_response(
                now,
                status,
                "temporarily_unavailable",
                50033,
                "The service is temporarily unavailable.",
                correlation_id,
            ),
            status,
            None,
        ),
        MockFault::Error {
            status,
            error,
            code,
            message,
        } => (
            error_response(now, status, &error, code, &message, correlation_id),
            status,
            None,
        ),
        MockFault::Latency(d) => {
            let (r, status) = match issue(dir, tid, form) {
                Ok(body) => (ResponseTemplate::new(200).set_body_json(body), 200),
                Err(e) => (
                    error_response(now, e.status, e.error, e.code, &e.message, correlation_id),
                    e.status,
                ),
            };
            (r, status, Some(d))
        }
        MockFault::Body { status, body } => raw(status, body),
        MockFault::Empty => raw(200, Vec::new()),
        MockFault::NotJson => raw(200, b"<html><body>Proxy error</body></html>".to_vec()),
        MockFault::Truncated => raw(
            200,
            br#"{"token_type":"Bearer","expires_in":3599,"access_token":"eyJ0eXAiOiJKV1Qi"#
                .to_vec(),
        ),
        MockFault::WrongTypes => raw(
            200,
            br#"{"token_type":"Bearer","expires_in":{"seconds":3599},"access_token":42}"#.to_vec(),
        ),
        MockFault::Oversized => {
            let mut body = br#"{"token_type":"Bearer","expires_in":3599,"access_token":""#.to_vec();
            body.resize(body.len() + 2 * 1024 * 1024, b'a');
            body.extend_from_slice(br#""}"#);
            raw(200, body)
        }
    }
}

/// Runs Entra's checks in Entra's order and issues a token, or says which check failed.
fn issue(dir: &Directory, tid: &str, form: &Form) -> Result<Value, EntraErr> {
    let missing = |name: &str| {
        err(
            400,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    };
    let grant = form
        .grant_type
        .as_deref()
        .ok_or_else(|| missing("grant_type"))?;
    if grant != "client_credentials" {
        return Err(err(
            400,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant}'."),
        ));
    }
    let client_id = form
        .client_id
        .as_deref()
        .ok_or_else(|| missing("client_id"))?
        .to_ascii_lowercase();
    let scope = form.scope.as_deref().ok_or_else(|| missing("scope"))?;
    let tenant = &dir.tenants[tid];
    let not_found = || {
        err(
            400,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tid}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        )
    };
    let app = dir.apps.get(&client_id).ok_or_else(not_found)?;
    let sp = tenant.sps.get(&client_id).ok_or_else(not_found)?;

    let resource = parse_scope(scope)?;
    let (aud, v2, resource_key) = resolve_resource(dir, tid, &resource).ok_or_else(|| {
        err(
            400,
            "invalid_resource",
            500011,
            format!("The resource principal named {resource} was not found in the tenant named {tid}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."),
        )
    })?;

    let now = dir.clock.now();
    match form.credential() {
        CredentialKind::None => {
            return Err(err(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            ));
        }
        CredentialKind::Secret => {
            let given = form.secret.as_deref().unwrap_or_default();
            match app.secrets.iter().find(|s| s.value == given) {
                None => {
                    return Err(err(
                        401,
                        "invalid_client",
                        7000215,
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'.".replace("{client_id}", &client_id),
                    ));
                }
                Some(s) if s.expires <= now => {
                    return Err(err(
                        401,
                        "invalid_client",
                        7000222,
                        format!(
                            "The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app."
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        CredentialKind::Assertion => {
            if form.assertion_type.as_deref() != Some(ASSERTION_TYPE) {
                return Err(err(
                    400,
                    "invalid_request",
                    50027,
                    "Invalid client_assertion_type.",
                ));
            }
            check_federated(
                dir,
                app,
                tid,
                form.assertion.as_deref().unwrap_or_default(),
                now,
            )?;
        }
    }
    if !sp.enabled {
        return Err(err(
            400,
            "unauthorized_client",
            7000112,
            format!(
                "Application '{client_id}'({}) is disabled.",
                app.display_name
            ),
        ));
    }
    if sp.blocked_by_ca {
        return Err(err(
            400,
            "invalid_grant",
            53003,
            "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.",
        ));
    }

    let lifetime = dir.token_lifetime;
    let iat = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut claims = json!({
        "aud": aud,
        "iat": iat,
        "nbf": iat,
        "exp": iat + lifetime.as_secs(),
        "idtyp": "app",
        "oid": sp.object_id,
        "sub": sp.object_id,
        "tid": tid,
        "uti": uuid::Uuid::new_v4().simple().to_string(),
        "rh": "0.mock.",
    });
    let acr = if form.secret.is_some() { "1" } else { "2" };
    if v2 {
        claims["iss"] = json!(format!("{}{tid}/v2.0", dir.base));
        claims["azp"] = json!(client_id);
        claims["azpacr"] = json!(acr);
        claims["ver"] = json!("2.0");
    } else {
        claims["iss"] = json!(format!("https://sts.windows.net/{tid}/"));
        claims["idp"] = json!(format!("https://sts.windows.net/{}/", app.home_tenant));
        claims["appid"] = json!(client_id);
        claims["appidacr"] = json!(acr);
        claims["ver"] = json!("1.0");
    }
    if let Some(roles) = sp.roles.get(&resource_key).filter(|r| !r.is_empty()) {
        claims["roles"] = json!(roles);
    }
    let token = dir.signing_key().sign(&claims);
    let secs = lifetime.as_secs();
    let expires_in = if dir.expires_in_as_string {
        json!(secs.to_string())
    } else {
        json!(secs)
    };
    let mut body = json!({
        "token_type": "Bearer",
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": token,
    });
    if let Some(r) = dir.refresh_in {
        body["refresh_in"] = json!(r.as_secs());
    }
    Ok(body)
}

/// The one resource of a client-credentials scope, as Entra checks it.
fn parse_scope(scope: &str) -> Result<String, EntraErr> {
    let mut resources = scope.split_whitespace().map(|s| match s.strip_suffix("/.default") {
        Some(r) if !r.is_empty() => Ok(r),
        _ => Err(err(
            400,
            "invalid_scope",
            1002012,
            format!("The provided value for scope {s} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."),
        )),
    });
    let first = resources.next().ok_or_else(|| {
        err(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        )
    })??;
    for other in resources {
        if other? != first {
            return Err(err(
                400,
                "invalid_scope",
                70011,
                format!(
                    "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
                ),
            ));
        }
    }
    Ok(first.to_owned())
}

/// `(aud claim, v2?, key for role grants)` of a resource available in tenant `tid`.
fn resolve_resource(dir: &Directory, tid: &str, resource: &str) -> Option<(String, bool, String)> {
    let key = resource.trim_end_matches('/').to_ascii_lowercase();
    let tenant = &dir.tenants[tid];
    if KNOWN_RESOURCES.contains(&key.as_str()) || tenant.resources.contains(&key) {
        return Some((resource.to_owned(), false, key));
    }
    // An API exposed by an app registration: by App ID URI, `api://{client id}` or client id.
    let app = dir.apps.values().find(|a| {
        a.app_id_uri.as_ref().is_some_and(|uri| {
            uri.trim_end_matches('/').eq_ignore_ascii_case(&key)
                || key == a.client_id
                || key == format!("api://{}", a.client_id)
        })
    })?;
    // Its service principal must exist in the tenant (home tenant or consented).
    tenant
        .sps
        .contains_key(&app.client_id)
        .then(|| (app.client_id.clone(), true, key))
}

fn metadata(dir: &Directory, tenant: &str, v2: bool) -> ResponseTemplate {
    if dir.keys_unavailable {
        return ResponseTemplate::new(503);
    }
    let base = &dir.base;
    let (tid, issuer) =
        if tenant.eq_ignore_ascii_case("common") || tenant.eq_ignore_ascii_case("organizations") {
            let issuer = if v2 {
                format!("{base}{{tenantid}}/v2.0")
            } else {
                "https://sts.windows.net/{tenantid}/".to_owned()
            };
            (tenant.to_ascii_lowercase(), issuer)
        } else {
            match dir.resolve_tenant(tenant) {
                Some(tid) => {
                    let issuer = if v2 {
                        format!("{base}{tid}/v2.0")
                    } else {
                        format!("https://sts.windows.net/{tid}/")
                    };
                    (tid, issuer)
                }
                None => {
                    let e = unknown_tenant(tenant);
                    return error_response(
                        dir.clock.now(),
                        e.status,
                        e.error,
                        e.code,
                        &e.message,
                        None,
                    );
                }
            }
        };
    let (keys, token) = if v2 {
        (
            format!("{base}{tid}/discovery/v2.0/keys"),
            format!("{base}{tid}/oauth2/v2.0/token"),
        )
    } else {
        (
            format!("{base}{tid}/discovery/keys"),
            format!("{base}{tid}/oauth2/token"),
        )
    };
    ResponseTemplate::new(200).set_body_json(json!({
        "issuer": issuer,
        "jwks_uri": keys,
        "token_endpoint": token,
        "authorization_endpoint": format!("{base}{tid}/oauth2/v2.0/authorize"),
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "tenant_region_scope": "WW",
        "cloud_instance_name": "mock.entra",
    }))
}

fn jwks(dir: &Directory, tenant: &str, v2: bool) -> ResponseTemplate {
    if dir.keys_unavailable {
        return ResponseTemplate::new(503);
    }
    let base = &dir.base;
    let tid =
        if tenant.eq_ignore_ascii_case("common") || tenant.eq_ignore_ascii_case("organizations") {
            "{tenantid}".to_owned()
        } else {
            match dir.resolve_tenant(tenant) {
                Some(t) => t,
                None => {
                    let e = unknown_tenant(tenant);
                    return error_response(
                        dir.clock.now(),
                        e.status,
                        e.error,
                        e.code,
                        &e.message,
                        None,
                    );
                }
            }
        };
    let issuer = if v2 {
        format!("{base}{tid}/v2.0")
    } else {
        format!("https://sts.windows.net/{tid}/")
    };
    let keys: Vec<Value> = dir.keys.iter().map(|k| k.jwk(&issuer)).collect();
    ResponseTemplate::new(200).set_body_json(json!({ "keys": keys }))
}

/// Entra's checks of a federated assertion, in its order: signature, lifetime, the
/// issuing tenant of an Entra token, then the app's federated identity credentials.
fn check_federated(
    dir: &Directory,
    app: &crate::testing::directory::App,
    tid: &str,
    assertion: &str,
    now: SystemTime,
) -> Result<(), EntraErr> {
    use base64::Engine as _;
    let bad_signature = || {
        err(
            401,
            "invalid_client",
            700027,
            "Client assertion failed signature validation.",
        )
    };
    let claims = crate::jwt::decode_unverified(assertion).map_err(|_| {
        err(
            400,
            "invalid_request",
            50027,
            "Invalid JWT token. The token is malformed.",
        )
    })?;
    if claims.iss.as_deref() == Some(app.client_id.as_str()) {
        return check_certificate(dir, app, tid, assertion, &claims, now);
    }
    let mut parts = assertion.rsplitn(2, '.');
    let (Some(sig), Some(message)) = (parts.next(), parts.next()) else {
        return Err(bad_signature());
    };
    let header = jwt_header(assertion);
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| bad_signature())?;
    let signed = header["alg"] == "RS256"
        && dir
            .keys
            .iter()
            .any(|k| header["kid"] == k.kid.as_str() && k.verify(message.as_bytes(), &sig));
    if !signed {
        return Err(bad_signature());
    }
    let now_secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    if claims.exp.is_none_or(|exp| exp <= now_secs) {
        return Err(err(
            400,
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.",
        ));
    }
    let iss = claims.iss.clone().unwrap_or_default();
    let sub = claims.sub.clone().unwrap_or_default();
    // An Entra-issued token (a managed identity's) from outside the app's home tenant.
    if iss.starts_with(&dir.base)
        && let Some(tid) = claims.tid.as_deref()
        && tid != app.home_tenant
    {
        return Err(err(
            400,
            "invalid_client",
            700236,
            format!(
                "Entra ID tokens issued by issuer '{iss}' may not be used for federated identity credential flows for applications or managed identities registered in this tenant."
            ),
        ));
    }
    if app.fics.is_empty() {
        return Err(err(
            400,
            "invalid_client",
            70025,
            format!(
                "The client '{}'({}) has no configured federated identity credentials.",
                app.client_id, app.display_name
            ),
        ));
    }
    let by_issuer: Vec<_> = app.fics.iter().filter(|f| f.issuer == iss).collect();
    if by_issuer.is_empty() {
        return Err(err(
            400,
            "invalid_client",
            700211,
            format!(
                "No matching federated identity record found for presented assertion issuer '{iss}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion."
            ),
        ));
    }
    let by_subject: Vec<_> = by_issuer.into_iter().filter(|f| f.subject == sub).collect();
    if by_subject.is_empty() {
        return Err(err(
            400,
            "invalid_client",
            700213,
            format!(
                "No matching federated identity record found for presented assertion subject '{sub}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion."
            ),
        ));
    }
    let matched: Vec<_> = by_subject
        .into_iter()
        .filter(|f| claims.aud.contains(&f.audience))
        .collect();
    if matched.is_empty() {
        return Err(err(
            400,
            "invalid_client",
            700212,
            format!(
                "No matching federated identity record found for presented assertion audience '{}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.",
                claims.aud.join(",")
            ),
        ));
    }
    if matched.iter().all(|f| now < f.ready_at) {
        return Err(err(
            400,
            "invalid_client",
            70021,
            "No matching federated identity record found for presented assertion. Assertion Issuer, Subject and Audience match a credential that is still being provisioned.",
        ));
    }
    Ok(())
}

/// A managed identity token for `resource` and the body IMDS answers with (values as
/// strings, as IMDS sends them).
pub(crate) fn identity_token(
    dir: &Directory,
    identity: &Identity,
    resource: &str,
) -> (String, Value) {
    let now = dir
        .clock
        .now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let life = dir.identity_token_lifetime.as_secs();
    let aud = resource.trim_end_matches("/.default");
    let claims = json!({
        "aud": aud,
        "iss": format!("{}{}/v2.0", dir.base, identity.tenant),
        "iat": now, "nbf": now, "exp": now + life,
        "azp": identity.client_id,
        "appid": identity.client_id,
        "idtyp": "app",
        "oid": identity.object_id,
        "sub": identity.object_id,
        "tid": identity.tenant,
        "ver": "2.0",
        "xms_mirid": identity.resource_id,
    });
    let token = dir.signing_key().sign(&claims);
    let body = json!({
        "access_token": token,
        "client_id": identity.client_id,
        "expires_in": life.to_string(),
        "ext_expires_in": life.to_string(),
        "expires_on": (now + life).to_string(),
        "not_before": now.to_string(),
        "resource": aud,
        "token_type": "Bearer",
    });
    (token, body)
}

/// IMDS (`Metadata: true`) and App Service (`X-IDENTITY-HEADER`) token endpoints.
fn identity(dir: &mut Directory, request: &Request, app_service: bool) -> ResponseTemplate {
    dir.identity_requests += 1;
    let bad = |status: u16, error: &str, description: &str| {
        ResponseTemplate::new(status)
            .set_body_json(json!({"error": error, "error_description": description}))
    };
    if app_service {
        if header(request, "x-identity-header") != Some(dir.identity_header.as_str()) {
            return bad(
                401,
                "invalid_request",
                "X-IDENTITY-HEADER is missing or wrong",
            );
        }
    } else if header(request, "metadata") != Some("true") {
        return bad(
            400,
            "invalid_request",
            "Required metadata header not specified",
        );
    }
    if let Some(slot) = dir.identity_faults.iter_mut().find(|f| f.1 > 0) {
        slot.1 -= 1;
        let status = slot.0;
        dir.identity_faults.retain(|f| f.1 > 0);
        return bad(status, "unavailable", "scripted managed identity failure");
    }
    let query: std::collections::HashMap<String, String> =
        request.url.query_pairs().into_owned().collect();
    let Some(resource) = query.get("resource") else {
        return bad(
            400,
            "invalid_request",
            "Required query variable 'resource' is missing",
        );
    };
    let found = dir.identities.iter().find(|i| {
        query.get("client_id") == Some(&i.client_id)
            || query.get("object_id") == Some(&i.object_id)
            || query.get("principal_id") == Some(&i.object_id)
            || query.get("msi_res_id") == Some(&i.resource_id)
            || query.get("mi_res_id") == Some(&i.resource_id)
    });
    let Some(identity) = found.cloned() else {
        return bad(400, "invalid_request", "Identity not found");
    };
    ResponseTemplate::new(200).set_body_json(identity_token(dir, &identity, resource).1)
}

/// Entra's checks of a certificate assertion: a registered certificate by thumbprint,
/// the signature with its key, `aud` = this tenant's token endpoint, `iss` = `sub` =
/// client id, the time window, and no `jti` replay.
fn check_certificate(
    dir: &Directory,
    app: &crate::testing::directory::App,
    tid: &str,
    assertion: &str,
    claims: &crate::Claims,
    now: SystemTime,
) -> Result<(), EntraErr> {
    use aws_lc_rs::signature::{self, RsaPublicKeyComponents};
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let invalid = |why: &str| {
        err(
            401,
            "invalid_client",
            700027,
            format!("Client assertion failed signature validation. {why}"),
        )
    };
    let header = jwt_header(assertion);
    let cert = app.certs.iter().find(|c| {
        header["x5t#S256"].as_str() == Some(c.x5t_s256.as_str())
            || header["x5t"].as_str() == Some(c.x5t.as_str())
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
    let (message, sig) = assertion
        .rsplit_once('.')
        .ok_or_else(|| invalid("Malformed assertion."))?;
    let sig = b64
        .decode(sig)
        .map_err(|_| invalid("Malformed signature."))?;
    let key = RsaPublicKeyComponents {
        n: &cert.n,
        e: &cert.e,
    };
    if key.verify(algorithm, message.as_bytes(), &sig).is_err() {
        return Err(invalid(
            "The signature does not match the registered certificate.",
        ));
    }
    let expected_aud_ok = claims.aud.iter().any(|aud| {
        url::Url::parse(aud).ok().is_some_and(|u| {
            let segs: Vec<&str> = u.path_segments().map(|s| s.collect()).unwrap_or_default();
            aud.starts_with(&dir.base)
                && matches!(segs.as_slice(), [seg, "oauth2", "v2.0", "token"] if dir.resolve_tenant(seg).as_deref() == Some(tid))
        })
    });
    if !expected_aud_ok {
        return Err(invalid(&format!(
            "The audience claim '{}' is not this tenant's token endpoint.",
            claims.aud.join(",")
        )));
    }
    if claims.sub.as_deref() != Some(app.client_id.as_str()) {
        return Err(invalid("The sub claim must be the client id."));
    }
    let now_secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    const SKEW: u64 = 300;
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
    if jti.is_empty() || !dir.seen_jti.borrow_mut().insert(jti.to_owned()) {
        return Err(invalid("The assertion's jti was already used (replay)."));
    }
    Ok(())
}

/// The JSON header of a compact JWT, or `Null` when it has none.
fn jwt_header(token: &str) -> Value {
    use base64::Engine as _;
    token
        .split('.')
        .next()
        .and_then(|h| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|h| serde_json::from_slice(&h).ok())
        .unwrap_or(Value::Null)
}
