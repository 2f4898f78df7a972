//! `--reports=openreports`: writes each ReferrerPolicy's OpenReports objects (built by
//! [`crate::openreports::build`]) through the [`super::writer::Writer`] after every evaluation.
//!
//! - One `Report` `refwarden-<policy>` per namespace with selected pods, one `ClusterReport`
//!   `refwarden-<policy>`; labelled `app.kubernetes.io/managed-by=refwarden` and
//!   `refwarden.dev/policy=<policy>`, owned by the (cluster-scoped) ReferrerPolicy so the garbage
//!   collector removes them with it; also deleted explicitly when the policy is deleted, and a
//!   namespace's Report when the policy no longer selects pods there.
//! - Written only when the content hash (timestamps left out) differs from what exists: the
//!   hashes are listed once (annotation [`crate::openreports::ANNOTATION_HASH`]) and then remembered
//!   in the [`super::index::Index`], so a restart does not rewrite unchanged reports.
//! - The CRDs are not refwarden's: when the API answers 404 for them the policy gets
//!   `ReportsWritten=False` (reason `CRDNotInstalled`) and nothing else changes; compliance
//!   status and Events never wait for reports.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::{Client, ResourceExt};
use tracing::{debug, warn};

use super::stores::PodEntry;
use super::writer::{Writer, Written};
use super::{Context, Error};
use crate::conditions::{Status, new_condition};
use crate::crd::ReferrerPolicy;
use crate::openreports::{
    self, BuildInput, CLUSTER_REPORT_KIND, LABEL_MANAGED_BY, LABEL_POLICY, PolicyRef, REPORT_KIND,
};
use crate::policy::{CompiledPolicy, Evaluation};

/// Which reports the controller writes (`--reports`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReportsMode {
    /// None (the default).
    #[default]
    None,
    /// OpenReports `Report` / `ClusterReport` (`openreports.io/v1alpha1`).
    OpenReports,
}

/// Condition type on ReferrerPolicies while reports are on.
pub const REPORTS_WRITTEN: &str = "ReportsWritten";
/// Reason: the OpenReports CRDs are not served.
pub const CRD_NOT_INSTALLED: &str = "CRDNotInstalled";
/// Reason: the ServiceAccount may not write them.
pub const FORBIDDEN: &str = "Forbidden";
/// Reason: a write failed otherwise.
pub const WRITE_FAILED: &str = "WriteFailed";
/// Reason: every report is current.
pub const WRITTEN: &str = "Written";

/// How to install the CRDs (in the condition message and the README).
pub const INSTALL_HINT: &str = "install the OpenReports CRDs (reports.openreports.io and \
     clusterreports.openreports.io, openreports.io/v1alpha1) from the openreports/reports-api \
     repository (crd/openreports.io/v1alpha1) or with Kyverno's chart (openreports.enabled=true)";

fn resource(kind: &str) -> ApiResource {
    let plural = if kind == CLUSTER_REPORT_KIND {
        "clusterreports"
    } else {
        "reports"
    };
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(openreports::GROUP, openreports::VERSION, kind),
        plural,
    )
}

fn report_api(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &resource(REPORT_KIND))
}

fn cluster_report_api(client: &Client) -> Api<DynamicObject> {
    Api::all_with(client.clone(), &resource(CLUSTER_REPORT_KIND))
}

fn selector(policy: &str) -> String {
    format!(
        "{LABEL_MANAGED_BY}={},{LABEL_POLICY}={}",
        openreports::SOURCE,
        openreports::policy_label_value(policy)
    )
}

/// Why a report write or list failed, as a condition reason and message.
fn failure(e: &Error) -> (&'static str, String) {
    match e {
        Error::Kube(kube::Error::Api(s)) if s.code == 404 => (
            CRD_NOT_INSTALLED,
            format!("the OpenReports API is not served (404): {INSTALL_HINT}"),
        ),
        Error::Kube(kube::Error::Api(s)) if s.code == 403 => (
            FORBIDDEN,
            format!(
                "{}: grant create, patch, delete, list on reports and clusterreports in \
                 openreports.io (Helm chart: reports.openReports.enabled=true)",
                s.message
            ),
        ),
        other => (WRITE_FAILED, other.to_string()),
    }
}

/// A failure every further write would meet too (missing CRD, RBAC, an API that does not answer).
fn is_global(e: &Error) -> bool {
    matches!(e, Error::Timeout(_))
        || matches!(e, Error::Kube(kube::Error::Api(s)) if s.code == 404 || s.code == 403)
}

/// Every (namespace, content hash) of a policy's existing reports (`None`: the ClusterReport).
async fn list_existing(client: &Client, policy: &str) -> Result<super::index::ReportHashes, Error> {
    let mut out = super::index::ReportHashes::new();
    let hash = |o: &kube::core::PartialObjectMeta<DynamicObject>| {
        o.annotations()
            .get(openreports::ANNOTATION_HASH)
            .cloned()
            .unwrap_or_default()
    };
    let wanted = openreports::report_name(policy);
    let all: Api<DynamicObject> = Api::all_with(client.clone(), &resource(REPORT_KIND));
    let mut lp = ListParams::default().labels(&selector(policy)).limit(500);
    loop {
        let page = all.list_metadata(&lp).await?;
        for o in &page.items {
            if o.name_any() == wanted
                && let Some(ns) = o.namespace()
            {
                out.insert(Some(ns), hash(o));
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => lp = lp.continue_token(&c),
            None => break,
        }
    }
    let lp = ListParams::default().labels(&selector(policy));
    for o in cluster_report_api(client).list_metadata(&lp).await?.items {
        if o.name_any() == wanted {
            out.insert(None, hash(&o));
        }
    }
    Ok(out)
}

/// Writes a policy's reports after an evaluation; the `ReportsWritten` condition to set (`None`
/// when reports are off or this replica does not write).
pub async fn sync(
    ctx: &Context,
    obj: &ReferrerPolicy,
    compiled: &CompiledPolicy,
    evaluation: &Evaluation,
    selected: &[&Arc<PodEntry>],
    now: &Time,
) -> Option<Condition> {
    if ctx.settings.reports == ReportsMode::None || !ctx.is_leader() {
        return None;
    }
    let name = obj.name_any();
    let generation = obj.metadata.generation;
    let cond = |status: Status, reason: &str, message: String| {
        Some(new_condition(
            REPORTS_WRITTEN,
            status,
            reason,
            message,
            generation,
            now,
        ))
    };
    let mut existing = match ctx.index.policy(&name).reports {
        Some(r) => r,
        None => match list_existing(&ctx.client, &name).await {
            Ok(r) => r,
            Err(e) => {
                let (reason, message) = failure(&e);
                debug!(policy = %name, error = %e, "cannot list OpenReports objects");
                return cond(Status::False, reason, message);
            }
        },
    };
    let checks = |path: &str| compiled.checks_repository(path);
    let built = openreports::build(&BuildInput {
        policy: PolicyRef {
            name: &name,
            uid: obj.metadata.uid.as_deref(),
        },
        requirements: &compiled.spec.require,
        evaluation,
        checks_repository: &checks,
        pods: selected.iter().map(|p| &p.info).collect(),
        now: openreports::ResultTimestamp::from_time(now),
    });
    let mut first_error: Option<Error> = None;
    let mut omitted = 0;
    let wanted: BTreeSet<Option<String>> = built
        .namespaced
        .keys()
        .map(|ns| Some(ns.clone()))
        .chain([None])
        .collect();
    let objects = built
        .namespaced
        .iter()
        .map(|(ns, r)| (Some(ns.clone()), r))
        .chain([(None, &built.cluster)]);
    for (ns, report) in objects {
        omitted += report.omitted();
        let hash = report.hash().unwrap_or_default().to_string();
        if existing.get(&ns) == Some(&hash) {
            continue;
        }
        let (kind, api) = match &ns {
            Some(ns) => ("report", report_api(&ctx.client, ns)),
            None => ("clusterreport", cluster_report_api(&ctx.client)),
        };
        let body = match serde_json::to_value(report) {
            Ok(b) => b,
            Err(e) => {
                first_error.get_or_insert(Error::Serialize(e));
                continue;
            }
        };
        match ctx
            .writer
            .apply_object(kind, &api, report.name(), &body)
            .await
        {
            Ok(Written::Yes) => {
                existing.insert(ns, hash);
            }
            Ok(Written::NotLeader) => return None,
            Err(e) => {
                warn!(policy = %name, namespace = ?ns, error = %e, "cannot write OpenReports {kind}");
                // The API is gone, forbidden or not answering: the next report would fail the
                // same way, so stop here (the status write waits for one timeout at most).
                let global = is_global(&e);
                first_error.get_or_insert(e);
                if global {
                    break;
                }
            }
        }
    }
    let stale: Vec<Option<String>> = existing
        .keys()
        .filter(|k| !wanted.contains(*k))
        .cloned()
        .collect();
    let stale = if first_error.as_ref().is_some_and(is_global) {
        Vec::new()
    } else {
        stale
    };
    for ns in stale {
        // A namespace without selected pods any more.
        let Some(n) = &ns else { continue };
        match ctx
            .writer
            .delete_object(
                "report",
                &report_api(&ctx.client, n),
                &openreports::report_name(&name),
            )
            .await
        {
            Ok(_) => {
                existing.remove(&ns);
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let count = built.namespaced.len();
    ctx.index.set_reports(&name, existing);
    match first_error {
        Some(e) => {
            let (reason, message) = failure(&e);
            cond(Status::False, reason, message)
        }
        None => cond(
            Status::True,
            WRITTEN,
            format!(
                "{count} Report(s) and 1 ClusterReport {} (openreports.io/v1alpha1){}",
                openreports::report_name(&name),
                if omitted > 0 {
                    format!("; {omitted} result(s) left out by the size bound")
                } else {
                    String::new()
                }
            ),
        ),
    }
}

/// Deletes every report of a deleted policy (listed by label, so also those a previous leader
/// wrote). Failures are logged: the ownerReferences let the garbage collector finish the job.
pub async fn delete_all(client: Client, writer: Arc<Writer>, policy: String) {
    let existing = match list_existing(&client, &policy).await {
        Ok(e) => e,
        Err(e) => {
            debug!(policy = %policy, error = %e, "cannot list OpenReports objects to delete");
            return;
        }
    };
    let name = openreports::report_name(&policy);
    for ns in existing.keys() {
        let (kind, api) = match ns {
            Some(ns) => ("report", report_api(&client, ns)),
            None => ("clusterreport", cluster_report_api(&client)),
        };
        if let Err(e) = writer.delete_object(kind, &api, &name).await {
            warn!(policy = %policy, namespace = ?ns, error = %e, "cannot delete OpenReports {kind}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> Error {
        Error::Kube(kube::Error::Api(
            kube::core::Status::failure("reports.openreports.io is forbidden", "x")
                .with_code(code)
                .boxed(),
        ))
    }

    #[test]
    fn failures_name_the_fix_and_global_ones_stop_the_writes() {
        let (reason, message) = failure(&api(404));
        assert_eq!(reason, CRD_NOT_INSTALLED);
        assert!(message.contains("openreports/reports-api") && message.contains("Kyverno"));
        let (reason, message) = failure(&api(403));
        assert_eq!(reason, FORBIDDEN);
        assert!(message.contains("reports.openReports.enabled"), "{message}");
        assert_eq!(failure(&api(422)).0, WRITE_FAILED);
        assert!(is_global(&api(404)) && is_global(&api(403)));
        assert!(is_global(&Error::Timeout("report x".into())));
        assert!(!is_global(&api(422)) && !is_global(&api(500)));
    }

    #[test]
    fn the_label_selector_finds_this_policys_reports_only() {
        assert_eq!(
            selector("p"),
            "app.kubernetes.io/managed-by=refwarden,refwarden.dev/policy=p"
        );
        assert_eq!(resource(CLUSTER_REPORT_KIND).plural, "clusterreports");
        assert_eq!(resource(REPORT_KIND).api_version, "openreports.io/v1alpha1");
    }
}
