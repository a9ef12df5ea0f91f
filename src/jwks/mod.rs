//! Per-tenant signing keys: OpenID metadata (issuer, `jwks_uri`) and the JWKS it points
//! to, cached per (tenant, token version), refetched on an unknown `kid` at most once per
//! interval (single flight), old keys kept when a fetch fails.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use url::Url;

use crate::clock::SharedClock;
use crate::error::ValidationError;
use crate::http::{BodyError, MAX_BODY, read_capped};

/// One verification key, with Entra's non-standard `issuer` (which jsonwebtoken's `Jwk`
/// drops, hence this type).
pub(crate) struct Key {
    pub(crate) decoding: DecodingKey,
    pub(crate) issuer: Option<String>,
}

/// What one fetch learned about a tenant for one token version.
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

/// The keys of one (tenant, version), and when they were last fetched.
struct Slot {
    current: RwLock<Option<Arc<KeySet>>>,
    last_fetch: Mutex<Option<SystemTime>>,
    /// Single flight for fetches of this slot.
    fetching: tokio::sync::Mutex<()>,
}

/// Keys of every tenant validated so far, for one authority.
pub(crate) struct JwksCache {
    http: reqwest::Client,
    authority: Url,
    clock: SharedClock,
    refetch_interval: Duration,
    slots: Mutex<HashMap<(String, bool), Arc<Slot>>>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("authority", &self.authority.as_str())
            .field("refetch_interval", &self.refetch_interval)
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    pub(crate) fn new(
        http: reqwest::Client,
        authority: Url,
        clock: SharedClock,
        refetch_interval: Duration,
    ) -> Self {
        Self {
            http,
            authority,
            clock,
            refetch_interval,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, tid: &str, v2: bool) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .entry((tid.to_owned(), v2))
            .or_insert_with(|| {
                Arc::new(Slot {
                    current: RwLock::new(None),
                    last_fetch: Mutex::new(None),
                    fetching: tokio::sync::Mutex::new(()),
                })
            })
            .clone()
    }

    /// The key `kid` of tenant `tid` and the tenant's issuer, fetching metadata and keys
    /// when the tenant is new or the `kid` unknown (at most once per interval).
    pub(crate) async fn key(
        &self,
        tid: &str,
        v2: bool,
        kid: &str,
    ) -> Result<(Arc<Key>, Arc<KeySet>), ValidationError> {
        let slot = self.slot(tid, v2);
        if let Some(found) = lookup(&slot, kid) {
            return Ok(found);
        }
        let _flight = slot.fetching.lock().await;
        // Someone else's fetch may have brought it while we waited.
        if let Some(found) = lookup(&slot, kid) {
            return Ok(found);
        }
        let now = self.clock.now();
        let recently = slot
            .last_fetch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|at| now.duration_since(at).unwrap_or_default() < self.refetch_interval);
        let have_keys = slot
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_some();
        if recently && have_keys {
            return Err(ValidationError::UnknownKey {
                kid: crate::error::echo(kid),
            });
        }
        *slot.last_fetch.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
        match self.fetch(tid, v2).await {
            Ok(set) => {
                tracing::debug!(
                    tenant = tid,
                    v2,
                    keys = set.keys.len(),
                    "fetched signing keys"
                );
                *slot.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(set));
            }
            Err(reason) => {
                tracing::warn!(tenant = tid, v2, reason = %reason, "could not fetch signing keys; keeping the old ones");
                if !have_keys {
                    return Err(ValidationError::KeysUnavailable {
                        tenant: tid.to_owned(),
                        reason,
                    });
                }
            }
        }
        lookup(&slot, kid).ok_or_else(|| ValidationError::UnknownKey {
            kid: crate::error::echo(kid),
        })
    }

    async fn fetch(&self, tid: &str, v2: bool) -> Result<KeySet, String> {
        let mut metadata_url = self.authority.clone();
        {
            let mut segs = metadata_url
                .path_segments_mut()
                .map_err(|_| "authority cannot hold a path".to_owned())?;
            segs.pop_if_empty().push(tid);
            if v2 {
                segs.push("v2.0");
            }
            segs.extend([".well-known", "openid-configuration"]);
        }
        let metadata: Metadata = self.get_json(metadata_url).await?;
        let jwks_url = Url::parse(&metadata.jwks_uri)
            .map_err(|_| "metadata's jwks_uri is not a URL".to_owned())?;
        // Keys come only from the authority's own host: never from a URL a token names.
        if jwks_url.host_str() != self.authority.host_str() {
            return Err(format!(
                "metadata's jwks_uri points at another host ({})",
                jwks_url.host_str().unwrap_or("")
            ));
        }
        let jwks: Jwks = self.get_json(jwks_url).await?;
        let mut keys = HashMap::new();
        for jwk in jwks.keys {
            // Only RSA signing keys; Entra's carry no `alg`, so none is required.
            if jwk.kty.as_deref() != Some("RSA") || jwk.use_.as_deref().is_some_and(|u| u != "sig")
            {
                continue;
            }
            let (Some(kid), Some(n), Some(e)) = (jwk.kid, jwk.n, jwk.e) else {
                continue;
            };
            if let Ok(decoding) = DecodingKey::from_rsa_components(&n, &e) {
                keys.insert(
                    kid,
                    Arc::new(Key {
                        decoding,
                        issuer: jwk.issuer,
                    }),
                );
            }
        }
        if keys.is_empty() {
            return Err("the JWKS holds no RSA signing key".into());
        }
        Ok(KeySet {
            issuer: metadata.issuer,
            keys,
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: Url) -> Result<T, String> {
        let response = self
            .http
            .get(url.clone())
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
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

fn lookup(slot: &Slot, kid: &str) -> Option<(Arc<Key>, Arc<KeySet>)> {
    let current = slot.current.read().unwrap_or_else(|p| p.into_inner());
    let set = current.as_ref()?;
    set.keys.get(kid).map(|k| (k.clone(), set.clone()))
}
