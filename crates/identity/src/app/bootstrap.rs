//! First-start bootstrap, as `keystone-manage bootstrap` does: the region, the default domain,
//! the admin and service projects, the default roles with their implications, the admin user
//! and the catalog entries of every service this binary serves. Idempotent: each object is
//! created only when missing, so restarts never duplicate anything.

use rand::distributions::{Alphanumeric, DistString};

use super::password;
use crate::db;
use crate::error::Result;
use crate::model::{
    new_id, Assignment, AssignmentKind, Domain, Endpoint, Project, Region, Role, Service, User,
    DEFAULT_DOMAIN_ID,
};
use crate::Identity;

/// A service to list in the catalog: its type, name and URL path under the public URL.
#[derive(Debug, Clone)]
pub struct CatalogService {
    pub service_type: String,
    pub name: String,
    pub path: String,
}

/// What bootstrap did.
#[derive(Debug, Clone, Default)]
pub struct BootstrapOutcome {
    /// The admin password when this run created the admin user.
    pub admin_password: Option<String>,
    pub admin_user_id: String,
    pub admin_project_id: String,
}

/// Default roles and what each implies (Keystone's admin > manager > member > reader chain).
const ROLES: [(&str, Option<&str>); 5] = [
    ("reader", None),
    ("member", Some("reader")),
    ("manager", Some("member")),
    ("admin", Some("manager")),
    ("service", None),
];

impl Identity {
    pub async fn bootstrap(
        &self,
        admin_password: Option<String>,
        services: &[CatalogService],
    ) -> Result<BootstrapOutcome> {
        let mut out = BootstrapOutcome::default();
        let mut tx = self.db.begin_write().await?;

        if db::catalog::get_region(&mut *tx, &self.config.region)
            .await?
            .is_none()
        {
            db::catalog::insert_region(
                &mut *tx,
                &Region {
                    id: self.config.region.clone(),
                    description: String::new(),
                    parent_region_id: None,
                    extra: Default::default(),
                },
            )
            .await?;
        }
        if db::domains::get(&mut *tx, DEFAULT_DOMAIN_ID)
            .await?
            .is_none()
        {
            db::domains::insert(
                &mut *tx,
                &Domain {
                    id: DEFAULT_DOMAIN_ID.into(),
                    name: "Default".into(),
                    description: "The default domain".into(),
                    enabled: true,
                    extra: Default::default(),
                },
            )
            .await?;
        }
        let mut project_ids = Vec::new();
        for name in ["admin", "service"] {
            let id = match db::projects::get_by_name(&mut tx, DEFAULT_DOMAIN_ID, name).await? {
                Some(p) => p.id,
                None => {
                    let p = Project {
                        id: new_id(),
                        name: name.into(),
                        domain_id: DEFAULT_DOMAIN_ID.into(),
                        parent_id: None,
                        description: format!("Bootstrap project for the {name} account"),
                        enabled: true,
                        tags: vec![],
                        extra: Default::default(),
                    };
                    db::projects::insert(&mut tx, &p).await?;
                    p.id
                }
            };
            project_ids.push(id);
        }
        out.admin_project_id = project_ids[0].clone();

        let mut role_ids = std::collections::HashMap::new();
        for (name, _) in ROLES {
            let id = match db::roles::get_by_name(&mut *tx, None, name).await? {
                Some(r) => r.id,
                None => {
                    let r = Role {
                        id: new_id(),
                        name: name.into(),
                        domain_id: None,
                        description: String::new(),
                        extra: Default::default(),
                    };
                    db::roles::insert(&mut *tx, &r).await?;
                    r.id
                }
            };
            role_ids.insert(name, id);
        }
        for (name, implied) in ROLES {
            if let Some(implied) = implied {
                db::roles::add_implied(&mut *tx, &role_ids[name], &role_ids[implied]).await?;
            }
        }

        let admin = match db::users::get_by_name(&mut *tx, DEFAULT_DOMAIN_ID, "admin").await? {
            Some(u) => u,
            None => {
                let pw = admin_password
                    .unwrap_or_else(|| Alphanumeric.sample_string(&mut rand::thread_rng(), 24));
                let u = User {
                    id: new_id(),
                    name: "admin".into(),
                    domain_id: DEFAULT_DOMAIN_ID.into(),
                    enabled: true,
                    password_hash: Some(password::hash(pw.clone()).await?),
                    password_expires_at: None,
                    default_project_id: None,
                    extra: Default::default(),
                    failed_auth_count: 0,
                    failed_auth_at: None,
                };
                db::users::insert(&mut *tx, &u).await?;
                out.admin_password = Some(pw);
                u
            }
        };
        out.admin_user_id = admin.id.clone();
        for (kind, target) in [
            (AssignmentKind::UserProject, out.admin_project_id.clone()),
            (AssignmentKind::UserSystem, "all".to_string()),
        ] {
            db::assignments::grant(
                &mut *tx,
                &Assignment {
                    kind,
                    actor_id: admin.id.clone(),
                    target_id: target,
                    role_id: role_ids["admin"].clone(),
                    inherited: false,
                },
            )
            .await?;
        }

        self.ensure_catalog(&mut tx, services).await?;
        self.commit_change(tx, vec![]).await?;
        Ok(out)
    }

    /// Makes the catalog list each of `services` with public, internal and admin endpoints at
    /// the configured public URL (updating URLs that changed, e.g. a new listen port).
    async fn ensure_catalog(
        &self,
        tx: &mut ferrostack_store::Transaction<'static, ferrostack_store::Any>,
        services: &[CatalogService],
    ) -> Result<()> {
        let existing = db::catalog::list_services(&mut **tx).await?;
        let endpoints = db::catalog::list_endpoints(&mut **tx).await?;
        for s in services {
            let url = format!("{}{}", self.config.public_url, s.path);
            let service_id = match existing
                .iter()
                .find(|e| e.service_type == s.service_type && e.name == s.name)
            {
                Some(e) => e.id.clone(),
                None => {
                    let svc = Service {
                        id: new_id(),
                        service_type: s.service_type.clone(),
                        name: s.name.clone(),
                        description: String::new(),
                        enabled: true,
                        extra: Default::default(),
                    };
                    db::catalog::insert_service(&mut **tx, &svc).await?;
                    svc.id
                }
            };
            for interface in ["public", "internal", "admin"] {
                let found = endpoints.iter().find(|e| {
                    e.service_id == service_id
                        && e.interface == interface
                        && e.region_id.as_deref() == Some(self.config.region.as_str())
                });
                match found {
                    Some(e) if e.url == url => {}
                    Some(e) => {
                        let mut e = e.clone();
                        e.url = url.clone();
                        db::catalog::update_endpoint(&mut **tx, &e).await?;
                    }
                    None => {
                        db::catalog::insert_endpoint(
                            &mut **tx,
                            &Endpoint {
                                id: new_id(),
                                service_id: service_id.clone(),
                                region_id: Some(self.config.region.clone()),
                                interface: interface.into(),
                                url: url.clone(),
                                enabled: true,
                                extra: Default::default(),
                            },
                        )
                        .await?;
                    }
                }
            }
        }
        Ok(())
    }
}
