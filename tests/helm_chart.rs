//! The Helm chart `charts/refwarden` with the real Helm 4 binary: `helm lint`, `helm template`
//! with the default values and with tests/fixtures/helm/full-values.yaml, assertions on the
//! rendered objects, offline schema validation of every object, the CRD copy, and the values
//! schema rejecting unknown keys and wrong types.

#[path = "fixtures/helm/tools.rs"]
mod tools;

use std::collections::BTreeSet;

use serde_json::{Value, json};
use tools::*;

const CHART: &str = "charts/refwarden";
const NS: &str = "refwarden";
const FULL: &str = "tests/fixtures/helm/full-values.yaml";

fn template(extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["template", "refwarden", CHART, "--namespace", NS];
    args.extend_from_slice(extra);
    parse_yaml(&run_ok(&helm(), &args))
}

fn template_err(extra: &[&str]) -> String {
    let mut args = vec!["template", "refwarden", CHART, "--namespace", NS];
    args.extend_from_slice(extra);
    let out = run(&helm(), &args);
    assert!(
        !out.status.success(),
        "helm template {} should fail:\n{}",
        extra.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn helm_lint_passes_with_default_and_full_values() {
    run_ok(&helm(), &["lint", "--strict", CHART]);
    run_ok(&helm(), &["lint", "--strict", CHART, "-f", FULL]);
}

/// RBAC invariants that hold for every values file.
fn assert_least_privilege(objs: &[Value], secret_namespaces: &[&str]) {
    let mut secret_role_namespaces = BTreeSet::new();
    for role in objs
        .iter()
        .filter(|o| kind(o) == "ClusterRole" || kind(o) == "Role")
    {
        let rules = role["rules"].as_array().expect("rules");
        assert!(!rules.is_empty(), "{} has no rules", name(role));
        for rule in rules {
            for field in ["verbs", "resources", "apiGroups"] {
                let values = strings(&rule[field]);
                assert!(
                    !values.iter().any(|v| v.contains('*')),
                    "{} {}: wildcard in {field}: {rule}",
                    kind(role),
                    name(role)
                );
            }
            assert!(rule.get("resourceNames").is_none() || kind(role) == "Role");
            let resources = strings(&rule["resources"]);
            let verbs = strings(&rule["verbs"]);
            let core = strings(&rule["apiGroups"]).iter().any(|g| g.is_empty());
            let touches_secrets = core && resources.iter().any(|r| r == "secrets");
            if kind(role) == "ClusterRole" {
                assert!(
                    !resources.iter().any(|r| r == "configmaps"),
                    "ClusterRole {} grants configmaps cluster-wide: {rule}",
                    name(role)
                );
                // Only the imagePullSecrets opt-in may read Secrets cluster-wide, and only `get`
                // (never list/watch): see `cluster_reads_secrets`.
                if touches_secrets {
                    assert_eq!(verbs, ["get"], "cluster-wide secret verbs: {rule}");
                    assert_eq!(resources, ["secrets"], "{rule}");
                }
                assert!(
                    !resources.iter().any(|r| r == "leases"),
                    "ClusterRole grants leases cluster-wide"
                );
            } else if touches_secrets {
                assert_eq!(
                    verbs,
                    ["get"],
                    "secret verbs (get only, never list/watch): {rule}"
                );
                secret_role_namespaces.insert(
                    role["metadata"]["namespace"]
                        .as_str()
                        .expect("ns")
                        .to_string(),
                );
            }
            for v in &verbs {
                assert!(
                    ["get", "list", "watch", "create", "update", "patch"].contains(&v.as_str()),
                    "{}: unexpected verb {v} (no delete/escalate/bind/impersonate)",
                    name(role)
                );
            }
        }
    }
    let expected: BTreeSet<String> = secret_namespaces.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        secret_role_namespaces, expected,
        "Secrets readable only in these namespaces"
    );
    // No ClusterRoleBinding binds anything but our ClusterRole to our ServiceAccount.
    for b in of_kind(objs, "ClusterRoleBinding") {
        assert_eq!(b["roleRef"]["kind"], "ClusterRole");
        assert_eq!(b["roleRef"]["name"], "refwarden");
        assert_eq!(
            b["subjects"],
            json!([{"kind": "ServiceAccount", "name": "refwarden", "namespace": NS}])
        );
    }
}

fn cluster_rules(objs: &[Value]) -> Value {
    find(objs, "ClusterRole", "refwarden")["rules"].clone()
}

fn assert_secure_deployment(objs: &[Value], replicas: i64) {
    let d = find(objs, "Deployment", "refwarden");
    assert_eq!(d["spec"]["replicas"], replicas);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(
        pod["automountServiceAccountToken"], true,
        "the controller mounts its token"
    );
    assert_eq!(pod["serviceAccountName"], "refwarden");
    let psc = &pod["securityContext"];
    assert_eq!(psc["runAsNonRoot"], true);
    assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault");
    assert!(psc["runAsUser"].as_i64().unwrap_or(0) > 0);
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let sc = &c["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert!(sc["capabilities"].get("add").is_none());
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(
        c["ports"],
        json!([{"name": "http", "containerPort": 8080, "protocol": "TCP"}])
    );
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    let args = strings(&c["args"]);
    for a in [
        "controller",
        "--listen-addr=0.0.0.0:8080",
        "--leader-election=true",
        "--lease-name=refwarden-leader",
        "--lease-namespace=$(POD_NAMESPACE)",
        "--identity=$(POD_NAME)",
    ] {
        assert!(args.contains(&a.to_string()), "missing arg {a} in {args:?}");
    }
    let sub = args
        .iter()
        .position(|a| a == "controller")
        .expect("subcommand");
    assert!(
        args[..sub].iter().all(|a| a.starts_with("--log")),
        "global flags first: {args:?}"
    );
    let env = c["env"].as_array().expect("env");
    for (var, path) in [
        ("POD_NAMESPACE", "metadata.namespace"),
        ("POD_NAME", "metadata.name"),
    ] {
        assert!(
            env.iter()
                .any(|e| e["name"] == var && e["valueFrom"]["fieldRef"]["fieldPath"] == path),
            "{var} from the downward API"
        );
    }
    let sa = find(objs, "ServiceAccount", "refwarden");
    assert_eq!(sa["automountServiceAccountToken"], false);
    // The metrics Service points at the named port.
    let svc = find(objs, "Service", "refwarden-metrics");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "http");
    assert_eq!(svc["spec"]["ports"][0]["name"], "http-metrics");
}

#[test]
fn default_values_render_a_least_privilege_secure_controller() {
    let objs = template(&[]);
    // By default no ClusterRole touches Secrets at all.
    let rules = cluster_rules(&objs);
    assert!(
        !rules
            .as_array()
            .expect("rules")
            .iter()
            .any(|r| strings(&r["resources"]).iter().any(|x| x == "secrets")),
        "{rules}"
    );
    let kinds: BTreeSet<&str> = objs.iter().map(kind).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "Service",
            "Deployment"
        ]),
        "no RegistryProfile without oci.registryUrl; monitoring, PDB, NetworkPolicy are opt-in"
    );
    assert_least_privilege(&objs, &[NS]);
    assert_secure_deployment(&objs, 2);
    assert_eq!(
        cluster_rules(&objs),
        json!([
            {"apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["refwarden.dev"], "resources": ["registryprofiles", "referrerpolicies"], "verbs": ["get", "list", "watch", "patch"]},
            {"apiGroups": ["refwarden.dev"], "resources": ["registryprofiles/status", "referrerpolicies/status"], "verbs": ["patch"]},
            {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        ])
    );
    let lease = find(&objs, "Role", "refwarden-leader-election");
    assert_eq!(lease["metadata"]["namespace"], NS);
    assert_eq!(
        lease["rules"],
        json!([{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "list", "watch", "create", "update", "patch"]}])
    );
    let unchecked = validate_offline(&objs, "helm template (default values)");
    assert!(unchecked.is_empty(), "not validated: {unchecked:?}");
}

#[test]
fn full_values_render_every_feature_and_validate_offline() {
    let objs = template(&["-f", FULL]);
    assert_least_privilege(&objs, &[NS, "registry-creds"]);
    assert_secure_deployment(&objs, 3);
    // useImagePullSecrets adds exactly `get` on secrets (never list/watch) cluster-wide.
    let rules = cluster_rules(&objs);
    assert_eq!(
        rules.as_array().expect("rules").last(),
        Some(&json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}))
    );
    let d = find(&objs, "Deployment", "refwarden");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["image"],
        "registry.example.com/platform/refwarden:0.1.0-test"
    );
    let args = strings(&c["args"]);
    for a in [
        "--log-format=text",
        "--log=refwarden=debug",
        "--concurrency=8",
        "--use-image-pull-secrets",
    ] {
        assert!(args.contains(&a.to_string()), "missing {a}: {args:?}");
    }
    assert_eq!(
        find(&objs, "ServiceAccount", "refwarden")["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/refwarden"
    );

    // Optional objects.
    let pdb = find(&objs, "PodDisruptionBudget", "refwarden");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    let np = find(&objs, "NetworkPolicy", "refwarden");
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        np["spec"]["ingress"][0]["ports"],
        json!([{"port": "http", "protocol": "TCP"}])
    );
    let egress_ports: Vec<i64> = np["spec"]["egress"][1]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .filter_map(|p| p["port"].as_i64())
        .collect();
    assert_eq!(egress_ports, [443, 6443, 5000]);
    let sm = find(&objs, "ServiceMonitor", "refwarden");
    assert_eq!(sm["metadata"]["labels"]["release"], "kube-prometheus-stack");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "http-metrics");
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(sm["spec"]["endpoints"][0]["interval"], "1m");
    let svc = find(&objs, "Service", "refwarden-metrics");
    for (k, v) in sm["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("selector")
    {
        assert_eq!(
            &svc["metadata"]["labels"][k], v,
            "ServiceMonitor selects the metrics Service"
        );
    }
    assert_prometheus_rule(find(&objs, "PrometheusRule", "refwarden"));

    // The default RegistryProfile is exactly what `oci:` says, field by field.
    let harbor = find(&objs, "RegistryProfile", "harbor");
    let expected = json!({
        "registryUrl": "https://harbor.example.com",
        "testRepository": "platform/base",
        "testTag": "1.2",
        "credentialsSecretRef": {"namespace": NS, "name": "harbor-credentials"},
        "caBundle": {"configMapRef": {"namespace": NS, "name": "harbor-ca", "key": "ca.crt"}},
        "discovery": {"mode": "Native"},
    });
    let spec = harbor["spec"].as_object().expect("spec");
    for (field, want) in expected.as_object().expect("object") {
        assert_eq!(
            spec.get(field),
            Some(want),
            "spec.{field} of the oci: RegistryProfile"
        );
    }
    assert_eq!(
        harbor["spec"], expected,
        "no other spec fields (plainHttp/insecureSkipTlsVerify false)"
    );
    let secret = find(&objs, "Secret", "harbor-credentials");
    assert_eq!(secret["type"], "kubernetes.io/basic-auth");
    assert_eq!(secret["metadata"]["namespace"], NS);
    let decode = |k: &str| {
        use base64::Engine;
        let raw = secret["data"][k].as_str().expect("data key");
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(raw)
                .expect("base64"),
        )
        .expect("utf-8")
    };
    assert_eq!(decode("username"), "robot$refwarden");
    assert_eq!(decode("password"), "s3cr3t-value");
    let ca = find(&objs, "ConfigMap", "harbor-ca");
    assert_eq!(
        ca["data"]["ca.crt"],
        "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
    );

    // oci.registries.
    assert_eq!(
        find(&objs, "RegistryProfile", "ghcr")["spec"],
        json!({"registryUrl": "https://ghcr.io", "testRepository": "acme/base", "testTag": "latest",
               "credentialsSecretRef": {"namespace": NS, "name": "ghcr-pull"}, "discovery": {"mode": "TagFallback"}})
    );
    assert_eq!(
        find(&objs, "RegistryProfile", "ecr")["spec"],
        json!({"registryUrl": "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com", "testRepository": "acme/app",
               "testTag": "latest", "credentialsProvider": "AwsEcr", "discovery": {"mode": "Auto"}})
    );
    assert_eq!(
        find(&objs, "RegistryProfile", "in-cluster")["spec"],
        json!({"registryUrl": "http://registry.registry.svc.cluster.local:5000", "plainHttp": true,
               "testRepository": "library/alpine", "testTag": "latest", "discovery": {"mode": "TagFallback"}})
    );
    assert_eq!(
        find(&objs, "RegistryProfile", "lab")["spec"],
        json!({"registryUrl": "https://registry.lab.example.com:8443", "testRepository": "library/alpine",
               "testTag": "latest", "caBundle": {"configMapRef": {"namespace": NS, "name": "lab-ca", "key": "bundle.pem"}},
               "insecureSkipTlsVerify": true, "discovery": {"mode": "Auto"}})
    );
    assert_eq!(of_kind(&objs, "RegistryProfile").len(), 5);
    assert_eq!(
        of_kind(&objs, "Secret").len(),
        1,
        "only inline credentials become a Secret"
    );

    // policies: rendered verbatim.
    let values: Value =
        serde_norway::from_str(&std::fs::read_to_string(root().join(FULL)).expect("read"))
            .expect("values yaml");
    let policy = find(&objs, "ReferrerPolicy", "signature-and-sbom");
    assert_eq!(policy["spec"], values["policies"][0]["spec"]);
    assert_eq!(policy["metadata"]["labels"]["team"], "platform");

    let mut unchecked = validate_offline(&objs, "helm template -f full-values.yaml");
    unchecked.sort();
    assert_eq!(
        unchecked,
        [
            "monitoring.coreos.com/v1/PrometheusRule",
            "monitoring.coreos.com/v1/ServiceMonitor"
        ],
        "only the Prometheus Operator objects lack an offline schema (asserted structurally above)"
    );
}

/// Alerts and the metric names they rely on (the controller's metrics contract).
fn assert_prometheus_rule(rule: &Value) {
    assert_eq!(
        rule["metadata"]["labels"]["release"],
        "kube-prometheus-stack"
    );
    let rules = rule["spec"]["groups"][0]["rules"]
        .as_array()
        .expect("rules");
    let by_name = |n: &str| {
        rules
            .iter()
            .find(|r| r["alert"] == n)
            .unwrap_or_else(|| panic!("alert {n} missing"))
    };
    let expect = [
        (
            "RefwardenPolicyNonCompliant",
            "refwarden_policy_images{state=\"non_compliant\"}",
            "20m",
        ),
        (
            "RefwardenPolicyImagesUnknown",
            "refwarden_policy_images{state=\"unknown\"}",
            "45m",
        ),
        (
            "RefwardenRegistryUnreachable",
            "max by (registry_profile) (refwarden_registry_reachable) == 0",
            "15m",
        ),
        (
            "RefwardenReferrersApiLost",
            "refwarden_registry_capability{capability=\"referrersApi\",state=\"Supported\"}",
            "10m",
        ),
        (
            "RefwardenLifecycleRisk",
            "max by (registry_profile) (refwarden_lifecycle_findings{severity=\"High\"}) > 0",
            "5m",
        ),
        ("RefwardenNoLeader", "refwarden_leader{", "10m"),
    ];
    assert_eq!(rules.len(), expect.len());
    for (alert, metric, for_) in expect {
        let r = by_name(alert);
        let expr = r["expr"].as_str().expect("expr");
        assert!(expr.contains(metric), "{alert}: {expr}");
        assert_eq!(r["for"], for_, "{alert}");
        assert_eq!(r["labels"]["severity"], "critical");
        let summary = r["annotations"]["summary"].as_str().expect("summary");
        assert!(
            !summary.contains("signed") && !summary.contains("verified"),
            "{summary}"
        );
        // Balanced brackets: a cheap syntax sanity check without promtool.
        for (o, c) in [('(', ')'), ('{', '}'), ('[', ']')] {
            assert_eq!(
                expr.matches(o).count(),
                expr.matches(c).count(),
                "{alert}: {expr}"
            );
        }
    }
    assert!(
        by_name("RefwardenReferrersApiLost")["expr"]
            .as_str()
            .expect("expr")
            .contains("[6h]")
    );
}

#[test]
fn crds_ship_in_the_chart_crds_dir_identical_to_the_generated_ones() {
    let generated = root().join("crds");
    let chart = root().join(CHART).join("crds");
    let names = |dir: &std::path::Path| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
            .collect()
    };
    assert_eq!(
        names(&chart),
        names(&generated),
        "charts/refwarden/crds/ lists the same files as crds/"
    );
    for n in names(&generated) {
        let a = std::fs::read(generated.join(&n)).expect("read");
        let b = std::fs::read(chart.join(&n)).expect("read");
        assert!(
            a == b,
            "charts/refwarden/crds/{n} differs from crds/{n}: run `cp crds/*.yaml charts/refwarden/crds/`"
        );
        assert!(
            !chart.join(&n).is_symlink(),
            "a copy, not a symlink (helm package drops symlinks)"
        );
    }
    // helm installs them: --include-crds renders both, unchanged.
    let objs = template(&["--include-crds"]);
    let crds = of_kind(&objs, "CustomResourceDefinition");
    let mut rendered: Vec<&str> = crds.iter().map(|c| name(c)).collect();
    rendered.sort();
    assert_eq!(
        rendered,
        [
            "referrerpolicies.refwarden.dev",
            "registryprofiles.refwarden.dev"
        ]
    );
    for c in crds {
        let file = generated.join(format!("{}.yaml", name(c)));
        let want: Value =
            serde_norway::from_str(&std::fs::read_to_string(file).expect("read")).expect("yaml");
        assert_eq!(c, &want);
    }
    kubernetes_validate(
        &of_kind(&objs, "CustomResourceDefinition")
            .into_iter()
            .cloned()
            .collect::<Vec<_>>(),
        "chart CRDs",
    );
}

#[test]
fn values_schema_rejects_unknown_keys_and_wrong_types_with_the_field_name() {
    let err = template_err(&["--set", "oci.registryURL=https://ghcr.io"]);
    assert!(
        err.contains("/oci") && err.contains("registryURL") && err.contains("not allowed"),
        "{err}"
    );
    let err = template_err(&["--set", "replicas=3"]);
    assert!(
        err.contains("replicas") && err.contains("not allowed"),
        "{err}"
    );
    let err = template_err(&["--set", "replicaCount=two"]);
    assert!(
        err.contains("/replicaCount") && err.contains("want integer"),
        "{err}"
    );
    let err = template_err(&["--set", "oci.insecureSkipTlsVerify=yes"]);
    assert!(
        err.contains("/oci/insecureSkipTlsVerify") && err.contains("want boolean"),
        "{err}"
    );
    let err = template_err(&["--set", "oci.discoveryMode=Sometimes"]);
    assert!(err.contains("/oci/discoveryMode"), "{err}");
    let err = template_err(&[
        "--set",
        "oci.registries[0].name=x,oci.registries[0].registryUrl=https://x.io,oci.registries[0].tag=1",
    ]);
    assert!(
        err.contains("/oci/registries/0") && err.contains("'tag'"),
        "{err}"
    );
    let err = template_err(&["--set", "policies[0].name=p"]);
    assert!(err.contains("/policies/0") && err.contains("spec"), "{err}");
}

#[test]
fn inconsistent_oci_values_fail_with_a_message_naming_them() {
    let err = template_err(&[
        "--set",
        "oci.registryUrl=https://ghcr.io,oci.credentials.username=me",
    ]);
    assert!(
        err.contains("credentials.username and credentials.password must be set together"),
        "{err}"
    );
    let err = template_err(&[
        "--set",
        "oci.registryUrl=https://ghcr.io,oci.credentials.username=me,oci.credentials.password=p,oci.credentials.existingSecret=s",
    ]);
    assert!(err.contains("not both"), "{err}");
    let err = template_err(&["--set", "replicaCount=2,controller.leaderElection=false"]);
    assert!(
        err.contains("controller.leaderElection must be true"),
        "{err}"
    );
    // One replica without leader election is fine.
    let objs = template(&["--set", "replicaCount=1,controller.leaderElection=false"]);
    assert!(
        of_kind(&objs, "Role")
            .iter()
            .all(|r| name(r) != "refwarden-leader-election")
    );
}

#[test]
fn oci_registry_url_alone_renders_the_default_profile_with_defaults() {
    let objs = template(&["--set", "oci.registryUrl=https://registry.example.com"]);
    let p = find(&objs, "RegistryProfile", "refwarden");
    assert_eq!(
        p["spec"],
        json!({"registryUrl": "https://registry.example.com", "testRepository": "library/alpine",
               "testTag": "latest", "discovery": {"mode": "Auto"}})
    );
    assert!(of_kind(&objs, "Secret").is_empty());
    // The CRD's CEL rule (http:// needs plainHttp) is enforced offline too.
    let objs = template(&["--set", "oci.registryUrl=http://registry.local:5000"]);
    use kube::CustomResourceExt;
    let err = refwarden::validation::validate(
        &refwarden::crd::RegistryProfile::crd(),
        find(&objs, "RegistryProfile", "refwarden"),
    )
    .expect_err("http:// without plainHttp is invalid");
    assert!(
        err.iter().any(|v| v.message.contains("plainHttp")),
        "{err:?}"
    );
}
