//! [`Scopes`]: the one resource an app-only token is for, normalized into the cache key's second half.

use std::fmt;
use std::sync::Arc;

use crate::error::Error;
use crate::error::echo;

const DEFAULT_SUFFIX: &str = "/.default";
/// Longer scopes are not resource identifiers; Entra would refuse them anyway.
const MAX_SCOPE_LEN: usize = 1024;

/// The scope list of one app-only token request, normalized.
///
/// The client-credentials grant takes exactly one resource, in its `{resource}/.default`
/// form. Duplicates and order do not matter (`["x/.default", "x/.default"]` is one scope),
/// so equal requests share one cache entry. Several resources, a delegated scope such as
/// `https://graph.microsoft.com/User.Read`, whitespace or control characters are rejected
/// before any request is made, with the fix in the message.
///
/// ```
/// use azure_cross_tenant::Scopes;
///
/// let s = Scopes::parse(&["https://vault.azure.net/.default"])?;
/// assert_eq!(s.as_str(), "https://vault.azure.net/.default");
/// assert_eq!(s.resource(), "https://vault.azure.net");
///
/// let err = Scopes::parse(&["https://vault.azure.net/.default", "https://storage.azure.com/.default"]);
/// assert!(err.is_err());
/// # Ok::<(), azure_cross_tenant::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scopes(Arc<str>);

impl Scopes {
    /// Normalizes `scopes`; see the type's docs for what is accepted.
    pub fn parse<S: AsRef<str>>(scopes: &[S]) -> Result<Self, Error> {
        normalized(scopes).map(Self::from_normalized)
    }

    /// Wraps a scope [`normalized`] already accepted.
    pub(crate) fn from_normalized(scope: &str) -> Self {
        Self(scope.into())
    }
}

/// The one scope `scopes` normalize to, borrowed (a cache lookup allocates nothing), or
/// why they are not one `{resource}/.default`.
pub(crate) fn normalized<S: AsRef<str>>(scopes: &[S]) -> Result<&str, Error> {
    let joined = || {
        echo(
            &scopes
                .iter()
                .map(AsRef::as_ref)
                .collect::<Vec<_>>()
                .join(" "),
        )
    };
    let invalid = |reason: String| Error::InvalidScope {
        scopes: joined(),
        reason: reason.into_boxed_str(),
    };
    let mut it = scopes.iter().map(AsRef::as_ref);
    let first = it.next().ok_or_else(|| {
            invalid("no scope given; ask for one `{resource}/.default`, e.g. https://vault.azure.net/.default".into())
        })?;
    check_one(first).map_err(&invalid)?;
    for other in it {
        check_one(other).map_err(&invalid)?;
        if other != first {
            return Err(invalid(format!(
                "an app-only token is for one resource, but {:?} and {:?} were asked together (AADSTS70011); request one token per resource",
                echo(first),
                echo(other)
            )));
        }
    }
    Ok(first)
}

impl Scopes {
    /// The normalized scope, as sent in the token request (`{resource}/.default`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The resource the token is for: the scope without `/.default`.
    pub fn resource(&self) -> &str {
        &self.0[..self.0.len() - DEFAULT_SUFFIX.len()]
    }
}

fn check_one(scope: &str) -> Result<(), String> {
    if scope.is_empty() {
        return Err("a scope is empty".into());
    }
    if scope.len() > MAX_SCOPE_LEN {
        return Err(format!("a scope is longer than {MAX_SCOPE_LEN} bytes"));
    }
    if scope.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(
            "a scope holds whitespace or a control character; pass each scope as its own string"
                .into(),
        );
    }
    match scope.strip_suffix(DEFAULT_SUFFIX) {
        // `https://management.core.windows.net//.default` (a resource ending in `/`) is a
        // legitimate, documented form, so only an empty resource is refused.
        Some(resource) if !resource.trim_matches('/').is_empty() => Ok(()),
        Some(_) => Err(
            "`/.default` needs a resource before it, e.g. https://vault.azure.net/.default".into(),
        ),
        None => {
            let resource = scope.rsplit_once('/').map_or(scope, |(r, _)| r);
            Err(format!(
                "the client-credentials grant takes only `{{resource}}/.default` scopes (AADSTS1002012); did you mean {:?}?",
                echo(&format!(
                    "{}{DEFAULT_SUFFIX}",
                    resource.trim_end_matches('/')
                ))
            ))
        }
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scopes({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_collapse_into_one_scope() {
        let s = Scopes::parse(&["api://x/.default", "api://x/.default"]).unwrap();
        assert_eq!(s, Scopes::parse(&["api://x/.default"]).unwrap());
        assert_eq!(s.resource(), "api://x");
    }

    #[test]
    fn several_resources_are_rejected_naming_both() {
        let err = Scopes::parse(&["https://a/.default", "https://b/.default"]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("https://a/.default") && msg.contains("https://b/.default"),
            "{msg}"
        );
        assert!(matches!(err, Error::InvalidScope { .. }));
    }

    #[test]
    fn a_delegated_scope_gets_a_suggestion() {
        let err = Scopes::parse(&["https://graph.microsoft.com/User.Read"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("https://graph.microsoft.com/.default"),
            "{err}"
        );
    }

    #[test]
    fn malformed_scopes_are_rejected() {
        let empty: [&str; 0] = [];
        assert!(Scopes::parse(&empty).is_err());
        for bad in [
            "",
            "/.default",
            "//.default",
            "https://a/.default x",
            "a\n/.default",
        ] {
            assert!(Scopes::parse(&[bad]).is_err(), "{bad:?} accepted");
        }
        assert!(Scopes::parse(&[format!("{}/.default", "a".repeat(2000))]).is_err());
    }
}
