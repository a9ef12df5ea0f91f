//! Reading what Entra sends back through the browser (a query string or a `form_post`
//! body), and the random values the flow hands out. Everything here reads
//! attacker-controlled input: bounded, no repeated parameters, nothing panics.

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::OnboardingError;

/// Longest callback accepted (an authorization code is about 1-2 KB).
const MAX_CALLBACK: usize = 16 * 1024;

/// The parameters of one callback, each at most once.
#[derive(Debug)]
pub(crate) struct Callback {
    fields: Vec<(String, String)>,
}

impl Callback {
    /// Parses a query string (with or without `?`) or an urlencoded form body. A name
    /// given twice (two `tenant=`, two `state=`, even with equal values) refuses the
    /// whole callback: neither the first nor the last may win, as a proxy, a framework
    /// and this parser could each pick another one.
    pub(crate) fn parse(input: &str) -> Result<Self, OnboardingError> {
        let input = input.strip_prefix('?').unwrap_or(input);
        if input.len() > MAX_CALLBACK {
            return Err(OnboardingError::Malformed("longer than 16 KiB"));
        }
        let mut seen: HashSet<String> = HashSet::new();
        let mut fields: Vec<(String, String)> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(input.as_bytes()) {
            let k = k.into_owned();
            if !seen.insert(k.clone()) {
                return Err(OnboardingError::Malformed("a parameter is repeated"));
            }
            fields.push((k, v.into_owned()));
        }
        Ok(Self { fields })
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Entra's (or the admin's) refusal, checked right after the state and before
    /// anything else: v2 consent errors may also carry `admin_consent=True`.
    pub(super) fn refusal(&self) -> Result<(), OnboardingError> {
        let short = |s: &str| crate::error::echo(s.lines().next().unwrap_or_default());
        match self.get("error") {
            Some(error) => Err(OnboardingError::Denied {
                error: short(error),
                description: short(self.get("error_description").unwrap_or_default()),
            }),
            None => Ok(()),
        }
    }

    /// Checks `state` against the one issued, without an early exit.
    pub(super) fn check_state(&self, issued: &str) -> Result<(), OnboardingError> {
        match self.get("state") {
            Some(state) if same(state.as_bytes(), issued.as_bytes()) => Ok(()),
            _ => Err(OnboardingError::StateMismatch),
        }
    }
}

/// Constant-time comparison, so timing does not reveal how much of a guess matched.
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// 256 random bits from the system's CSPRNG, base64url (43 characters): states, nonces
/// and PKCE verifiers.
pub(crate) fn random_value() -> Result<String, OnboardingError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| OnboardingError::Internal("the system random generator failed"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The PKCE S256 challenge of `verifier`: base64url(SHA-256(verifier)).
pub(super) fn pkce_challenge(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pkce_challenge_is_the_rfc_7636_example() {
        // RFC 7636 appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn random_values_are_43_url_safe_characters_and_differ() {
        let a = random_value().unwrap();
        let b = random_value().unwrap();
        assert_eq!(a.len(), 43);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a, b);
    }

    #[test]
    fn callbacks_refuse_repeats_and_oversize_and_report_errors_first() {
        for repeated in [
            "state=a&state=b",
            "state=a&state=a",
            "tenant=x&admin_consent=True&tenant=y&state=s",
            "a=1&tenant=x&b=2&tenant=x",
            // The same name once encoded and once plain is still the same name.
            "state=s&st%61te=t",
        ] {
            assert!(
                matches!(
                    Callback::parse(repeated),
                    Err(OnboardingError::Malformed(_))
                ),
                "{repeated}"
            );
        }
        assert!(matches!(
            Callback::parse(&"a".repeat(17 * 1024)),
            Err(OnboardingError::Malformed(_))
        ));
        let c = Callback::parse(
            "?admin_consent=True&error=access_denied&error_description=AADSTS65004%3A+User+declined%0Asecond+line&state=s",
        )
        .unwrap();
        match c.refusal() {
            Err(e @ OnboardingError::Denied { .. }) => {
                let OnboardingError::Denied { error, description } = &e else {
                    unreachable!()
                };
                assert_eq!(error, "access_denied");
                assert_eq!(description, "AADSTS65004: User declined");
                assert!(e.to_string().contains("\"access_denied\""), "{e}");
            }
            other => panic!("{other:?}"),
        }
        // Control characters from the browser never reach a log line or a page raw.
        let c = Callback::parse("error=x%1B%5B31mred&error_description=a%0Db%07&state=s").unwrap();
        let shown = c.refusal().unwrap_err().to_string();
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\r') && !shown.contains('\u{7}'),
            "{shown:?}"
        );
        assert!(shown.contains("\\u{1b}"), "{shown}");
        assert!(c.check_state("s").is_ok());
        assert!(matches!(
            c.check_state("t"),
            Err(OnboardingError::StateMismatch)
        ));
        assert!(matches!(
            c.check_state("ss"),
            Err(OnboardingError::StateMismatch)
        ));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any input either parses or is refused; never a panic.
        #[test]
        fn arbitrary_callbacks_never_panic(input in ".{0,300}", state in "[a-z0-9]{16,24}") {
            if let Ok(c) = Callback::parse(&input) {
                let _ = c.refusal();
                if c.check_state(&state).is_ok() {
                    prop_assert!(input.contains(&state));
                }
            }
        }
    }
}

/// What the consent callback does with untrusted query text before any request.
#[cfg(fuzzing)]
pub(crate) fn fuzz_callback(input: &str) {
    let Ok(callback) = Callback::parse(input) else {
        return;
    };
    let _ = callback.refusal();
    let _ = callback.check_state("state-issued-by-the-fuzzer");
    let _ = callback
        .get("admin_consent")
        .map(|v| v.eq_ignore_ascii_case("true"));
    let named = callback.get("tenant").unwrap_or_default();
    let _ = named.parse::<crate::TenantId>();
    let _ = crate::error::echo(named);
    let _ = callback.get("code").map(str::len);
}
