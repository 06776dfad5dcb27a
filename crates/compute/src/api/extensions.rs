//! `/extensions`: Nova v2.1 has no extensions any more, but still lists the names of the old
//! v2 extensions for clients that look features up by alias. This lists the ones whose
//! features ferrostack serves, under Nova's names and aliases.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::{ApiError, Auth};
use serde_json::{json, Value};

use super::State;
use crate::ComputeService;

/// (name, alias, description) of each feature served.
const EXTENSIONS: &[(&str, &str, &str)] = &[
    (
        "DiskConfig",
        "OS-DCF",
        "OS-DCF:diskConfig on servers (always MANUAL).",
    ),
    (
        "ExtendedAvailabilityZone",
        "OS-EXT-AZ",
        "A server's availability zone.",
    ),
    (
        "ExtendedServerAttributes",
        "OS-EXT-SRV-ATTR",
        "A server's host and hypervisor attributes (admins).",
    ),
    (
        "ExtendedStatus",
        "OS-EXT-STS",
        "A server's vm, task and power state.",
    ),
    (
        "FlavorDisabled",
        "OS-FLV-DISABLED",
        "Whether a flavor is disabled.",
    ),
    (
        "FlavorExtraData",
        "OS-FLV-EXT-DATA",
        "A flavor's ephemeral disk.",
    ),
    (
        "SchedulerHints",
        "OS-SCH-HNT",
        "Scheduler hints at server create.",
    ),
    (
        "ServerUsage",
        "OS-SRV-USG",
        "A server's launched_at and terminated_at.",
    ),
    ("AccessIPs", "os-access-ips", "A server's access addresses."),
    (
        "AdminActions",
        "os-admin-actions",
        "Admin server actions, such as os-resetState.",
    ),
    ("Aggregates", "os-aggregates", "Host aggregates."),
    (
        "AvailabilityZone",
        "os-availability-zone",
        "Availability zones: listed, and chosen at create.",
    ),
    (
        "BlockDeviceMappingV2Boot",
        "os-block-device-mapping-v2-boot",
        "block_device_mapping_v2 at create (image sources).",
    ),
    ("ConfigDrive", "os-config-drive", "Config drives."),
    (
        "ConsoleOutput",
        "os-console-output",
        "A server's console log, with tailing.",
    ),
    (
        "Consoles",
        "os-consoles",
        "Interactive consoles (served as remote-consoles).",
    ),
    (
        "CreateBackup",
        "os-create-backup",
        "Backups of a server, with rotation.",
    ),
    (
        "Evacuate",
        "os-evacuate",
        "Evacuating servers off a host that is down.",
    ),
    (
        "ExtendedEvacuateFindHost",
        "os-extended-evacuate-find-host",
        "Evacuation to a host the scheduler picks.",
    ),
    (
        "ExtendedHypervisors",
        "os-extended-hypervisors",
        "Hypervisor details.",
    ),
    (
        "ExtendedQuotas",
        "os-extended-quotas",
        "Deleting quotas and forced quota updates.",
    ),
    (
        "ExtendedServices",
        "os-extended-services",
        "Disabling services with a reason.",
    ),
    (
        "ExtendedServicesDelete",
        "os-extended-services-delete",
        "Deleting services.",
    ),
    (
        "FlavorAccess",
        "os-flavor-access",
        "Private flavors and their access lists.",
    ),
    (
        "FlavorExtraSpecs",
        "os-flavor-extra-specs",
        "Flavor extra specs.",
    ),
    (
        "FlavorManage",
        "os-flavor-manage",
        "Creating and deleting flavors.",
    ),
    ("FlavorRxtx", "os-flavor-rxtx", "A flavor's rxtx_factor."),
    ("Hosts", "os-hosts", "Hosts and their resources."),
    (
        "Hypervisors",
        "os-hypervisors",
        "Hypervisors, their usage and their servers.",
    ),
    (
        "InstanceActions",
        "os-instance-actions",
        "The actions taken on a server, with events.",
    ),
    ("Keypairs", "os-keypairs", "Key pairs."),
    ("Lock", "os-lock-server", "Locking servers."),
    (
        "MigrateServer",
        "os-migrate-server",
        "Cold and live migration.",
    ),
    ("Migrations", "os-migrations", "Migrations of servers."),
    (
        "MultipleCreate",
        "os-multiple-create",
        "Creating several servers at once.",
    ),
    ("PauseServer", "os-pause-server", "Pausing servers."),
    ("Quotas", "os-quota-sets", "Quotas per project and user."),
    ("Rescue", "os-rescue", "Rescuing servers."),
    (
        "ServerDiagnostics",
        "os-server-diagnostics",
        "A server's diagnostics.",
    ),
    (
        "ServerExternalEvents",
        "os-server-external-events",
        "Events from other services.",
    ),
    (
        "ServerGroups",
        "os-server-groups",
        "Server groups and their policies.",
    ),
    (
        "ServerPassword",
        "os-server-password",
        "A server's encrypted password.",
    ),
    ("Services", "os-services", "Compute services."),
    ("Shelve", "os-shelve", "Shelving servers."),
    (
        "SimpleTenantUsage",
        "os-simple-tenant-usage",
        "Usage per project.",
    ),
    ("SuspendServer", "os-suspend-server", "Suspending servers."),
    ("UsedLimits", "os-used-limits", "Used amounts in limits."),
    ("UserData", "os-user-data", "User data at create."),
    ("Flavors", "flavors", "Flavors."),
    ("Ips", "ips", "A server's addresses."),
    ("Limits", "limits", "Absolute limits."),
    ("ServerMetadata", "server-metadata", "Server metadata."),
    ("Servers", "servers", "Servers."),
    ("Versions", "versions", "API versions."),
];

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/extensions", get(list))
        .route("/extensions/{alias}", get(show))
}

fn view((name, alias, description): &(&str, &str, &str)) -> Value {
    json!({
        "name": name, "alias": alias, "description": description, "links": [],
        "namespace": "http://docs.openstack.org/compute/ext/fake_xml",
        "updated": "2014-12-03T00:00:00Z",
    })
}

async fn list(svc: State, auth: Auth) -> Result<Response, ApiError> {
    auth.enforce(&svc.policy, "os_compute_api:extensions", &json!({}))?;
    let out: Vec<Value> = EXTENSIONS.iter().map(view).collect();
    Ok(axum::Json(json!({"extensions": out})).into_response())
}

async fn show(svc: State, auth: Auth, Path(alias): Path<String>) -> Result<Response, ApiError> {
    auth.enforce(&svc.policy, "os_compute_api:extensions", &json!({}))?;
    let e = EXTENSIONS
        .iter()
        .find(|e| e.1 == alias)
        .ok_or_else(|| ApiError::not_found("The resource could not be found."))?;
    Ok(axum::Json(json!({"extension": view(e)})).into_response())
}
