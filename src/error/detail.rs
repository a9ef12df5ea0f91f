//! The small types [`Error`](super::Error)'s variants carry: which federation claim did not
//! match, how a request failed to reach Entra, how an issued token differed.

use std::fmt;

/// Which claim of a federated assertion did not match a federated identity credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FederationField {
    /// `iss` (AADSTS700211).
    Issuer,
    /// `aud` (AADSTS700212).
    Audience,
    /// `sub` (AADSTS700213).
    Subject,
}

impl fmt::Display for FederationField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Issuer => "issuer",
            Self::Audience => "audience",
            Self::Subject => "subject",
        })
    }
}

/// How a request failed to reach Entra.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportKind {
    /// The connection could not be made.
    Connect,
    /// The request or its answer took too long.
    Timeout,
    /// Anything else on the wire.
    Other,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connection failed",
            Self::Timeout => "timed out",
            Self::Other => "transport error",
        })
    }
}

/// How an issued token differed from what was asked; see [`Error::UnexpectedToken`](super::Error::UnexpectedToken).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mismatch {
    /// The claim names someone else.
    Other {
        /// What it should have been.
        expected: String,
        /// What it was (cut to 64 characters).
        found: String,
    },
    /// The claim is missing (or not a string).
    Missing,
    /// The token carries this other claim too, where exactly one of the two belongs
    /// (`appid` and `azp` both name the client: one per token).
    Conflicting(&'static str),
    /// The token has a JWT's three dot-separated parts, but they do not decode strictly
    /// (base64url of a JSON object each); the reason says which.
    Undecodable(&'static str),
}

impl Mismatch {
    pub(super) fn describe(&self, claim: &str) -> String {
        match self {
            Self::Other { expected, found } => {
                format!("carries {claim}={found:?}, expected {expected:?}")
            }
            Self::Missing => format!("carries no {claim} claim (or one that is not a string)"),
            Self::Conflicting(other) => {
                format!("carries both {claim} and {other}, where one names the client")
            }
            Self::Undecodable(why) => format!("looks like a JWT but does not decode ({why})"),
        }
    }
}
