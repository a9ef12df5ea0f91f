//! One fetch of signing keys: the OpenID metadata of a tenant (or of `organizations` /
//! `common`), then the JWKS it names, which must sit on the authority's own origin.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use url::Url;

use crate::http::{BodyError, MAX_BODY, SendError, read_capped, send_no_redirect};
use crate::jwt::RsaPublicKey;

/// One verification key, with Entra's non-standard `issuer` (possibly the
/// `{tenantid}` template) that binds it to a tenant.
pub(crate) struct Key {
    pub(crate) public: RsaPublicKey,
    pub(crate) issuer: Option<String>,
}

/// What one fetch learned: the issuer (possibly the `{tenantid}` template) and the keys
/// by `kid`.
pub(crate) struct KeySet {
    pub(crate) issuer: String,
    pub(crate) keys: HashMap<String, Arc<Key>>,
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<RawJwk>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: Option<String>,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    n: Option<String>,
    e: Option<String>,
    issuer: Option<String>,
}

/// Fetches metadata and keys from one authority.
#[derive(Clone)]
pub(crate) struct Fetcher {
    pub(crate) http: reqwest::Client,
    pub(crate) authority: Url,
}

impl Fetcher {
    /// The keys of `segment` (a tenant GUID, `organizations` or `common`) for v1 or v2
    /// tokens. `shared` documents must carry the `{tenantid}` issuer template.
    pub(crate) async fn fetch(
        &self,
        segment: &str,
        v2: bool,
        shared: bool,
    ) -> Result<KeySet, String> {
        let metadata: Metadata = self.get_json(self.metadata_url(segment, v2)?).await?;
        if shared && !metadata.issuer.contains("{tenantid}") {
            return Err(format!(
                "the {segment} metadata's issuer has no {{tenantid}} template, so it cannot bind tokens to a tenant"
            ));
        }
        let jwks_url = Url::parse(&metadata.jwks_uri)
            .map_err(|_| "the metadata's jwks_uri is not a URL".to_owned())?;
        // Keys come only from the authority's own origin (scheme, host and port): never
        // from another port or plain http on the same host, never from a URL a token names.
        if jwks_url.origin() != self.authority.origin() {
            return Err(format!(
                "the metadata's jwks_uri is on another origin ({}) than the authority ({})",
                jwks_url.origin().ascii_serialization(),
                self.authority.origin().ascii_serialization()
            ));
        }
        let jwks: Jwks = self.get_json(jwks_url).await?;
        let keys = signing_keys(jwks);
        if keys.is_empty() {
            return Err("the JWKS holds no RSA signing key".into());
        }
        Ok(KeySet {
            issuer: metadata.issuer,
            keys,
        })
    }

    fn metadata_url(&self, segment: &str, v2: bool) -> Result<Url, String> {
        let mut url = self.authority.clone();
        {
            let mut segs = url
                .path_segments_mut()
                .map_err(|_| "the authority cannot hold a path".to_owned())?;
            segs.pop_if_empty().push(segment);
            if v2 {
                segs.push("v2.0");
            }
            segs.extend([".well-known", "openid-configuration"]);
        }
        Ok(url)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: Url) -> Result<T, String> {
        // No per-request timeout: the caller bounds the whole fetch (metadata and keys).
        let response = send_no_redirect(self.http.get(url.clone()))
            .await
            .map_err(|e| match e {
                SendError::Transport(e) => format!("GET {url}: {e}"),
                redirected @ SendError::Redirected { .. } => format!("GET {url}: {redirected}"),
            })?;
        if !response.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", response.status().as_u16()));
        }
        let body = read_capped(response).await.map_err(|e| match e {
            BodyError::TooLarge => format!("GET {url}: body over {MAX_BODY} bytes"),
            BodyError::Transport(e) => format!("GET {url}: {e}"),
        })?;
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not the expected JSON ({e})"))
    }
}

/// The RSA signing keys of a JWKS by `kid`; others are skipped. Entra's keys carry no
/// `alg`, so none is required.
fn signing_keys(jwks: Jwks) -> HashMap<String, Arc<Key>> {
    let mut keys = HashMap::new();
    for jwk in jwks.keys {
        if jwk.kty.as_deref() != Some("RSA") || jwk.use_.as_deref().is_some_and(|u| u != "sig") {
            continue;
        }
        let (Some(kid), Some(n), Some(e)) = (jwk.kid, jwk.n, jwk.e) else {
            continue;
        };
        if let Some(public) = RsaPublicKey::from_jwk(&n, &e) {
            keys.insert(
                kid,
                Arc::new(Key {
                    public,
                    issuer: jwk.issuer,
                }),
            );
        }
    }
    keys
}

/// The two documents a fetch reads, from untrusted bytes: metadata, then the key set.
#[cfg(fuzzing)]
pub(crate) fn fuzz_documents(metadata: &[u8], jwks: &[u8]) {
    if let Ok(m) = serde_json::from_slice::<Metadata>(metadata) {
        let _ = Url::parse(&m.jwks_uri);
    }
    if let Ok(j) = serde_json::from_slice::<Jwks>(jwks) {
        let _ = signing_keys(j);
    }
}
