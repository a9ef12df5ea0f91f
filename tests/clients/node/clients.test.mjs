// Real, unmodified @azure/msal-node against mock-entra over https, with only the settings
// README.md documents: `knownAuthorities: ["host:port"]` and the mock's CA trusted through
// NODE_EXTRA_CA_CERTS. READY_FILE names the file holding mock-entra's ready line.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ConfidentialClientApplication } from "@azure/msal-node";

const ready = JSON.parse(readFileSync(process.env.READY_FILE, "utf8"));
const authority = ready.authority_host; // https://127.0.0.1:PORT/
const host = new URL(authority).host;
const customer = ready.tenants.customer.id;
const stranger = ready.tenants.stranger.id;
const saas = ready.apps.saas;
const VAULT = "https://vault.azure.net/.default";

function app(tenant, credentials = { clientSecret: saas.secrets.main }) {
  return new ConfidentialClientApplication({
    auth: { clientId: saas.client_id, authority: authority + tenant, knownAuthorities: [host], ...credentials },
  });
}

function claims(token) {
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
}

async function failure(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail("expected an error");
}

test("a token from a consented customer carries its tid", async () => {
  const result = await app(customer).acquireTokenByClientCredential({ scopes: [VAULT] });
  assert.equal(claims(result.accessToken).tid, customer);
  assert.deepEqual(claims(result.accessToken).roles, ["Secrets.Read"]);
});

test("a tenant by its domain", async () => {
  const result = await app("fabrikam.example").acquireTokenByClientCredential({ scopes: [VAULT] });
  assert.equal(claims(result.accessToken).tid, customer);
});

test("not consented is AADSTS700016, a wrong secret AADSTS7000215", async () => {
  let e = await failure(app(stranger).acquireTokenByClientCredential({ scopes: [VAULT] }));
  assert.equal(e.errorCode, "unauthorized_client");
  assert.match(e.errorMessage, /^700016: AADSTS700016:|AADSTS700016/);
  e = await failure(app(customer, { clientSecret: "not-the-secret" }).acquireTokenByClientCredential({ scopes: [VAULT] }));
  assert.equal(e.errorCode, "invalid_client");
  assert.match(e.errorMessage, /AADSTS7000215/);
});

test("an unknown tenant fails on its metadata, which says AADSTS90002", async () => {
  const e = await failure(app("nosuch.example").acquireTokenByClientCredential({ scopes: [VAULT] }));
  assert.equal(e.errorCode, "endpoints_resolution_error");
  const metadata = await fetch(`${authority}nosuch.example/v2.0/.well-known/openid-configuration`);
  assert.equal(metadata.status, 400);
  const body = await metadata.json();
  assert.equal(body.error, "invalid_tenant");
  assert.deepEqual(body.error_codes, [90002]);
});

test("a certificate credential (PS256, x5t#S256, x5c)", async () => {
  const cert = saas.certificates.main;
  const sha256 = Buffer.from(cert.x5t_s256, "base64url").toString("hex");
  const result = await app(customer, {
    clientCertificate: { thumbprintSha256: sha256, privateKey: cert.private_key_pem, x5c: cert.certificate_pem },
  }).acquireTokenByClientCredential({ scopes: [VAULT] });
  assert.equal(claims(result.accessToken).tid, customer);
  assert.equal(claims(result.accessToken).appidacr, "2");
});

test("client-request-id sent in the query comes back as the error's correlation id", async () => {
  const correlationId = "0b7e8f4e-0000-4000-8000-00000000c0de";
  const e = await failure(app(stranger).acquireTokenByClientCredential({ scopes: [VAULT], correlationId }));
  assert.equal(e.correlationId, correlationId);
  assert.match(e.errorMessage, new RegExp(`Correlation ID: ${correlationId}`));
});
