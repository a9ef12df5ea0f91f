-- The tenant registry and the onboarding store of azure-cross-tenant (sqlite).
-- Columns hold every field of TenantRecord; lists are JSON text, times Unix seconds.

CREATE TABLE act_tenants (
    tenant                      TEXT PRIMARY KEY,
    display_name                TEXT NOT NULL,
    state                       TEXT NOT NULL,
    account                     TEXT,
    service_principal_object_id TEXT,
    linked_by                   TEXT,
    linked_at                   BIGINT,
    proof                       TEXT,
    proof_role                  TEXT,
    allowed_scopes              TEXT NOT NULL DEFAULT '[]',
    health_condition            TEXT,
    health_since                BIGINT,
    health_error                TEXT,
    health_code                 BIGINT,
    health_trace_id             TEXT,
    updated_at                  BIGINT NOT NULL
);

CREATE INDEX act_tenants_account ON act_tenants (account);

-- Pending sign-ins and consents, form_post callbacks on their way, spent states.
-- Keys are SHA-256 hex of states and session ids, never the values themselves.
CREATE TABLE act_onboarding (
    entry_key  TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX act_onboarding_expires ON act_onboarding (expires_at);
