//! Parsing a [`TenantId`] as the public API does it: `FromStr` and `TryFrom` with
//! [`Error`] (the tenant module itself knows nothing of the crate's errors).

use super::{Error, echo};
use crate::tenant::{TenantError, TenantId};

impl From<TenantError> for Error {
    fn from(e: TenantError) -> Self {
        Self::InvalidTenant {
            input: echo(&e.input),
            reason: e.reason,
        }
    }
}

impl std::str::FromStr for TenantId {
    type Err = Error;

    /// A tenant GUID (lower-cased) or DNS domain (lower-cased); `common`, `organizations`,
    /// `consumers` and anything that would change the token endpoint's path are refused.
    fn from_str(s: &str) -> Result<Self, Error> {
        Ok(Self::parse(s)?)
    }
}

impl TryFrom<&str> for TenantId {
    type Error = Error;
    fn try_from(s: &str) -> Result<Self, Error> {
        s.parse()
    }
}

impl TryFrom<String> for TenantId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        s.parse()
    }
}
