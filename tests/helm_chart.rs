//! The Helm chart `charts/refwarden` with the real Helm 4 binary: `helm lint`, `helm template`
//! with the default values and with tests/fixtures/helm/full-values.yaml, assertions on the
//! rendered objects, offline schema validation of every object, the CRD copy, and the values
//! schema rejecting unknown keys and wrong types.

use std::collections::BTreeSet;

use refwarden_testkit::helm::*;
use serde_json::{Value, json};

const CHART: &str = "charts/refwarden";
const NS: &str = "refwarden";
const FULL: &str = "tests/fixtures/helm/full-values.yaml";

const ALT: &str = "tests/fixtures/helm/alt-values.yaml";
const CRD_CHART: &str = "charts/refwarden-crds";

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
    run_ok(&helm(), &["lint", "--strict", CHART, "-f", ALT]);
    run_ok(&helm(), &["lint", "--strict", CRD_CHART]);
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
            // `delete` only on the OpenReports objects refwarden writes itself
            // (reports.openReports.enabled): never on anything else.
            let own_reports = strings(&rule["apiGroups"]) == ["openreports.io"]
                && resources == ["reports", "clusterreports"];
            for v in &verbs {
                assert!(
                    ["get", "list", "watch", "create", "update", "patch"].contains(&v.as_str())
                        || (own_reports && v == "delete"),
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
    // reports.openReports.enabled adds list/create/patch/delete on OpenReports objects only.
    let rules = cluster_rules(&objs);
    let rules = rules.as_array().expect("rules");
    assert_eq!(
        rules[rules.len() - 2..],
        [
            json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}),
            json!({"apiGroups": ["openreports.io"], "resources": ["reports", "clusterreports"],
                   "verbs": ["list", "create", "patch", "delete"]}),
        ]
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
        "--insecure-registry=registry.local:5000",
        "--reports=openreports",
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
    // refwarden's `endpoint` label must not become `exported_endpoint` (dashboard queries use it).
    assert_eq!(sm["spec"]["endpoints"][0]["honorLabels"], true);
    let dash = find(&objs, "ConfigMap", "refwarden-dashboard");
    assert_eq!(dash["metadata"]["namespace"], "monitoring");
    assert_eq!(dash["metadata"]["labels"]["grafana_dashboard"], "1");
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
    // A URL is not a host: the controller would never match it against an image reference.
    let err = template_err(&[
        "--set",
        "controller.insecureRegistries[0]=http://registry.local",
    ]);
    assert!(err.contains("/controller/insecureRegistries/0"), "{err}");
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
    // The CRD's CEL rule (http:// needs plainHttp) is enforced by the values schema, and by the
    // CRD on the object the chart would render without the schema.
    let err = template_err(&["--set", "oci.registryUrl=http://registry.local:5000"]);
    assert!(err.contains("/oci/plainHttp"), "{err}");
    let objs = template(&[
        "--skip-schema-validation",
        "--set",
        "oci.registryUrl=http://registry.local:5000",
    ]);
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

// ---------------------------------------------------------------------------------------------
// The values schema against the CRDs

/// The CRDs' CEL rules (`x-kubernetes-validations`) and what the values schema says instead, for
/// the ones that live inside `policies[].spec` (the RegistryProfile rules are written by hand on
/// `definitions.registry`: the chart's `oci:` keys are not the CRD's fields). A new CEL rule
/// without a translation fails `policy_spec_schema_is_the_crds_schema`.
fn cel_translation(rule: &str) -> Option<Value> {
    let known = [
        (
            "has(self.preset) || (has(self.artifactTypes) && size(self.artifactTypes) > 0) || (has(self.legacyTagSuffixes) && size(self.legacyTagSuffixes) > 0) || (has(self.formats) && size(self.formats) > 0)",
            json!({"anyOf": [
                {"required": ["preset"]},
                {"required": ["artifactTypes"], "properties": {"artifactTypes": {"minItems": 1}}},
                {"required": ["legacyTagSuffixes"], "properties": {"legacyTagSuffixes": {"minItems": 1}}},
                {"required": ["formats"], "properties": {"formats": {"minItems": 1}}},
            ]}),
        ),
        (
            "has(self.issuer) != has(self.issuerRegExp)",
            json!({"oneOf": [{"required": ["issuer"]}, {"required": ["issuerRegExp"]}]}),
        ),
        (
            "has(self.subject) != has(self.subjectRegExp)",
            json!({"oneOf": [{"required": ["subject"]}, {"required": ["subjectRegExp"]}]}),
        ),
        (
            "(has(self.pem) ? 1 : 0) + (has(self.configMapRef) ? 1 : 0) + (has(self.secretRef) ? 1 : 0) == 1",
            json!({"oneOf": [
                {"required": ["pem"]},
                {"required": ["configMapRef"]},
                {"required": ["secretRef"]},
            ]}),
        ),
        (
            "has(self.configMapRef) != has(self.secretRef)",
            json!({"oneOf": [{"required": ["configMapRef"]}, {"required": ["secretRef"]}]}),
        ),
        (
            "(has(self.keys) && size(self.keys) > 0) || has(self.keyless) || has(self.notation)",
            json!({"anyOf": [
                {"required": ["keys"], "properties": {"keys": {"minItems": 1}}},
                {"required": ["keyless"]},
                {"required": ["notation"]},
            ]}),
        ),
        (
            "!has(self.keyless) || has(self.trustedRootRef)",
            json!({"anyOf": [{"not": {"required": ["keyless"]}}, {"required": ["trustedRootRef"]}]}),
        ),
    ];
    known
        .iter()
        .find(|(r, _)| *r == rule)
        .map(|(_, schema)| schema.clone())
}

/// An OpenAPI v3 structural schema as the JSON Schema the values schema embeds: Kubernetes
/// extensions and `format` dropped, `nullable` as a `null` type, unknown fields rejected
/// (`additionalProperties: false` where the CRD prunes), CEL rules translated into `allOf`.
fn crd_to_values_schema(v: &Value, untranslated: &mut Vec<String>) -> Value {
    match v {
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| crd_to_values_schema(x, untranslated))
                .collect(),
        ),
        Value::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, val) in m {
                if k.starts_with("x-kubernetes-") || k == "nullable" || k == "format" {
                    continue;
                }
                if k == "properties" || k == "patternProperties" {
                    let props = val
                        .as_object()
                        .expect("properties")
                        .iter()
                        .map(|(pk, pv)| (pk.clone(), crd_to_values_schema(pv, untranslated)))
                        .collect();
                    out.insert(k.clone(), Value::Object(props));
                    continue;
                }
                out.insert(k.clone(), crd_to_values_schema(val, untranslated));
            }
            let preserves = m
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if m.contains_key("properties") && !m.contains_key("additionalProperties") && !preserves
            {
                out.insert("additionalProperties".into(), json!(false));
            }
            if m.get("nullable").and_then(Value::as_bool) == Some(true)
                && let Some(Value::String(t)) = out.get("type").cloned()
            {
                out.insert("type".into(), json!([t, "null"]));
            }
            if let Some(rules) = m.get("x-kubernetes-validations").and_then(Value::as_array) {
                let mut all_of = Vec::new();
                for r in rules {
                    let rule = r["rule"].as_str().unwrap_or("");
                    match cel_translation(rule) {
                        Some(mut frag) => {
                            frag["description"] =
                                json!(format!("CEL: {}", r["message"].as_str().unwrap_or("")));
                            all_of.push(frag);
                        }
                        None => untranslated.push(rule.to_string()),
                    }
                }
                if !all_of.is_empty() {
                    out.insert("allOf".into(), Value::Array(all_of));
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Numbers compared by value (`500` and `500.0` are the same bound).
fn normalized(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().expect("finite")),
        Value::Array(a) => Value::Array(a.iter().map(normalized).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), normalized(v))).collect())
        }
        other => other.clone(),
    }
}

fn crd_file(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join("crds").join(name)).expect("crd");
    serde_norway::from_str(&text).expect("crd yaml")
}

fn crd_spec_schema(name: &str) -> Value {
    let crd = crd_file(name);
    let v = crd["spec"]["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .find(|v| v["storage"] == true)
        .expect("storage version")
        .clone();
    v["schema"]["openAPIV3Schema"]["properties"]["spec"].clone()
}

fn values_schema() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(root().join(CHART).join("values.schema.json")).expect("schema"),
    )
    .expect("schema JSON")
}

#[test]
fn policy_spec_schema_is_the_crds_schema() {
    let mut untranslated = Vec::new();
    let mut want = crd_to_values_schema(
        &crd_spec_schema("referrerpolicies.refwarden.dev.yaml"),
        &mut untranslated,
    );
    assert!(
        untranslated.is_empty(),
        "CEL rules of the ReferrerPolicy CRD without a JSON Schema translation (add one to \
         cel_translation, or say why it cannot be expressed): {untranslated:?}"
    );
    let schema = values_schema();
    let got = schema["definitions"]["referrerPolicySpec"].clone();
    want["description"] = got["description"].clone();
    if normalized(&got) != normalized(&want) {
        panic!(
            "charts/refwarden/values.schema.json definitions.referrerPolicySpec is not the \
             ReferrerPolicy CRD's spec schema; replace it with:\n{}",
            serde_json::to_string_pretty(&want).expect("json")
        );
    }
    assert_eq!(
        schema["properties"]["policies"]["items"]["properties"]["spec"],
        json!({"$ref": "#/definitions/referrerPolicySpec"})
    );
    // The RegistryProfile fields the chart's `oci:` keys map to keep the CRD's patterns.
    let profile = crd_spec_schema("registryprofiles.refwarden.dev.yaml");
    let reg = &schema["definitions"]["registry"]["properties"];
    assert_eq!(
        reg["registryUrl"]["pattern"].as_str().expect("pattern"),
        format!(
            "^$|{}",
            profile["properties"]["registryUrl"]["pattern"]
                .as_str()
                .expect("crd")
        )
    );
    for f in ["testRepository", "testTag"] {
        assert_eq!(
            reg[f]["pattern"], profile["properties"][f]["pattern"],
            "{f}"
        );
    }
    assert_eq!(
        reg["testRepository"]["maxLength"],
        profile["properties"]["testRepository"]["maxLength"]
    );
    assert_eq!(
        reg["discoveryMode"]["enum"],
        profile["properties"]["discovery"]["properties"]["mode"]["enum"]
    );
    // Every RegistryProfile CEL rule has its counterpart on definitions.registry (by message).
    let messages: Vec<String> = schema["definitions"]["registry"]["allOf"]
        .as_array()
        .expect("allOf")
        .iter()
        .filter_map(|r| r["description"].as_str().map(String::from))
        .collect();
    let crd = crd_file("registryprofiles.refwarden.dev.yaml");
    let rules = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        ["x-kubernetes-validations"]
        .as_array()
        .expect("spec CEL rules");
    assert!(!rules.is_empty());
    for r in rules {
        let m = format!("CEL: {}", r["message"].as_str().expect("message"));
        assert!(
            messages.contains(&m),
            "values.schema.json lacks the CRD rule {m:?}"
        );
    }
}

/// One `--set` the values schema must reject, what its error must say (the path, quoted as Helm
/// quotes it), and the object the chart renders from it without the schema, which the CRD must
/// reject too (the two agree).
struct Rejection {
    set: &'static str,
    path: &'static str,
    kind: &'static str,
    name: &'static str,
}

#[test]
fn values_schema_enforces_the_crds_cel_rules_and_the_crd_agrees() {
    let cases = [
        Rejection {
            set: "oci.registryUrl=http://r.local:5000",
            path: "/oci/plainHttp",
            kind: "RegistryProfile",
            name: "refwarden",
        },
        Rejection {
            set: "oci.registryUrl=https://r.example.com,oci.plainHttp=true",
            path: "/oci/registryUrl",
            kind: "RegistryProfile",
            name: "refwarden",
        },
        Rejection {
            set: "oci.registryUrl=http://r.local:5000,oci.plainHttp=true,oci.caBundle.existingConfigMap=ca",
            path: "/oci/caBundle/existingConfigMap",
            kind: "RegistryProfile",
            name: "refwarden",
        },
        Rejection {
            set: "oci.registryUrl=https://ghcr.io,oci.credentials.provider=AwsEcr",
            path: "/oci/registryUrl",
            kind: "RegistryProfile",
            name: "refwarden",
        },
        Rejection {
            set: "oci.registries[0].name=lab,oci.registries[0].registryUrl=http://lab:5000",
            path: "'/oci/registries/0': missing property 'plainHttp'",
            kind: "RegistryProfile",
            name: "lab",
        },
        Rejection {
            set: "oci.registryUrl=https://r.example.com/v2/",
            path: "/oci/registryUrl",
            kind: "RegistryProfile",
            name: "refwarden",
        },
        Rejection {
            set: "oci.registryUrl=https://r.example.com,oci.testRepository=Library/Alpine",
            path: "/oci/testRepository",
            kind: "RegistryProfile",
            name: "refwarden",
        },
        Rejection {
            set: "policies[0].name=p,policies[0].spec.require[0].name=sig",
            path: "/policies/0/spec/require/0",
            kind: "ReferrerPolicy",
            name: "p",
        },
        Rejection {
            set: "policies[0].name=p,policies[0].spec.require[0].name=sig,policies[0].spec.require[0].preset=signatures",
            path: "/policies/0/spec/require/0/preset",
            kind: "ReferrerPolicy",
            name: "p",
        },
        Rejection {
            set: "policies[0].name=p,policies[0].spec.require[0].name=sig,policies[0].spec.require[0].preset=signature,policies[0].spec.images.include[0]=nginx",
            path: "/policies/0/spec/images/include/0",
            kind: "ReferrerPolicy",
            name: "p",
        },
        Rejection {
            set: "policies[0].name=p,policies[0].spec.require[0].name=sig,policies[0].spec.require[0].preset=signature,policies[0].spec.recheck=5m",
            path: "/policies/0/spec",
            kind: "ReferrerPolicy",
            name: "p",
        },
        Rejection {
            set: "policies[0].name=p,policies[0].spec.require[0].name=sig,policies[0].spec.require[0].preset=signature,policies[0].spec.maxReportedViolations=0",
            path: "/policies/0/spec/maxReportedViolations",
            kind: "ReferrerPolicy",
            name: "p",
        },
    ];
    use kube::CustomResourceExt;
    for c in cases {
        let err = template_err(&["--set", c.set]);
        let needle = if c.path.starts_with('\'') {
            c.path.to_string()
        } else {
            format!("'{}'", c.path)
        };
        assert!(
            err.contains(&needle),
            "--set {}: the schema error does not name {}:\n{err}",
            c.set,
            c.path
        );
        let objs = template(&["--skip-schema-validation", "--set", c.set]);
        let obj = find(&objs, c.kind, c.name);
        let crd = if c.kind == "RegistryProfile" {
            refwarden::crd::RegistryProfile::crd()
        } else {
            refwarden::crd::ReferrerPolicy::crd()
        };
        assert!(
            refwarden::validation::validate(&crd, obj).is_err(),
            "--set {}: the values schema rejects it but the CRD accepts {obj}",
            c.set
        );
    }
    // And what the CRD accepts, the values schema accepts.
    for ok in [
        "oci.registryUrl=http://r.local:5000,oci.plainHttp=true",
        "oci.registryUrl=https://123456789012.dkr.ecr.eu-west-1.amazonaws.com,oci.credentials.provider=AwsEcr",
        "oci.registryUrl=https://[fd00::1]:5000",
        "policies[0].name=p,policies[0].spec.require[0].name=sbom,policies[0].spec.require[0].formats[0]=spdx",
    ] {
        let objs = template(&["--set", ok]);
        let unchecked = validate_offline(&objs, ok);
        assert!(unchecked.is_empty(), "{unchecked:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The image, NOTES, the rollout

fn chart_yaml(chart: &str) -> Value {
    serde_norway::from_str(
        &std::fs::read_to_string(root().join(chart).join("Chart.yaml")).expect("Chart.yaml"),
    )
    .expect("yaml")
}

fn default_values() -> Value {
    serde_norway::from_str(
        &std::fs::read_to_string(root().join(CHART).join("values.yaml")).expect("values.yaml"),
    )
    .expect("yaml")
}

#[test]
fn make_image_builds_the_image_the_chart_runs_by_default() {
    let app_version = chart_yaml(CHART)["appVersion"]
        .as_str()
        .expect("appVersion")
        .to_string();
    let repo = default_values()["image"]["repository"]
        .as_str()
        .expect("repository")
        .to_string();
    let image = format!("{repo}:{app_version}");
    let d = find(&template(&[]), "Deployment", "refwarden").clone();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        image
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    let make = tool("make", "apt-get install make");
    let out = run_ok(&make, &["-n", "image"]);
    assert!(
        out.lines()
            .any(|l| l.trim() == format!("docker build -t {image} .")),
        "`make image` does not build {image}:\n{out}"
    );
    let out = run_ok(
        &make,
        &["-n", "image", "IMAGE=registry.example.com/x/refwarden:1"],
    );
    assert!(
        out.contains("docker build -t registry.example.com/x/refwarden:1 ."),
        "{out}"
    );
    // Both charts carry the same version and appVersion.
    let crds = chart_yaml(CRD_CHART);
    assert_eq!(crds["appVersion"], chart_yaml(CHART)["appVersion"]);
    assert_eq!(crds["version"], chart_yaml(CHART)["version"]);
}

#[test]
fn image_settings_that_cannot_work_with_the_unpublished_image_fail_at_render_time() {
    let err = template_err(&["--set", "image.pullPolicy=Always"]);
    assert!(
        err.contains("image.pullPolicy=Always")
            && err.contains("not published")
            && err.contains("kind load docker-image ghcr.io/refwarden/refwarden:0.1.0")
            && err.contains("k3d image import"),
        "{err}"
    );
    let digest = format!("image.digest=sha256:{}", "a".repeat(64));
    let err = template_err(&["--set", &digest]);
    assert!(
        err.contains("image.digest") && err.contains("push"),
        "{err}"
    );
    // With a registry of your own both are fine.
    for extra in ["image.pullPolicy=Always", digest.as_str()] {
        let objs = template(&[
            "--set",
            "image.repository=registry.example.com/x/refwarden",
            "--set",
            extra,
        ]);
        let c =
            &find(&objs, "Deployment", "refwarden")["spec"]["template"]["spec"]["containers"][0];
        assert!(
            c["image"]
                .as_str()
                .expect("image")
                .starts_with("registry.example.com/x/refwarden")
        );
    }
}

#[test]
fn progress_deadline_is_rendered_only_when_set() {
    let d = find(&template(&[]), "Deployment", "refwarden").clone();
    assert!(
        d["spec"].get("progressDeadlineSeconds").is_none(),
        "Kubernetes' default by default"
    );
    let objs = template(&["--set", "controller.progressDeadlineSeconds=120"]);
    assert_eq!(
        find(&objs, "Deployment", "refwarden")["spec"]["progressDeadlineSeconds"],
        120
    );
    let err = template_err(&["--set", "controller.progressDeadlineSeconds=-1"]);
    assert!(err.contains("/controller/progressDeadlineSeconds"), "{err}");
}

/// `helm install --dry-run=client` (no cluster): the NOTES Helm would print.
fn notes(extra: &[&str]) -> String {
    let mut args = vec![
        "install",
        "refwarden",
        CHART,
        "--namespace",
        NS,
        "--dry-run=client",
    ];
    args.extend_from_slice(extra);
    let out = run_ok(&helm(), &args);
    out.split_once("\nNOTES:\n")
        .unwrap_or_else(|| panic!("no NOTES in:\n{out}"))
        .1
        .to_string()
}

#[test]
fn notes_name_the_image_profiles_status_metrics_and_gitops_checks() {
    let n = notes(&[]);
    for want in [
        "ghcr.io/refwarden/refwarden:0.1.0 (pullPolicy IfNotPresent)",
        "NOT published",
        "kind load docker-image ghcr.io/refwarden/refwarden:0.1.0",
        "k3d image import ghcr.io/refwarden/refwarden:0.1.0",
        "kubectl -n refwarden rollout status deploy/refwarden --timeout=3m",
        "No RegistryProfile rendered",
        "No ReferrerPolicy yet",
        "kubectl get registryprofiles",
        "kubectl get referrerpolicies",
        "port-forward svc/refwarden-metrics 8080:8080",
        "resource.customizations.health.refwarden.dev_RegistryProfile",
        "resource.customizations.health.refwarden.dev_ReferrerPolicy",
        "healthCheckExprs",
        "a requirement with `verify` counts only",
    ] {
        assert!(n.contains(want), "NOTES lack {want:?}:\n{n}");
    }
    let n = notes(&["-f", FULL]);
    assert!(
        !n.contains("NOT published"),
        "a custom image needs no loading hint:\n{n}"
    );
    for want in [
        "registry.example.com/platform/refwarden:0.1.0-test",
        "- harbor (https://harbor.example.com, discovery Native)",
        "- ghcr (https://ghcr.io, discovery TagFallback)",
        "- in-cluster (http://registry.registry.svc.cluster.local:5000, discovery TagFallback)",
        "kubectl get registryprofile harbor -o yaml",
        "- signature-and-sbom",
        "kubectl get referrerpolicy signature-and-sbom -o yaml",
        "ServiceMonitor: refwarden",
        "PrometheusRule: refwarden",
        "Grafana dashboard: ConfigMap monitoring/refwarden-dashboard (label grafana_dashboard=1)",
        "readable only in: refwarden, registry-creds",
    ] {
        assert!(n.contains(want), "NOTES lack {want:?}:\n{n}");
    }
    // Every RegistryProfile the release renders is named.
    for p in of_kind(&template(&["-f", FULL]), "RegistryProfile") {
        assert!(
            n.contains(&format!("- {} (", name(p))),
            "NOTES do not name {}",
            name(p)
        );
    }
    // The argocd-cm patch command of the NOTES builds exactly the shipped scripts (run where jq
    // exists; the files it reads must exist either way).
    let cmd: String = n
        .lines()
        .skip_while(|l| !l.contains("kubectl -n argocd patch configmap argocd-cm"))
        .take_while(|l| !l.starts_with("Flux:"))
        .collect::<Vec<_>>()
        .join("\n");
    let jq_program = cmd
        .split_once("\"$(")
        .and_then(|(_, rest)| rest.rsplit_once(")\""))
        .map(|(inner, _)| inner.replace("\\\n", " "))
        .expect("a $(jq …) in the patch command");
    let words: Vec<String> = shell_words(&jq_program);
    assert_eq!(words[0], "jq");
    for pair in words.windows(3).filter(|w| w[0] == "--rawfile") {
        assert!(
            root().join(CHART).join(&pair[2]).is_file(),
            "{} is not in the chart",
            pair[2]
        );
    }
    if let Some(jq) = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("jq"))
            .find(|p| p.is_file())
    }) {
        let out = std::process::Command::new(jq)
            .args(&words[1..])
            .current_dir(root().join(CHART))
            .output()
            .expect("jq");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let patch: Value = serde_json::from_slice(&out.stdout).expect("jq output JSON");
        for kind in ["RegistryProfile", "ReferrerPolicy"] {
            let script = std::fs::read_to_string(
                root()
                    .join(CHART)
                    .join(format!("argocd/refwarden.dev_{kind}.lua")),
            )
            .expect("script");
            assert_eq!(
                patch["data"][format!("resource.customizations.health.refwarden.dev_{kind}")],
                script
            );
        }
    } else {
        eprintln!("jq not on PATH: the argocd-cm patch command was checked statically only");
    }
}

/// Splits a command line like a POSIX shell would for the simple cases the docs use (single and
/// double quotes, backslash-newline continuations already joined). Panics on `$`, `|`, `;`, `&`.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(n) = chars.next() {
                                cur.push(n);
                            }
                        }
                        '$' => panic!("a shell variable in a documented command: {line}"),
                        c => cur.push(c),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '$' | '|' | ';' | '&' | '`' | '>' | '<' => {
                panic!("shell syntax {c:?} in a documented command: {line}")
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

// ---------------------------------------------------------------------------------------------
// The CRD chart

#[test]
fn crd_chart_renders_the_generated_crds_so_helm_upgrade_updates_them() {
    let generated = root().join("crds");
    let files = root().join(CRD_CHART).join("files");
    let list = |dir: &std::path::Path| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
            .collect()
    };
    assert_eq!(
        list(&files),
        list(&generated),
        "charts/refwarden-crds/files/ lists crds/"
    );
    for n in list(&generated) {
        assert!(
            std::fs::read(generated.join(&n)).expect("read")
                == std::fs::read(files.join(&n)).expect("read"),
            "charts/refwarden-crds/files/{n} differs from crds/{n}: run `cp crds/*.yaml charts/refwarden-crds/files/`"
        );
    }
    // Not in a crds/ folder (Helm would install it once and never upgrade it).
    assert!(!root().join(CRD_CHART).join("crds").exists());
    let render = |extra: &[&str]| {
        let mut args = vec!["template", "refwarden-crds", CRD_CHART];
        args.extend_from_slice(extra);
        parse_yaml(&run_ok(&helm(), &args))
    };
    let objs = render(&[]);
    assert_eq!(objs.len(), list(&generated).len());
    for crd in &objs {
        assert_eq!(kind(crd), "CustomResourceDefinition");
        let meta = &crd["metadata"];
        assert_eq!(meta["annotations"]["helm.sh/resource-policy"], "keep");
        assert_eq!(meta["labels"]["app.kubernetes.io/part-of"], "refwarden");
        assert_eq!(meta["labels"]["app.kubernetes.io/managed-by"], "Helm");
        // Apart from labels and annotations, exactly the generated CRD.
        let mut stripped = crd.clone();
        let m = stripped["metadata"].as_object_mut().expect("metadata");
        m.remove("labels");
        m.remove("annotations");
        let want = crd_file(&format!("{}.yaml", name(crd)));
        assert!(
            normalized(&stripped) == normalized(&want),
            "refwarden-crds renders {} differently from crds/",
            name(crd)
        );
    }
    kubernetes_validate(&objs, "refwarden-crds");
    // keep: false drops the annotation; extra labels and annotations are added.
    let objs = render(&[
        "--set",
        "keep=false",
        "--set",
        "labels.team=platform",
        "--set",
        "annotations.example\\.com/owner=platform",
    ]);
    for crd in &objs {
        assert!(
            crd["metadata"]["annotations"]
                .get("helm.sh/resource-policy")
                .is_none()
        );
        assert_eq!(
            crd["metadata"]["annotations"]["example.com/owner"],
            "platform"
        );
        assert_eq!(crd["metadata"]["labels"]["team"], "platform");
    }
    let out = run(&helm(), &["template", "x", CRD_CHART, "--set", "kep=true"]);
    assert!(
        !out.status.success(),
        "the CRD chart's schema rejects unknown keys"
    );
}

// ---------------------------------------------------------------------------------------------
// Documentation: the commands, every value, the values table

/// Every `helm …` command of the ```sh blocks of a Markdown file (continuation lines joined,
/// trailing comments dropped).
fn helm_commands(markdown: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join(markdown))
        .unwrap_or_else(|e| panic!("{markdown}: {e}"));
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            in_sh = !in_sh && t == "```sh";
            pending.clear();
            continue;
        }
        if !in_sh {
            continue;
        }
        let code = match t.find(" #") {
            Some(i) if !t[..i].contains('\'') && !t[..i].contains('"') => t[..i].trim_end(),
            _ => t,
        };
        if let Some(cont) = code.strip_suffix('\\') {
            pending.push_str(cont);
            pending.push(' ');
            continue;
        }
        pending.push_str(code);
        let cmd = std::mem::take(&mut pending);
        if cmd.starts_with("helm ") {
            out.push(cmd);
        }
    }
    out
}

#[test]
fn every_documented_helm_command_renders() {
    let docs = [
        "README.md",
        "charts/refwarden/README.md",
        "charts/refwarden-crds/README.md",
        "docs/gitops-health.md",
    ];
    let mut ran = 0;
    let mut failures = Vec::new();
    for doc in docs {
        for cmd in helm_commands(doc) {
            let mut words = shell_words(&cmd);
            assert_eq!(words[0], "helm");
            let sub = words[1].clone();
            match sub.as_str() {
                // `upgrade --install` of a fresh release is an install; offline, with --dry-run.
                "install" | "upgrade" => {
                    words.retain(|w| w != "--install");
                    words[1] = "install".into();
                    words.push("--dry-run=client".into());
                }
                "template" | "lint" => {}
                "uninstall" => continue,
                other => {
                    failures.push(format!("{doc}: `helm {other}` is not checked: {cmd}"));
                    continue;
                }
            }
            let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
            let out = run(&helm(), &args);
            ran += 1;
            if !out.status.success() {
                failures.push(format!(
                    "{doc}: {cmd}\n    -> {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            } else if sub != "lint" {
                let stdout = String::from_utf8_lossy(&out.stdout);
                let manifest = stdout.split("\nNOTES:\n").next().unwrap_or("");
                let manifest = manifest
                    .split_once("\nMANIFEST:\n")
                    .map(|(_, m)| m)
                    .unwrap_or(manifest);
                let objs = parse_yaml(manifest);
                let mut unchecked = validate_offline(&objs, &cmd);
                unchecked.retain(|k| !k.starts_with("monitoring.coreos.com/"));
                if !unchecked.is_empty() {
                    failures.push(format!("{doc}: {cmd}: not validated: {unchecked:?}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(ran >= 8, "only {ran} documented helm commands found");
}

/// Leaves of values.yaml: (dotted path, default). A non-empty map recurses when the schema
/// describes its keys; lists, empty maps and free-form objects are leaves.
fn value_leaves(
    values: &Value,
    schema: &Value,
    root_schema: &Value,
    prefix: &str,
    out: &mut Vec<(String, Value, Value)>,
) {
    let obj = values.as_object().expect("a map of values");
    for (k, v) in obj {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        let sub = child_schema(schema, k, root_schema);
        let has_props = sub
            .get("properties")
            .is_some_and(|p| p.as_object().is_some_and(|m| !m.is_empty()));
        match v {
            Value::Object(m) if !m.is_empty() && has_props => {
                value_leaves(v, &sub, root_schema, &path, out)
            }
            _ => out.push((path, v.clone(), sub)),
        }
    }
}

fn resolve(schema: &Value, root_schema: &Value) -> Value {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let key = r.trim_start_matches("#/definitions/");
        let mut resolved = root_schema["definitions"][key].clone();
        if let (Some(d), Some(m)) = (schema.get("description"), resolved.as_object_mut()) {
            m.insert("description".into(), d.clone());
        }
        return resolved;
    }
    schema.clone()
}

/// The schema of `key` under `schema`: its own property, else the one of an `allOf` `$ref`
/// (`oci:` takes its keys from definitions.registry).
fn child_schema(schema: &Value, key: &str, root_schema: &Value) -> Value {
    let mut candidates = vec![schema["properties"][key].clone()];
    for a in schema["allOf"].as_array().into_iter().flatten() {
        candidates.push(resolve(a, root_schema)["properties"][key].clone());
    }
    let found: Vec<Value> = candidates.into_iter().filter(Value::is_object).collect();
    let mut best = found
        .iter()
        .find(|c| c.get("description").is_some() || c.get("properties").is_some())
        .or(found.first())
        .cloned()
        .unwrap_or(Value::Null);
    best = resolve(&best, root_schema);
    best
}

fn type_of(s: &Value) -> String {
    if let Some(e) = s["enum"].as_array() {
        return e
            .iter()
            .map(|v| {
                format!(
                    "`{}`",
                    v.as_str().map(String::from).unwrap_or(v.to_string())
                )
            })
            .collect::<Vec<_>>()
            .join(" \\| ");
    }
    match &s["type"] {
        Value::String(t) if t == "object" && s["additionalProperties"]["type"] == "string" => {
            "map of strings".into()
        }
        Value::String(t) if t == "array" => match s["items"]["type"].as_str() {
            Some(i) => format!("list of {i}s"),
            None => "list".into(),
        },
        Value::String(t) => t.clone(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        _ if s.get("pattern").is_some() => "string".into(),
        _ => "any".into(),
    }
}

/// The values table of charts/refwarden/README.md.
fn values_table() -> String {
    let values = default_values();
    let schema = values_schema();
    let mut leaves = Vec::new();
    value_leaves(&values, &schema, &schema, "", &mut leaves);
    let mut out =
        String::from("| key | type | default | description |\n| --- | --- | --- | --- |\n");
    for (path, default, s) in leaves {
        let desc = s["description"]
            .as_str()
            .unwrap_or("")
            .replace('|', "\\|")
            .replace('\n', " ");
        let default = serde_json::to_string(&default)
            .expect("json")
            .replace('|', "\\|");
        out.push_str(&format!(
            "| `{path}` | {} | `{default}` | {desc} |\n",
            type_of(&s)
        ));
    }
    out
}

#[test]
fn every_value_is_described_in_the_schema_and_the_readme_table() {
    let values = default_values();
    let schema = values_schema();
    let mut leaves = Vec::new();
    value_leaves(&values, &schema, &schema, "", &mut leaves);
    let undocumented: Vec<&str> = leaves
        .iter()
        .filter(|(_, _, s)| s["description"].as_str().is_none_or(str::is_empty))
        .map(|(p, _, _)| p.as_str())
        .collect();
    assert!(
        undocumented.is_empty(),
        "values.schema.json has no description for {undocumented:?}"
    );
    // The README's table is the generated one.
    let readme_path = root().join(CHART).join("README.md");
    let readme = std::fs::read_to_string(&readme_path).expect("chart README");
    let begin = readme
        .find("<!-- values:begin")
        .expect("values:begin marker");
    let begin_end = begin + readme[begin..].find("-->\n").expect("marker end") + 4;
    let end = readme
        .find("<!-- values:end -->")
        .expect("values:end marker");
    let table = values_table();
    if readme[begin_end..end] != table {
        if std::env::var_os("REFWARDEN_UPDATE_CHART_README").is_some() {
            let updated = format!("{}{table}{}", &readme[..begin_end], &readme[end..]);
            std::fs::write(&readme_path, updated).expect("write README");
        } else {
            panic!(
                "charts/refwarden/README.md's values table is stale (REFWARDEN_UPDATE_CHART_README=1 \
                 cargo test --test helm_chart rewrites it); expected:\n{table}"
            );
        }
    }
}

/// Dotted paths a values file sets (lists and maps at the leaves of values.yaml count as set).
fn set_paths(v: &Value, leaves: &BTreeSet<String>, prefix: &str, out: &mut BTreeSet<String>) {
    if leaves.contains(prefix) {
        out.insert(prefix.to_string());
        return;
    }
    if let Some(m) = v.as_object() {
        for (k, c) in m {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            set_paths(c, leaves, &path, out);
        }
    }
}

#[test]
fn the_two_values_fixtures_set_every_value_and_render_valid_objects() {
    let values = default_values();
    let schema = values_schema();
    let mut leaves = Vec::new();
    value_leaves(&values, &schema, &schema, "", &mut leaves);
    let leaf_paths: BTreeSet<String> = leaves.iter().map(|(p, _, _)| p.clone()).collect();
    let mut covered = BTreeSet::new();
    for f in [FULL, ALT] {
        let v: Value =
            serde_norway::from_str(&std::fs::read_to_string(root().join(f)).expect("read"))
                .expect("yaml");
        set_paths(&v, &leaf_paths, "", &mut covered);
    }
    let missing: Vec<&String> = leaf_paths.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "no values fixture sets {missing:?} (add them to {ALT})"
    );
    // The alternative values render and validate like the full ones.
    let objs = template(&["-f", ALT]);
    let d = find(&objs, "Deployment", "warden-alt");
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 120);
    assert_eq!(
        d["spec"]["template"]["spec"]["serviceAccountName"],
        "platform-refwarden"
    );
    assert!(
        of_kind(&objs, "ServiceAccount").is_empty(),
        "serviceAccount.create: false"
    );
    assert!(
        of_kind(&objs, "Role")
            .iter()
            .all(|r| !name(r).ends_with("leader-election")),
        "no Lease Role without leader election"
    );
    assert_eq!(
        find(&objs, "Service", "warden-alt-metrics")["spec"]["type"],
        "NodePort"
    );
    assert_eq!(
        find(&objs, "RegistryProfile", "ecr")["spec"]["credentialsProvider"],
        "AwsEcr"
    );
    let rules = find(&objs, "PrometheusRule", "warden-alt")["spec"]["groups"][0]["rules"].clone();
    let alerts: Vec<&str> = rules
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["alert"].as_str())
        .collect();
    assert!(
        alerts.contains(&"RefwardenManyUnknownImages")
            && !alerts.contains(&"RefwardenLifecycleRisk"),
        "{alerts:?}"
    );
    let mut unchecked = validate_offline(&objs, "helm template -f alt-values.yaml");
    unchecked.sort();
    assert_eq!(
        unchecked,
        [
            "monitoring.coreos.com/v1/PrometheusRule",
            "monitoring.coreos.com/v1/ServiceMonitor"
        ]
    );
}
