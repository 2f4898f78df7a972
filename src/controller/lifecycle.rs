//! Lifecycle / GC risk of a RegistryProfile: gathers the rules (declared in the
//! spec, an ECR policy in a ConfigMap key, or ECR policies through the AWS API),
//! analyses them with `crate::lifecycle`, and adds `status.lifecycleFindings`
//! and the `LifecycleSafe` condition.

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Api;

use crate::conditions::{self, Status, new_condition};
use crate::crd::{LifecycleFinding, RegistryProfileSpec, RegistryProfileStatus};
use crate::lifecycle;

/// Why the rules could not be read: (reason, message naming the field).
pub type SourceError = (String, String);

/// Findings for the profile's `spec.lifecycle`, or why its rules could not be read.
/// `None` when the spec declares no lifecycle configuration.
pub async fn findings(
    client: &kube::Client,
    spec: &RegistryProfileSpec,
) -> Option<Result<Vec<LifecycleFinding>, SourceError>> {
    let lc = spec.lifecycle.as_ref()?;
    let mut out = lifecycle::analyze_spec(lc);
    if let Some(ecr) = &lc.ecr {
        if let Some(r) = &ecr.config_map_key_ref {
            let cm = match Api::<ConfigMap>::namespaced(client.clone(), &r.namespace)
                .get_opt(&r.name)
                .await
            {
                Ok(cm) => cm,
                Err(e) => {
                    return Some(Err((
                        "LifecycleSourceUnavailable".into(),
                        format!(
                            "spec.lifecycle.ecr.configMapKeyRef: reading ConfigMap {}/{} failed: {e}",
                            r.namespace, r.name
                        ),
                    )));
                }
            };
            let text = cm
                .as_ref()
                .and_then(|c| c.data.as_ref())
                .and_then(|d| d.get(&r.key))
                .cloned();
            match text {
                Some(t) => out.extend(lifecycle::analyze_ecr_policy_text(&t, None)),
                None => {
                    return Some(Err((
                        "LifecycleSourceNotFound".into(),
                        format!(
                            "spec.lifecycle.ecr.configMapKeyRef: ConfigMap {}/{} or its key {:?} not found",
                            r.namespace, r.name, r.key
                        ),
                    )));
                }
            }
        }
        if ecr.aws_api {
            let host = match lifecycle::aws::parse_ecr_host(&spec.registry_url) {
                Ok(h) => h,
                Err(e) => {
                    return Some(Err((
                        "LifecycleSourceInvalid".into(),
                        format!("spec.lifecycle.ecr.awsApi: {e}"),
                    )));
                }
            };
            let aws = lifecycle::aws::ecr_client(&host.region).await;
            for repo in &ecr.repositories {
                match lifecycle::aws::get_lifecycle_policy(&aws, Some(&host.account), repo).await {
                    Ok(Some(p)) => {
                        out.extend(lifecycle::analyze_ecr_policy_text(&p.text, Some(repo)))
                    }
                    Ok(None) => {}
                    Err(e) => {
                        return Some(Err((
                            "LifecycleSourceUnavailable".into(),
                            format!(
                                "spec.lifecycle.ecr.awsApi: GetLifecyclePolicy for {repo}: {e}"
                            ),
                        )));
                    }
                }
            }
        }
    }
    lifecycle::sort_findings(&mut out);
    Some(Ok(out))
}

/// Adds the findings and the `LifecycleSafe` condition to a status (pure).
/// When the rules could not be read, the previous findings are kept and the
/// condition is Unknown.
pub fn apply(
    status: &mut RegistryProfileStatus,
    result: Option<Result<Vec<LifecycleFinding>, SourceError>>,
    generation: Option<i64>,
    previous: Option<&RegistryProfileStatus>,
    now: &Time,
) {
    let Some(result) = result else {
        status.lifecycle_findings.clear();
        status
            .conditions
            .retain(|c| c.type_ != lifecycle::LIFECYCLE_SAFE);
        return;
    };
    let cond = match result {
        Ok(findings) => {
            let (st, reason, message) = lifecycle::lifecycle_condition(&findings);
            status.lifecycle_findings = findings;
            new_condition(
                lifecycle::LIFECYCLE_SAFE,
                st,
                &reason,
                message,
                generation,
                now,
            )
        }
        Err((reason, message)) => {
            status.lifecycle_findings = previous
                .map(|p| p.lifecycle_findings.clone())
                .unwrap_or_default();
            new_condition(
                lifecycle::LIFECYCLE_SAFE,
                Status::Unknown,
                &reason,
                message,
                generation,
                now,
            )
        }
    };
    let prev = previous.map(|p| p.conditions.as_slice()).unwrap_or(&[]);
    status
        .conditions
        .retain(|c| c.type_ != lifecycle::LIFECYCLE_SAFE);
    status
        .conditions
        .extend(conditions::merge(prev, vec![cond]));
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn t(s: i64) -> Time {
        Time(Timestamp::from_second(s).expect("valid"))
    }

    #[test]
    fn condition_follows_findings_and_keeps_transition_time() {
        let risky = lifecycle::analyze_ecr_policy_text(
            r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]}"#,
            None,
        );
        assert!(!risky.is_empty());
        let mut s1 = RegistryProfileStatus::default();
        apply(&mut s1, Some(Ok(risky.clone())), Some(1), None, &t(10));
        let c = conditions::find(&s1.conditions, lifecycle::LIFECYCLE_SAFE).expect("cond");
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "HighRisk")
        );
        assert_eq!(s1.lifecycle_findings, risky);

        // Source unavailable later: previous findings kept, condition Unknown.
        let mut s2 = RegistryProfileStatus::default();
        apply(
            &mut s2,
            Some(Err((
                "LifecycleSourceUnavailable".into(),
                "spec.lifecycle.ecr.awsApi: x".into(),
            ))),
            Some(1),
            Some(&s1),
            &t(20),
        );
        let c = conditions::find(&s2.conditions, lifecycle::LIFECYCLE_SAFE).expect("cond");
        assert_eq!(c.status, "Unknown");
        assert_eq!(s2.lifecycle_findings, risky);

        // Same result twice: the transition time stays.
        let mut s3 = RegistryProfileStatus::default();
        apply(&mut s3, Some(Ok(risky)), Some(1), Some(&s1), &t(30));
        let c = conditions::find(&s3.conditions, lifecycle::LIFECYCLE_SAFE).expect("cond");
        assert_eq!(c.last_transition_time, t(10));

        // No lifecycle spec: no condition, no findings.
        apply(&mut s3, None, Some(1), None, &t(40));
        assert!(conditions::find(&s3.conditions, lifecycle::LIFECYCLE_SAFE).is_none());
        assert!(s3.lifecycle_findings.is_empty());
    }

    #[test]
    fn safe_rules_make_the_condition_true() {
        let mut s = RegistryProfileStatus::default();
        apply(&mut s, Some(Ok(vec![])), None, None, &t(1));
        let c = conditions::find(&s.conditions, lifecycle::LIFECYCLE_SAFE).expect("cond");
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "NoRiskyRules")
        );
    }
}
