//! [`TenantId`]: the customer tenant a token is asked from, parsed once and normalized.

use std::fmt;
use std::sync::Arc;

/// The longest DNS name a tenant domain can have (RFC 1035).
const MAX_DOMAIN_LEN: usize = 253;

/// A customer tenant: its GUID (lower-cased) or one of its verified DNS domains (lower-cased).
///
/// Parsing rejects everything that is not a tenant: empty or over-long input,
/// characters that would change the token endpoint's URL path (`/`, `?`, `#`, `%`, spaces),
/// and the multi-tenant aliases `common`, `organizations` and `consumers`, which Entra
/// refuses for app-only tokens (AADSTS9001023). Cloning is a reference-count bump.
///
/// ```
/// use azure_cross_tenant::TenantId;
///
/// let guid: TenantId = "72F988BF-86F1-41AF-91AB-2D7CD011DB47".parse()?;
/// assert_eq!(guid.as_str(), "72f988bf-86f1-41af-91ab-2d7cd011db47");
/// assert!(guid.is_guid());
///
/// let domain: TenantId = "Contoso.onmicrosoft.com".parse()?;
/// assert_eq!(domain.as_str(), "contoso.onmicrosoft.com");
///
/// assert!("common".parse::<TenantId>().is_err());
/// # Ok::<(), azure_cross_tenant::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(Arc<str>);

impl TenantId {
    /// The normalized tenant, as it goes into the token endpoint's path.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this tenant was given as its GUID (rather than a domain).
    pub fn is_guid(&self) -> bool {
        is_guid(&self.0)
    }
}

/// Whether `s` has the 8-4-4-4-12 hexadecimal shape of a GUID.
pub(crate) fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Why a string is not a tenant. Kept here so this module depends on nothing; the crate's
/// [`Error`](crate::Error) turns it into `InvalidTenant` (with the input cut for messages),
/// and `TenantId`'s `FromStr` gives that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TenantError {
    /// The rejected input, whole; whoever prints it cuts it.
    pub(crate) input: String,
    /// Why it was rejected and what to pass instead.
    pub(crate) reason: &'static str,
}

impl fmt::Display for TenantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = crate::error::echo(&self.input);
        write!(f, "invalid tenant id {shown:?}: {}", self.reason)
    }
}

fn invalid(input: &str, reason: &'static str) -> TenantError {
    TenantError {
        input: input.to_owned(),
        reason,
    }
}

fn is_valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

impl TenantId {
    /// Parses and normalizes a tenant; `FromStr` (in the error module) wraps this.
    pub(crate) fn parse(s: &str) -> Result<Self, TenantError> {
        if s.is_empty() {
            return Err(invalid(
                s,
                "it is empty; use the customer's tenant GUID or verified domain",
            ));
        }
        if is_guid(s) {
            return Ok(Self(s.to_ascii_lowercase().into()));
        }
        let lower = s.to_ascii_lowercase();
        if matches!(lower.as_str(), "common" | "organizations" | "consumers") {
            return Err(invalid(
                s,
                "multi-tenant aliases cannot issue app-only tokens (AADSTS9001023); use the customer's tenant GUID or verified domain",
            ));
        }
        if s.len() > MAX_DOMAIN_LEN {
            return Err(invalid(
                s,
                "it is longer than a DNS name can be (253 characters)",
            ));
        }
        if !s.contains('.') {
            return Err(invalid(
                s,
                "it is neither a GUID nor a DNS domain such as contoso.onmicrosoft.com",
            ));
        }
        if !lower.split('.').all(is_valid_label) {
            return Err(invalid(
                s,
                "a domain may hold only letters, digits, '-' and '.', in labels of 1 to 63 characters",
            ));
        }
        Ok(Self(lower.into()))
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({})", self.0)
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for TenantId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for TenantId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_guid_is_smashed_to_lowercase() {
        let t: TenantId = "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE".parse().unwrap();
        assert_eq!(t.as_str(), "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
        assert!(t.is_guid());
    }

    #[test]
    fn tenant_domain_is_smashed_to_lowercase() {
        let t: TenantId = "Fabrikam.OnMicrosoft.com".parse().unwrap();
        assert_eq!(t.as_str(), "fabrikam.onmicrosoft.com");
        assert!(!t.is_guid());
    }

    #[test]
    fn multi_tenant_aliases_are_rejected_with_the_reason() {
        for alias in ["common", "Organizations", "CONSUMERS"] {
            let err = alias.parse::<TenantId>().unwrap_err();
            assert!(err.to_string().contains("AADSTS9001023"), "{err}");
        }
    }

    #[test]
    fn input_that_would_change_the_url_path_is_rejected() {
        for bad in [
            "",
            "contoso",
            "../x.com",
            "a/b.com",
            "a.com/..",
            "a.com?x=1",
            "a.com#f",
            "a%2f.com",
            "a .com",
            "a..com",
            "-a.com",
            "a.com\n",
            "ä.com",
            "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeeg",
        ] {
            assert!(bad.parse::<TenantId>().is_err(), "{bad:?} was accepted");
        }
        assert!(
            format!("{}.com", "a".repeat(300))
                .parse::<TenantId>()
                .is_err()
        );
    }

    #[test]
    fn long_rejected_input_is_cut_in_the_error() {
        let err = "x/".repeat(500).parse::<TenantId>().unwrap_err();
        assert!(err.to_string().len() < 400);
    }

    #[test]
    fn tenant_round_trips_through_serde() {
        let t: TenantId = "contoso.com".parse().unwrap();
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"contoso.com\"");
        assert_eq!(serde_json::from_str::<TenantId>(&json).unwrap(), t);
        assert!(serde_json::from_str::<TenantId>("\"common\"").is_err());
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any string either parses into a tenant that is safe as one path segment and
        /// parses back to itself, or is refused with a bounded message. Never a panic.
        #[test]
        fn arbitrary_strings_parse_safely(input in ".{0,300}") {
            match input.parse::<TenantId>() {
                Ok(t) => {
                    let s = t.as_str();
                    prop_assert!(!s.is_empty() && s.len() <= 253);
                    prop_assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
                    prop_assert!(!matches!(s, "common" | "organizations" | "consumers"));
                    prop_assert_eq!(s.parse::<TenantId>().unwrap(), t.clone());
                }
                Err(e) => prop_assert!(e.to_string().chars().count() < 400),
            }
        }

        /// GUIDs in any case normalize to the same tenant.
        #[test]
        fn guids_normalize_to_lower_case(bytes in any::<[u8; 16]>()) {
            let guid = uuid::Uuid::from_bytes(bytes).to_string();
            let upper: TenantId = guid.to_uppercase().parse().unwrap();
            prop_assert_eq!(upper.as_str(), guid.as_str());
        }
    }
}
