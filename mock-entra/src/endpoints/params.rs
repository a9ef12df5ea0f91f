//! Strict mode: a parameter the mock does not know gets an Entra-shaped `invalid_request`
//! that names it and `--loose`. The lists hold every parameter MSAL (Python, Node, .NET)
//! and azure-identity send, so strict mode never breaks a real client; unknown names are
//! what a hand-written client mistypes.

use crate::wire::{EntraErr, err};

/// Names sent by real clients on the token endpoints (body or query): OAuth parameters,
/// MSAL's telemetry and capability fields, and broker fields.
const TOKEN: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "scope",
    "resource",
    "claims",
    "client_info",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "username",
    "password",
    "device_code",
    "assertion",
    "requested_token_use",
    "token_type",
    "req_cnf",
    "key_id",
    "fmi_path",
    "user_id",
    "user_federated_identity_credential",
    "attribute_tokens",
    "dpop_jkt",
    "on_behalf_of",
    "foci",
    "return_spa_code",
    "nativebroker",
    "instance_aware",
    "clidata",
    "brk_client_id",
    "brk_redirect_uri",
    "api-version",
    "slice",
    "dc",
];

/// Names sent on the authorize endpoint.
const AUTHORIZE: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
    "prompt",
    "login_hint",
    "domain_hint",
    "claims",
    "client_info",
    "sid",
    "id_token_hint",
    "max_age",
    "ui_locales",
    "resource",
    "instance_aware",
    "ear_jwk",
    "ear_jwe_crypto",
    "pocd",
    "brk_client_id",
    "brk_redirect_uri",
    "nativebroker",
    "return_spa_code",
    "logout_hint",
    "haschrome",
    "lc",
    "mkt",
    "slice",
    "dc",
];

/// Names sent on the admin consent endpoints.
const ADMIN_CONSENT: &[&str] = &[
    "client_id",
    "redirect_uri",
    "state",
    "scope",
    "prompt",
    "login_hint",
    "domain_hint",
    "slice",
    "dc",
];

/// Telemetry and correlation fields every endpoint tolerates (MSAL sends them in the
/// body, the query or headers; compared ignoring case).
const ANYWHERE: &[&str] = &[
    "client-request-id",
    "return-client-request-id",
    "x-client-sku",
    "x-client-ver",
    "x-client-os",
    "x-client-cpu",
    "x-client-current-telemetry",
    "x-client-last-telemetry",
    "x-ms-lib-capability",
    "x-app-name",
    "x-app-ver",
    "x-client-xtra-sku",
    "x-anchormailbox",
    "x-client-brkrver",
];

/// Which endpoint's list applies.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Known {
    Token,
    Authorize,
    AdminConsent,
}

fn known(list: Known, name: &str) -> bool {
    let names = match list {
        Known::Token => TOKEN,
        Known::Authorize => AUTHORIZE,
        Known::AdminConsent => ADMIN_CONSENT,
    };
    names.contains(&name) || ANYWHERE.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// The first parameter in `pairs` the mock does not know, as an `invalid_request`.
pub(crate) fn check<'a>(
    list: Known,
    pairs: impl IntoIterator<Item = &'a (String, String)>,
) -> Result<(), EntraErr> {
    match pairs.into_iter().find(|(k, _)| !known(list, k)) {
        None => Ok(()),
        Some((name, _)) => Err(unsupported(name)),
    }
}

fn unsupported(name: &str) -> EntraErr {
    let shown = crate::error::echo(name);
    err(
        400,
        "invalid_request",
        90100,
        format!(
            "MockEntra does not support the request parameter '{shown}' (no Microsoft client sends it; check its spelling). Start mock-entra with --loose (MockEntra::builder().loose()) to ignore parameters it does not know."
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(names: &[&str]) -> Vec<(String, String)> {
        names.iter().map(|n| (n.to_string(), "v".into())).collect()
    }

    #[test]
    fn what_msal_node_sends_on_client_credentials_is_known() {
        let sent = pairs(&[
            "client_id",
            "scope",
            "grant_type",
            "x-client-SKU",
            "x-client-VER",
            "x-client-OS",
            "x-client-CPU",
            "x-ms-lib-capability",
            "x-client-current-telemetry",
            "x-client-last-telemetry",
            "client-request-id",
            "client_secret",
            "claims",
        ]);
        assert!(check(Known::Token, &sent).is_ok());
    }

    #[test]
    fn a_mistyped_parameter_is_named_with_the_loose_switch() {
        let e = check(Known::Token, &pairs(&["grant_type", "client_secert"])).unwrap_err();
        assert_eq!((e.status, e.error), (400, "invalid_request"));
        assert!(e.message.contains("'client_secert'") && e.message.contains("--loose"));
    }
}
