//! The RegistryProfile CRD rejects bad specs the way the API server would at
//! apply time: openAPIV3Schema (patterns, enums, ranges, required) and CEL rules.

use kube::CustomResourceExt;
use refwarden::crd::RegistryProfile;
use serde_json::{Value, json};

fn profile(spec: Value) -> Value {
    json!({
        "apiVersion": "refwarden.dev/v1alpha1",
        "kind": "RegistryProfile",
        "metadata": {"name": "test"},
        "spec": spec,
    })
}

fn errors(spec: Value) -> Vec<String> {
    match refwarden::validation::validate(&RegistryProfile::crd(), &profile(spec)) {
        Ok(()) => vec![],
        Err(v) => v.iter().map(ToString::to_string).collect(),
    }
}

#[track_caller]
fn assert_rejected(spec: Value, field: &str) {
    let errs = errors(spec.clone());
    assert!(
        errs.iter().any(|e| e.contains(field)),
        "spec {spec} should be rejected naming {field}, got {errs:?}"
    );
}

#[test]
fn valid_specs_pass() {
    for spec in [
        json!({"registryUrl": "https://ghcr.io"}),
        json!({"registryUrl": "https://registry.example.com:5000/"}),
        json!({"registryUrl": "http://127.0.0.1:5000", "plainHttp": true}),
        json!({"registryUrl": "https://[::1]:5000"}),
        json!({
            "registryUrl": "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "testRepository": "team/base-image",
            "testTag": "v1.2.3",
            "credentialsSecretRef": {"namespace": "refwarden", "name": "ecr-pull"},
            "caBundle": {"configMapRef": {"namespace": "refwarden", "name": "corp-ca", "key": "ca.crt"}},
            "discovery": {"mode": "TagFallback"},
            "probe": {"interval": "30m", "writeProbes": false, "scratchRepository": "team/probe"},
            "timeoutSeconds": 10,
            "rateLimit": {"requestsPerSecond": 5, "burst": 10}
        }),
    ] {
        assert_eq!(errors(spec.clone()), Vec::<String>::new(), "{spec}");
    }
}

#[test]
fn registry_url_is_checked() {
    assert_rejected(json!({}), "spec.registryUrl");
    assert_rejected(
        json!({"registryUrl": "ftp://example.com"}),
        "spec.registryUrl",
    );
    assert_rejected(
        json!({"registryUrl": "https://example.com/v2/"}),
        "spec.registryUrl",
    );
    assert_rejected(json!({"registryUrl": "example.com"}), "spec.registryUrl");
    assert_rejected(
        json!({"registryUrl": "https://user:pw@example.com"}),
        "spec.registryUrl",
    );
    // CEL: http:// needs plainHttp, and plainHttp needs http://.
    assert_rejected(json!({"registryUrl": "http://example.com"}), "plainHttp");
    assert_rejected(
        json!({"registryUrl": "https://example.com", "plainHttp": true}),
        "plainHttp",
    );
}

#[test]
fn fields_are_checked() {
    let base = |extra: Value| {
        let mut spec = json!({"registryUrl": "https://example.com"});
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        spec
    };
    assert_rejected(
        base(json!({"testRepository": "Library/Alpine"})),
        "spec.testRepository",
    );
    assert_rejected(base(json!({"testTag": "-bad"})), "spec.testTag");
    assert_rejected(base(json!({"timeoutSeconds": 0})), "spec.timeoutSeconds");
    assert_rejected(base(json!({"timeoutSeconds": 301})), "spec.timeoutSeconds");
    assert_rejected(
        base(json!({"discovery": {"mode": "Fast"}})),
        "spec.discovery.mode",
    );
    assert_rejected(
        base(json!({"probe": {"interval": "1 hour"}})),
        "spec.probe.interval",
    );
    assert_rejected(
        base(json!({"rateLimit": {"requestsPerSecond": 0, "burst": 1}})),
        "spec.rateLimit.requestsPerSecond",
    );
    assert_rejected(
        base(json!({"rateLimit": {"requestsPerSecond": 1}})),
        "spec.rateLimit.burst",
    );
    assert_rejected(
        base(json!({"credentialsSecretRef": {"name": "x"}})),
        "spec.credentialsSecretRef.namespace",
    );
    assert_rejected(base(json!({"caBundle": {}})), "caBundle");
    assert_rejected(
        base(json!({"caBundle": {
            "configMapRef": {"namespace": "a", "name": "b", "key": "c"},
            "secretRef": {"namespace": "a", "name": "b", "key": "c"}
        }})),
        "caBundle",
    );
    assert_rejected(
        base(json!({"insecureSkipTlsVerify": "yes"})),
        "spec.insecureSkipTlsVerify",
    );
}

#[test]
fn defaults_are_applied_by_serde_as_by_the_schema() {
    let rp: RegistryProfile =
        serde_json::from_value(profile(json!({"registryUrl": "https://ghcr.io"})))
            .expect("minimal spec deserialises");
    assert_eq!(rp.spec.test_repository, "library/alpine");
    assert_eq!(rp.spec.test_tag, "latest");
    assert_eq!(rp.spec.probe.interval, "1h");
    assert!(rp.spec.probe.write_probes);
    assert_eq!(rp.spec.timeout_seconds, 30);
    assert_eq!(rp.spec.discovery.mode, refwarden::crd::DiscoveryMode::Auto);
}

#[test]
fn printer_columns_and_short_name() {
    let crd = RegistryProfile::crd();
    assert_eq!(crd.spec.scope, "Cluster");
    assert_eq!(crd.spec.group, "refwarden.dev");
    let names: Vec<String> = crd.spec.versions[0]
        .additional_printer_columns
        .as_ref()
        .map(|c| c.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["URL", "REFERRERS", "SCORE", "MODE", "READY", "AGE"]);
    assert!(
        crd.spec
            .names
            .short_names
            .as_ref()
            .is_some_and(|s| !s.is_empty())
    );
    assert!(
        crd.spec.versions[0]
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some()
    );
}

#[test]
fn messages_are_readable() {
    let errs = errors(json!({"registryUrl": "http://example.com", "timeoutSeconds": 0}));
    // Structural errors come first; CEL runs on structurally valid objects.
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("spec.timeoutSeconds: "), "{errs:?}");
    let errs = errors(json!({"registryUrl": "http://example.com"}));
    assert_eq!(
        errs,
        vec!["spec.registryUrl: http:// is only allowed together with plainHttp: true".to_string()]
    );
}

#[test]
fn aws_ecr_credentials_provider_rules() {
    assert_eq!(
        errors(json!({
            "registryUrl": "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "credentialsProvider": "AwsEcr"
        })),
        Vec::<String>::new()
    );
    assert_rejected(
        json!({"registryUrl": "https://ghcr.io", "credentialsProvider": "AwsEcr"}),
        "credentialsProvider",
    );
    assert_rejected(
        json!({
            "registryUrl": "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "credentialsProvider": "AwsEcr",
            "credentialsSecretRef": {"namespace": "a", "name": "b"}
        }),
        "credentialsProvider",
    );
    assert_rejected(
        json!({"registryUrl": "https://ghcr.io", "credentialsProvider": "Vault"}),
        "spec.credentialsProvider",
    );
}
