//! Changes to the directory, shared by the in-process API, the scenario file and the
//! control API. Each checks its input and says what is wrong instead of panicking.

use std::time::{Duration, SystemTime};

use azure_cross_tenant::TenantId;

use super::{App, AppCert, AppSecret, Directory, Fic, Identity, ServicePrincipal, Tenant, User};
use crate::MockError;
use crate::state::resource_key;

/// Whether `s` is a GUID in its 8-4-4-4-12 form (the only form Entra ids take).
fn is_guid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::try_parse(s).is_ok()
}

fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A GUID given by the caller (lower-cased), or a fresh one.
fn guid_or_new(given: Option<&str>, what: &str) -> Result<String, MockError> {
    match given {
        Some(g) if is_guid(g) => Ok(g.to_ascii_lowercase()),
        Some(g) => Err(MockError::invalid(format!(
            "{what} {g:?} is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
        ))),
        None => Ok(new_guid()),
    }
}

/// A checked, lower-cased verified domain.
fn domain(d: &str) -> Result<String, MockError> {
    match d.parse::<TenantId>() {
        Ok(t) if !t.is_guid() => Ok(t.as_str().to_owned()),
        _ => Err(MockError::invalid(format!(
            "{d:?} is not a domain name (e.g. contoso.example)"
        ))),
    }
}

/// A value shaped like an Entra secret (40 characters), clearly fake.
pub(crate) fn secret_value() -> String {
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    format!("mock~{a}{}", &b[..3])
}

/// The thumbprints of a registered certificate.
#[derive(Debug, Clone)]
pub(crate) struct CertThumbprints {
    pub(crate) x5t: String,
    pub(crate) x5t_s256: String,
}

impl Directory {
    /// Creates a tenant (GUID given or fresh) with its verified domains; returns its GUID.
    pub(crate) fn add_tenant(
        &mut self,
        id: Option<&str>,
        domains: &[String],
    ) -> Result<String, MockError> {
        let id = guid_or_new(id, "tenant id")?;
        if self.tenants.contains_key(&id) {
            return Err(MockError::Taken(format!("tenant id {id}")));
        }
        let domains = domains
            .iter()
            .map(|d| domain(d))
            .collect::<Result<Vec<_>, _>>()?;
        for d in &domains {
            if self.domains.contains_key(d) {
                return Err(MockError::Taken(format!("domain {d}")));
            }
        }
        for d in &domains {
            self.domains.insert(d.clone(), id.clone());
        }
        self.tenants.insert(
            id.clone(),
            Tenant {
                id: id.clone(),
                domains,
                sps: Default::default(),
                resources: Default::default(),
            },
        );
        Ok(id)
    }

    /// Adds a verified domain to a tenant.
    pub(crate) fn add_domain(&mut self, tenant: &str, name: &str) -> Result<(), MockError> {
        let name = domain(name)?;
        let tid = self.tenant(tenant)?.id.clone();
        match self.domains.get(&name) {
            Some(owner) if *owner == tid => return Ok(()),
            Some(_) => return Err(MockError::Taken(format!("domain {name}"))),
            None => {}
        }
        self.domains.insert(name.clone(), tid.clone());
        self.tenant_mut(&tid)?.domains.push(name);
        Ok(())
    }

    /// Registers a multitenant app in `home`; its service principal there exists at once.
    pub(crate) fn register_app(
        &mut self,
        home: &str,
        display_name: &str,
        client_id: Option<&str>,
    ) -> Result<String, MockError> {
        let home = self.tenant(home)?.id.clone();
        let client_id = guid_or_new(client_id, "client id")?;
        if self.apps.contains_key(&client_id) {
            return Err(MockError::Taken(format!("client id {client_id}")));
        }
        self.apps.insert(
            client_id.clone(),
            App {
                client_id: client_id.clone(),
                home_tenant: home.clone(),
                display_name: display_name.to_owned(),
                secrets: Vec::new(),
                app_id_uri: None,
                app_roles: Vec::new(),
                fics: Vec::new(),
                certs: Vec::new(),
                redirect_uris: Vec::new(),
                required_roles: Vec::new(),
                emit_wids: false,
            },
        );
        self.tenant_mut(&home)?
            .sps
            .insert(client_id.clone(), ServicePrincipal::new());
        Ok(client_id)
    }

    /// Adds a client secret (given or generated) expiring at `expires`; returns its value.
    pub(crate) fn add_secret(
        &mut self,
        client_id: &str,
        value: Option<&str>,
        expires: SystemTime,
    ) -> Result<String, MockError> {
        let value = match value {
            Some(v) if v.len() >= 8 && v.len() <= 256 => v.to_owned(),
            Some(_) => return Err(MockError::invalid("a secret has 8 to 256 characters")),
            None => secret_value(),
        };
        self.app_mut(client_id)?.secrets.push(AppSecret {
            value: value.clone(),
            expires,
        });
        Ok(value)
    }

    /// Registers a certificate (PEM or DER; only its public part is used).
    pub(crate) fn add_certificate(
        &mut self,
        client_id: &str,
        certificate: &[u8],
    ) -> Result<CertThumbprints, MockError> {
        self.app(client_id)?;
        let facts = crate::keys::registered_certificate(certificate).map_err(MockError::Invalid)?;
        let thumbprints = CertThumbprints {
            x5t: facts.x5t.clone(),
            x5t_s256: facts.x5t_s256.clone(),
        };
        self.app_mut(client_id)?.certs.push(AppCert {
            x5t_s256: facts.x5t_s256,
            x5t: facts.x5t,
            public_key: facts.public_key,
        });
        Ok(thumbprints)
    }

    /// Removes a registered certificate (PEM or DER; matched by thumbprint), as deleting
    /// it from the app registration does; false when it was not registered.
    pub(crate) fn remove_certificate(
        &mut self,
        client_id: &str,
        certificate: &[u8],
    ) -> Result<bool, MockError> {
        let facts = crate::keys::registered_certificate(certificate).map_err(MockError::Invalid)?;
        let certs = &mut self.app_mut(client_id)?.certs;
        let before = certs.len();
        certs.retain(|c| c.x5t_s256 != facts.x5t_s256);
        Ok(certs.len() != before)
    }

    /// Makes the app expose an API with `roles`; returns its App ID URI.
    pub(crate) fn expose_api(
        &mut self,
        client_id: &str,
        app_id_uri: Option<&str>,
        roles: &[String],
    ) -> Result<String, MockError> {
        let app = self.app(client_id)?;
        let client_id = app.client_id.clone();
        let uri = app_id_uri
            .map(str::to_owned)
            .unwrap_or_else(|| format!("api://{client_id}"));
        if url::Url::parse(&uri).is_err() {
            return Err(MockError::invalid(format!(
                "App ID URI {uri:?} is not a URI"
            )));
        }
        let key = resource_key(&uri);
        if let Some(other) = self.api_index.get(&key).filter(|c| **c != client_id) {
            return Err(MockError::Taken(format!("App ID URI {uri} (app {other})")));
        }
        self.api_index.insert(key.clone(), client_id.clone());
        self.api_index
            .insert(format!("api://{client_id}"), client_id.clone());
        self.api_index.insert(client_id.clone(), client_id.clone());
        let app = self.app_mut(&client_id)?;
        app.app_id_uri = Some(key);
        for role in roles {
            if !app.app_roles.contains(role) {
                app.app_roles.push(role.clone());
            }
        }
        Ok(uri)
    }

    /// Provisions a custom v1 resource in a tenant.
    pub(crate) fn add_resource(&mut self, tenant: &str, resource: &str) -> Result<(), MockError> {
        if url::Url::parse(resource).is_err() {
            return Err(MockError::invalid(format!(
                "resource {resource:?} is not a URI"
            )));
        }
        self.tenant_mut(tenant)?
            .resources
            .insert(resource_key(resource));
        Ok(())
    }

    /// Admin consent: the app's service principal in `tenant` (created once), with the
    /// roles the app asks for. Returns its object id.
    pub(crate) fn consent(&mut self, tenant: &str, client_id: &str) -> Result<String, MockError> {
        let app = self.app(client_id)?;
        let client_id = app.client_id.clone();
        let required: Vec<(String, String)> = app
            .required_roles
            .iter()
            .map(|(resource, role)| (self.canonical_resource(resource), role.clone()))
            .collect();
        let sp = self
            .tenant_mut(tenant)?
            .sps
            .entry(client_id)
            .or_insert_with(ServicePrincipal::new);
        for (resource, role) in &required {
            sp.grant(resource, role);
        }
        Ok(sp.object_id.clone())
    }

    /// Deletes the app's service principal in `tenant`.
    pub(crate) fn revoke(&mut self, tenant: &str, client_id: &str) -> Result<(), MockError> {
        self.app(client_id)?;
        self.tenant_mut(tenant)?
            .sps
            .remove(&client_id.to_ascii_lowercase());
        Ok(())
    }

    /// Grants an app role on `resource` to the app's service principal in `tenant`.
    pub(crate) fn grant_role(
        &mut self,
        tenant: &str,
        client_id: &str,
        resource: &str,
        role: &str,
    ) -> Result<(), MockError> {
        if role.is_empty() {
            return Err(MockError::invalid("a role needs a name"));
        }
        let resource = self.canonical_resource(resource);
        self.sp_mut(tenant, client_id)?.grant(&resource, role);
        Ok(())
    }

    /// Creates a user-assigned managed identity in `tenant`.
    pub(crate) fn add_identity(
        &mut self,
        tenant: &str,
        name: &str,
        ids: [Option<&str>; 3],
    ) -> Result<Identity, MockError> {
        let [client_id, object_id, resource_id] = ids;
        let tid = self.tenant(tenant)?.id.clone();
        let identity = Identity {
            client_id: guid_or_new(client_id, "client id")?,
            object_id: guid_or_new(object_id, "object id")?,
            resource_id: resource_id.map(str::to_owned).unwrap_or_else(|| format!(
                "/subscriptions/{}/resourceGroups/mock/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
                new_guid()
            )),
            tenant: tid,
        };
        if self.identity(&identity.client_id).is_ok() {
            return Err(MockError::Taken(format!(
                "managed identity {}",
                identity.client_id
            )));
        }
        self.identities.push(identity.clone());
        Ok(identity)
    }

    /// Adds a federated identity credential that matches after `replication`.
    pub(crate) fn add_fic(
        &mut self,
        client_id: &str,
        issuer: &str,
        subject: &str,
        audience: &str,
        replication: Duration,
    ) -> Result<(), MockError> {
        if issuer.is_empty() || subject.is_empty() || audience.is_empty() {
            return Err(MockError::invalid(
                "a federated credential needs issuer, subject and audience",
            ));
        }
        let ready_at = self.now() + replication;
        let app = self.app_mut(client_id)?;
        if app.fics.len() >= 20 {
            return Err(MockError::invalid(
                "an app has at most 20 federated identity credentials",
            ));
        }
        app.fics.push(Fic {
            issuer: issuer.to_owned(),
            subject: subject.to_owned(),
            audience: audience.to_owned(),
            ready_at,
        });
        Ok(())
    }

    /// Adds a user who can sign in to `tenant`.
    pub(crate) fn add_user(
        &mut self,
        tenant: &str,
        upn: &str,
        display_name: Option<&str>,
        admin: bool,
        object_id: Option<&str>,
        directory_roles: Option<&[String]>,
    ) -> Result<User, MockError> {
        let tid = self.tenant(tenant)?.id.clone();
        if !upn.contains('@') || upn.len() > 256 {
            return Err(MockError::invalid(format!(
                "{upn:?} is not a user principal name (name@domain)"
            )));
        }
        let key = upn.to_ascii_lowercase();
        if self.upns.contains_key(&key) {
            return Err(MockError::Taken(format!("user {upn}")));
        }
        let object_id = guid_or_new(object_id, "object id")?;
        let directory_roles = directory_roles_of(admin, directory_roles)?;
        let admin = admin
            || directory_roles
                .iter()
                .any(|r| CONSENT_ROLES.contains(&r.as_str()));
        if self.users.contains_key(&object_id) {
            return Err(MockError::Taken(format!("user object id {object_id}")));
        }
        let user = User {
            object_id,
            upn: upn.to_owned(),
            display_name: display_name
                .map(str::to_owned)
                .unwrap_or_else(|| upn.split('@').next().unwrap_or(upn).to_owned()),
            tenant: tid,
            admin,
            directory_roles,
        };
        self.upns.insert(key, user.object_id.clone());
        self.users.insert(user.object_id.clone(), user.clone());
        Ok(user)
    }

    /// The key role grants use for `resource`: an exposed API's App ID URI whichever way
    /// it is named (App ID URI, `api://{client id}`, client id), else the resource key.
    pub(crate) fn canonical_resource(&self, resource: &str) -> String {
        let key = resource_key(resource);
        self.api_index
            .get(&key)
            .and_then(|client_id| self.apps.get(client_id))
            .and_then(|app| app.app_id_uri.clone())
            .unwrap_or(key)
    }

    /// Registers a redirect URI on the app (once any is registered, only those are accepted).
    pub(crate) fn add_redirect_uri(&mut self, client_id: &str, uri: &str) -> Result<(), MockError> {
        if url::Url::parse(uri).is_err() {
            return Err(MockError::invalid(format!(
                "redirect URI {uri:?} is not a URL"
            )));
        }
        let app = self.app_mut(client_id)?;
        if !app.redirect_uris.iter().any(|u| u == uri) {
            app.redirect_uris.push(uri.to_owned());
        }
        Ok(())
    }

    /// Whether the app's id tokens carry `wids`.
    pub(crate) fn emit_wids(&mut self, client_id: &str, emit: bool) -> Result<(), MockError> {
        self.app_mut(client_id)?.emit_wids = emit;
        Ok(())
    }

    /// An app role the app asks for on `resource`: admin consent grants it.
    pub(crate) fn require_role(
        &mut self,
        client_id: &str,
        resource: &str,
        role: &str,
    ) -> Result<(), MockError> {
        let app = self.app_mut(client_id)?;
        let entry = (resource_key(resource), role.to_owned());
        if !app.required_roles.contains(&entry) {
            app.required_roles.push(entry);
        }
        Ok(())
    }
}

/// Global Administrator: the directory role an admin gets unless told otherwise.
pub(crate) const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";

/// Directory roles whose holders may grant tenant-wide admin consent (Global, Privileged
/// Role, Cloud Application, Application Administrator).
pub(crate) const CONSENT_ROLES: [&str; 4] = [
    GLOBAL_ADMINISTRATOR,
    "e8611ab8-c189-46e8-94e1-60213ab1f814",
    "158c047a-c907-4556-b7ef-446551a6b5f7",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
];

/// A user's directory roles: as given (GUIDs, lower-cased), else Global Administrator
/// for an admin and none for anyone else.
fn directory_roles_of(admin: bool, given: Option<&[String]>) -> Result<Vec<String>, MockError> {
    let Some(given) = given else {
        return Ok(if admin {
            vec![GLOBAL_ADMINISTRATOR.to_owned()]
        } else {
            Vec::new()
        });
    };
    given
        .iter()
        .map(|r| {
            uuid::Uuid::try_parse(r)
                .map(|id| id.hyphenated().to_string())
                .map_err(|_| {
                    MockError::invalid(format!(
                        "directory role {r:?} is not a role template id (a GUID)"
                    ))
                })
        })
        .collect()
}
