"""Real, unmodified Python clients against mock-entra over https.

MSAL Python, azure-identity and PyJWT (as a resource server), with only the settings
README.md documents: MSAL `instance_discovery=False` (or `validate_authority=False`, or
the mock's own instance discovery endpoint),
azure-identity `disable_instance_discovery=True`, and the mock's CA trusted through
REQUESTS_CA_BUNDLE / SSL_CERT_FILE. Usage: python test_clients.py READY_LINE_FILE
"""

import json
import sys
import traceback
import urllib.request

import jwt
import msal
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CertificateCredential, ClientSecretCredential

READY = json.load(open(sys.argv[1]))
AUTHORITY = READY["authority_host"]  # https://127.0.0.1:PORT/
HOST = AUTHORITY.rstrip("/")
CUSTOMER = READY["tenants"]["customer"]["id"]
STRANGER = READY["tenants"]["stranger"]["id"]
SAAS = READY["apps"]["saas"]
CLIENT_ID = SAAS["client_id"]
SECRET = SAAS["secrets"]["main"]
CERT = SAAS["certificates"]["main"]
API = READY["apps"]["customer_api"]
VAULT = "https://vault.azure.net/.default"

CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def unverified(token):
    return jwt.decode(token, options={"verify_signature": False})


def msal_app(tenant, credential=SECRET, **settings):
    settings = settings or {"instance_discovery": False}
    return msal.ConfidentialClientApplication(
        CLIENT_ID, client_credential=credential, authority=AUTHORITY + tenant, **settings)


@check
def msal_gets_a_token_from_a_consented_customer():
    result = msal_app(CUSTOMER).acquire_token_for_client(scopes=[VAULT])
    assert "access_token" in result, result
    claims = unverified(result["access_token"])
    assert claims["tid"] == CUSTOMER and claims["appid"] == CLIENT_ID, claims
    assert claims["roles"] == ["Secrets.Read"], claims


@check
def msal_validates_the_authority_through_the_mocks_instance_discovery():
    # MSAL asks about https://127.0.0.1/{tenant}/oauth2/v2.0/authorize: the host name
    # without its port, as a real authority has none. The mock knows itself either way.
    app = msal_app(CUSTOMER, instance_discovery=AUTHORITY + "common/discovery/instance")
    result = app.acquire_token_for_client(scopes=[VAULT])
    assert "access_token" in result, result
    assert unverified(result["access_token"])["tid"] == CUSTOMER


@check
def msal_with_validate_authority_off_gets_a_token_from_a_tenant_by_domain():
    app = msal_app("fabrikam.example", validate_authority=False)
    result = app.acquire_token_for_client(scopes=[VAULT])
    assert unverified(result["access_token"])["tid"] == CUSTOMER, result


@check
def msal_reports_entras_codes_not_consented_and_wrong_secret():
    result = msal_app(STRANGER).acquire_token_for_client(scopes=[VAULT])
    assert result.get("error") == "unauthorized_client" and result["error_codes"] == [700016], result
    result = msal_app(CUSTOMER, credential="not-the-secret").acquire_token_for_client(scopes=[VAULT])
    assert result.get("error") == "invalid_client" and result["error_codes"] == [7000215], result


@check
def msal_refuses_an_unknown_tenant_with_entras_90002():
    try:
        msal_app("nosuch.example")
    except ValueError as e:
        text = chain(e)
        assert "invalid_tenant" in text and "AADSTS90002" in text, text
    else:
        raise AssertionError("an unknown tenant was accepted")


@check
def msal_with_a_certificate_signs_a_ps256_assertion_the_mock_accepts():
    credential = {"private_key": CERT["private_key_pem"], "public_certificate": CERT["certificate_pem"]}
    result = msal_app(CUSTOMER, credential=credential).acquire_token_for_client(scopes=[VAULT])
    assert "access_token" in result, result
    claims = unverified(result["access_token"])
    assert claims["tid"] == CUSTOMER and claims["appidacr"] == "2", claims


def chain(e):
    """The text of an exception and every exception behind it (what a traceback shows)."""
    parts = []
    while e is not None:
        parts.append(str(e))
        e = e.__cause__ or e.__context__
    return "\n".join(parts)


def identity(tenant, secret=SECRET):
    return ClientSecretCredential(
        tenant, CLIENT_ID, secret, authority=HOST, disable_instance_discovery=True)


@check
def azure_identity_gets_tokens_by_tenant_id_and_by_domain():
    for tenant in (CUSTOMER, "fabrikam.example"):
        token = identity(tenant).get_token(VAULT)
        assert unverified(token.token)["tid"] == CUSTOMER


@check
def azure_identity_raises_with_entras_codes():
    for tenant, secret, code in (
        (STRANGER, SECRET, "AADSTS700016"),
        (CUSTOMER, "not-the-secret", "AADSTS7000215"),
        ("nosuch.example", SECRET, "AADSTS90002"),
    ):
        try:
            identity(tenant, secret).get_token(VAULT)
        except (ClientAuthenticationError, ValueError) as e:
            text = chain(e)
            assert code in text, (code, text)
        else:
            raise AssertionError(f"{tenant} gave a token")


@check
def azure_identity_with_a_certificate():
    pem = (CERT["certificate_pem"] + CERT["private_key_pem"]).encode()
    credential = CertificateCredential(
        CUSTOMER, CLIENT_ID, certificate_data=pem, authority=HOST, disable_instance_discovery=True)
    assert unverified(credential.get_token(VAULT).token)["tid"] == CUSTOMER


@check
def pyjwt_validates_a_v2_token_through_the_metadatas_jwks_uri():
    result = msal_app(CUSTOMER).acquire_token_for_client(scopes=["api://customer-api/.default"])
    token = result["access_token"]
    url = f"{AUTHORITY}{CUSTOMER}/v2.0/.well-known/openid-configuration"
    with urllib.request.urlopen(url) as r:  # trusts the CA through SSL_CERT_FILE
        metadata = json.load(r)
    key = jwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token, key.key, algorithms=["RS256"], audience=API["client_id"], issuer=metadata["issuer"])
    assert claims["tid"] == CUSTOMER and claims["ver"] == "2.0" and claims["azp"] == CLIENT_ID, claims
    assert claims["roles"] == ["Commands.Send"], claims
    assert metadata["issuer"] == f"{AUTHORITY}{CUSTOMER}/v2.0"


def main():
    passed = failed = 0
    for fn in CHECKS:
        try:
            fn()
        except Exception:  # noqa: BLE001 - every failure is reported, then counted
            failed += 1
            print(f"FAIL {fn.__name__}")
            traceback.print_exc()
        else:
            passed += 1
            print(f"ok   {fn.__name__}")
    print(f"python clients: {passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
