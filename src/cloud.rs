//! [`Cloud`]: which Entra instance issues the tokens, and what its token-exchange audience is.

use std::net::IpAddr;

use url::Url;

use crate::error::Error;

/// An Entra cloud: where its token endpoint lives and which audience a federated
/// assertion (a managed identity token) must carry there.
///
/// A token never crosses clouds: the authority host is part of every cache key.
///
/// ```
/// use azure_cross_tenant::Cloud;
///
/// assert_eq!(Cloud::Public.authority_host().as_str(), "https://login.microsoftonline.com/");
/// assert_eq!(Cloud::UsGovernment.token_exchange_audience(), "api://AzureADTokenExchangeUSGov");
///
/// // A private endpoint or a test double; plain http only on loopback.
/// let mock = Cloud::custom("http://127.0.0.1:8080", "api://AzureADTokenExchange")?;
/// assert!(Cloud::custom("http://login.example.com", "api://x").is_err());
/// # Ok::<(), azure_cross_tenant::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Cloud {
    /// Azure public cloud: `login.microsoftonline.com`. The default.
    #[default]
    Public,
    /// Azure US Government: `login.microsoftonline.us`.
    UsGovernment,
    /// Azure operated by 21Vianet (China): `login.partner.microsoftonline.cn`.
    China,
    /// Any other authority (a sovereign cloud not listed, a private link, a mock).
    /// Build it with [`Cloud::custom`], which checks the URL.
    Custom {
        /// The authority host, ending in `/`.
        authority_host: Url,
        /// The audience a federated assertion is requested for.
        token_exchange_audience: String,
    },
}

impl Cloud {
    /// A custom cloud. `authority_host` must be `https`, or `http` on a loopback address
    /// (so a test double can run without TLS); it may carry a path prefix, but no query,
    /// fragment or credentials.
    pub fn custom(authority_host: &str, token_exchange_audience: &str) -> Result<Self, Error> {
        Ok(Self::Custom {
            authority_host: checked_authority(authority_host)?,
            token_exchange_audience: token_exchange_audience.to_owned(),
        })
    }

    /// The authority host URL, ending in `/`.
    pub fn authority_host(&self) -> &Url {
        static PUBLIC: std::sync::LazyLock<Url> =
            std::sync::LazyLock::new(|| known("https://login.microsoftonline.com/"));
        static US_GOV: std::sync::LazyLock<Url> =
            std::sync::LazyLock::new(|| known("https://login.microsoftonline.us/"));
        static CHINA: std::sync::LazyLock<Url> =
            std::sync::LazyLock::new(|| known("https://login.partner.microsoftonline.cn/"));
        match self {
            Self::Public => &PUBLIC,
            Self::UsGovernment => &US_GOV,
            Self::China => &CHINA,
            Self::Custom { authority_host, .. } => authority_host,
        }
    }

    /// The audience a managed identity (or other IdP) token must carry to be exchanged
    /// for an app token in this cloud.
    pub fn token_exchange_audience(&self) -> &str {
        match self {
            Self::Public => "api://AzureADTokenExchange",
            Self::UsGovernment => "api://AzureADTokenExchangeUSGov",
            Self::China => "api://AzureADTokenExchangeChina",
            Self::Custom {
                token_exchange_audience,
                ..
            } => token_exchange_audience,
        }
    }

    /// The scope of the access token a client sends to Azure Managed Redis or Azure Cache
    /// for Redis with Microsoft Entra authentication (`RedisEntraAuth`, feature `redis`).
    /// The public cloud's is `https://redis.azure.com/.default`; elsewhere it is the Redis
    /// resource's application id, which names the same resource in every cloud (Microsoft
    /// documents both forms).
    ///
    /// ```
    /// use azure_cross_tenant::Cloud;
    ///
    /// assert_eq!(Cloud::Public.redis_scope(), "https://redis.azure.com/.default");
    /// assert_eq!(Cloud::UsGovernment.redis_scope(), "acca5fbb-b7e4-4009-81f1-37e38fd66d78/.default");
    /// ```
    pub fn redis_scope(&self) -> &str {
        match self {
            Self::Public => "https://redis.azure.com/.default",
            Self::UsGovernment | Self::China | Self::Custom { .. } => {
                "acca5fbb-b7e4-4009-81f1-37e38fd66d78/.default"
            }
        }
    }

    /// The known cloud whose authority host is `host`, or `None` (for Redis's Entra sign-in).
    #[cfg(feature = "redis")]
    pub(crate) fn known_by_authority(host: &Url) -> Option<Self> {
        [Self::Public, Self::UsGovernment, Self::China]
            .into_iter()
            .find(|cloud| cloud.authority_host() == host)
    }

    /// The v2 token endpoint of `tenant` in this cloud.
    pub fn token_endpoint(&self, tenant: &crate::TenantId) -> Url {
        let mut url = self.authority_host().clone();
        // The tenant is validated to hold no path characters, so pushing it is safe.
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .extend([tenant.as_str(), "oauth2", "v2.0", "token"]);
        }
        url
    }

    /// The v1 admin consent URL of `tenant` for `client_id`, without redirect or state:
    /// what [`Error::NotConsented`](crate::Error::NotConsented) carries (the app's
    /// configured redirect URI receives the answer).
    pub(crate) fn admin_consent_url(&self, tenant: &str, client_id: &str) -> Url {
        let mut url = self.authority_host().clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend([tenant, "adminconsent"]);
        }
        url.query_pairs_mut().append_pair("client_id", client_id);
        url
    }
}

fn known(s: &str) -> Url {
    // These literals are constants of this file; the unit tests parse every one.
    Url::parse(s).unwrap_or_else(|_| unreachable!("built-in authority {s} is a valid URL"))
}

/// Parses and checks an authority host; used by [`Cloud::custom`] and the builders.
pub(crate) fn checked_authority(input: &str) -> Result<Url, Error> {
    let bad = |why: &str| {
        Error::InvalidConfiguration(format!(
            "authority host {:?} {why}",
            crate::error::echo(&without_userinfo(input))
        ))
    };
    let mut url = Url::parse(input).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(bad(
                "uses plain http; only https is allowed, except on a loopback address for tests",
            ));
        }
        _ => return Err(bad("must be an https URL")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// The input with anything between `://` and `@` replaced, so a password typed into
/// a URL never reaches an error message.
fn without_userinfo(input: &str) -> String {
    match (input.find("://"), input.rfind('@')) {
        (Some(start), Some(at)) if at > start => {
            format!("{}://<redacted>{}", &input[..start], &input[at..])
        }
        _ => input.to_owned(),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_clouds_have_their_hosts_and_audiences() {
        for (cloud, host, aud) in [
            (
                Cloud::Public,
                "login.microsoftonline.com",
                "api://AzureADTokenExchange",
            ),
            (
                Cloud::UsGovernment,
                "login.microsoftonline.us",
                "api://AzureADTokenExchangeUSGov",
            ),
            (
                Cloud::China,
                "login.partner.microsoftonline.cn",
                "api://AzureADTokenExchangeChina",
            ),
        ] {
            assert_eq!(cloud.authority_host().host_str(), Some(host));
            assert_eq!(cloud.token_exchange_audience(), aud);
        }
    }

    #[test]
    fn token_endpoint_is_per_tenant() {
        let t: crate::TenantId = "contoso.com".parse().unwrap();
        assert_eq!(
            Cloud::Public.token_endpoint(&t).as_str(),
            "https://login.microsoftonline.com/contoso.com/oauth2/v2.0/token"
        );
        let c = Cloud::custom("https://proxy.example/entra", "api://x").unwrap();
        assert_eq!(
            c.token_endpoint(&t).as_str(),
            "https://proxy.example/entra/contoso.com/oauth2/v2.0/token"
        );
    }

    #[test]
    fn plain_http_is_only_for_loopback() {
        assert!(Cloud::custom("http://127.0.0.1:1", "a").is_ok());
        assert!(Cloud::custom("http://[::1]:1", "a").is_ok());
        assert!(Cloud::custom("http://localhost:1", "a").is_ok());
        for bad in [
            "http://10.0.0.1",
            "http://login.microsoftonline.com",
            "ftp://x",
            "https://u:p@x",
            "https://x/?q",
            "not a url",
        ] {
            let err = Cloud::custom(bad, "a").unwrap_err();
            assert!(matches!(err, Error::InvalidConfiguration(_)), "{bad}");
        }
    }

    #[test]
    fn credentials_in_a_rejected_authority_are_not_repeated() {
        let err = Cloud::custom("https://user:hunter2@x/?q=1", "a").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("credentials") && !msg.contains("hunter2"),
            "{msg}"
        );
    }
}
