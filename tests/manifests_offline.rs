//! Plain manifests (`config/`) and the container image recipe, checked offline:
//! `kubectl kustomize config/default` and `config/samples` render, every object passes schema
//! validation (built-ins with kubernetes-validate, refwarden CRs with their CRD), the manifests
//! agree with the Helm chart, the CRD copies match `crds/`, and the Dockerfile is sane.

use std::collections::{BTreeMap, BTreeSet};

use refwarden_testkit::helm::*;
use serde_json::{Value, json};

const SYSTEM_NS: &str = "refwarden-system";

fn kustomize(dir: &str) -> Vec<Value> {
    parse_yaml(&run_ok(&kubectl(), &["kustomize", dir]))
}

fn chart_as_config() -> Vec<Value> {
    parse_yaml(&run_ok(
        &helm(),
        &[
            "template",
            "refwarden",
            "charts/refwarden",
            "--namespace",
            SYSTEM_NS,
        ],
    ))
}

#[test]
fn config_crd_copies_match_the_generated_crds() {
    for entry in std::fs::read_dir(root().join("crds")).expect("crds/") {
        let n = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .to_string();
        let a = std::fs::read(root().join("crds").join(&n)).expect("read");
        let b = std::fs::read(root().join("config/crd/bases").join(&n)).unwrap_or_else(|e| {
            panic!("config/crd/bases/{n}: {e}; run `cp crds/*.yaml config/crd/bases/`")
        });
        assert!(
            a == b,
            "config/crd/bases/{n} is stale: run `cp crds/*.yaml config/crd/bases/`"
        );
    }
}

#[test]
fn kustomize_config_default_renders_valid_objects() {
    let objs = kustomize("config/default");
    let kinds: BTreeMap<&str, usize> = objs.iter().fold(BTreeMap::new(), |mut m, o| {
        *m.entry(kind(o)).or_default() += 1;
        m
    });
    assert_eq!(
        kinds,
        BTreeMap::from([
            ("ClusterRole", 1),
            ("ClusterRoleBinding", 1),
            ("CustomResourceDefinition", 2),
            ("Deployment", 1),
            ("Namespace", 1),
            ("Role", 2),
            ("RoleBinding", 2),
            ("Service", 1),
            ("ServiceAccount", 1),
        ])
    );
    for o in &objs {
        let namespaced = !matches!(
            kind(o),
            "Namespace" | "ClusterRole" | "ClusterRoleBinding" | "CustomResourceDefinition"
        );
        if namespaced {
            assert_eq!(
                o["metadata"]["namespace"],
                SYSTEM_NS,
                "{} {}",
                kind(o),
                name(o)
            );
        }
    }
    assert_eq!(
        find(&objs, "Namespace", SYSTEM_NS)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    let unchecked = validate_offline(&objs, "kubectl kustomize config/default");
    assert!(unchecked.is_empty(), "not validated: {unchecked:?}");
}

/// What must agree between the chart (release `refwarden` in refwarden-system) and config/.
fn comparable(o: &Value) -> Value {
    match kind(o) {
        "ClusterRole" | "Role" => json!({"ns": o["metadata"]["namespace"], "rules": o["rules"]}),
        "ClusterRoleBinding" | "RoleBinding" => {
            json!({"ns": o["metadata"]["namespace"], "roleRef": o["roleRef"], "subjects": o["subjects"]})
        }
        "ServiceAccount" => {
            json!({"ns": o["metadata"]["namespace"], "automount": o["automountServiceAccountToken"]})
        }
        "Deployment" => json!({"ns": o["metadata"]["namespace"], "spec": o["spec"]}),
        "Service" => json!({"ns": o["metadata"]["namespace"], "spec": o["spec"]}),
        _ => Value::Null,
    }
}

#[test]
fn config_manifests_agree_with_the_helm_chart() {
    let config = kustomize("config/default");
    let chart = chart_as_config();
    let index = |objs: &[Value]| -> BTreeMap<(String, String), Value> {
        objs.iter()
            .filter(|o| !comparable(o).is_null())
            .map(|o| ((kind(o).to_string(), name(o).to_string()), comparable(o)))
            .collect()
    };
    let (a, b) = (index(&chart), index(&config));
    let keys_a: BTreeSet<_> = a.keys().collect();
    let keys_b: BTreeSet<_> = b.keys().collect();
    assert_eq!(
        keys_a, keys_b,
        "same RBAC / workload objects in the chart and in config/"
    );
    for (k, v) in &a {
        pretty_assertions::assert_eq!(v, &b[k], "{k:?}: config/ drifted from charts/refwarden");
    }
    // And config/ keeps the same least-privilege shape: no Secret access outside refwarden-system.
    for r in of_kind(&config, "ClusterRole") {
        let text = r["rules"].to_string();
        assert!(
            !text.contains("secrets") && !text.contains("configmaps") && !text.contains('*'),
            "{text}"
        );
    }
}

#[test]
fn samples_cover_every_registry_family_and_validate() {
    let objs = kustomize("config/samples");
    let profiles: BTreeMap<&str, &Value> = of_kind(&objs, "RegistryProfile")
        .into_iter()
        .map(|p| (name(p), &p["spec"]))
        .collect();
    let families: BTreeSet<&str> = profiles.keys().copied().collect();
    assert_eq!(
        families,
        BTreeSet::from([
            "acr",
            "artifactory",
            "distribution",
            "dockerhub",
            "ecr",
            "gar",
            "ghcr",
            "gitlab",
            "harbor",
            "quay",
            "zot"
        ])
    );
    // What each registry needs.
    assert_eq!(profiles["ghcr"]["discovery"]["mode"], "TagFallback");
    assert_eq!(profiles["gitlab"]["discovery"]["mode"], "TagFallback");
    assert_eq!(profiles["distribution"]["plainHttp"], true);
    assert!(
        profiles["distribution"]["registryUrl"]
            .as_str()
            .expect("url")
            .starts_with("http://")
    );
    assert_eq!(profiles["ecr"]["credentialsProvider"], "AwsEcr");
    assert!(
        profiles["ecr"]["registryUrl"]
            .as_str()
            .expect("url")
            .contains(".dkr.ecr.")
    );
    assert_eq!(
        profiles["harbor"]["caBundle"]["configMapRef"]["name"],
        "harbor-ca"
    );
    assert_eq!(profiles["zot"]["discovery"]["mode"], "Auto");
    assert_eq!(
        profiles["dockerhub"]["registryUrl"],
        "https://registry-1.docker.io"
    );
    // Every referenced Secret / ConfigMap lives where the controller may read it.
    for (n, spec) in &profiles {
        for r in [
            &spec["credentialsSecretRef"],
            &spec["caBundle"]["configMapRef"],
        ] {
            if !r.is_null() {
                assert_eq!(
                    r["namespace"], SYSTEM_NS,
                    "{n}: config/rbac grants Secrets only in {SYSTEM_NS}"
                );
            }
        }
    }
    let policies = of_kind(&objs, "ReferrerPolicy");
    assert_eq!(policies.len(), 1);
    let presets: BTreeSet<&str> = policies[0]["spec"]["require"]
        .as_array()
        .expect("require")
        .iter()
        .filter_map(|r| r["preset"].as_str())
        .collect();
    assert_eq!(presets, BTreeSet::from(["sbom", "signature"]));
    let unchecked = validate_offline(&objs, "config/samples");
    assert!(unchecked.is_empty(), "not validated: {unchecked:?}");
    // The example credentials are not in the kustomization but must be valid objects too.
    let creds = parse_file_values("config/samples/credentials.example.yaml");
    assert!(!creds.is_empty());
    let unchecked = validate_offline(&creds, "config/samples/credentials.example.yaml");
    assert!(unchecked.is_empty(), "not validated: {unchecked:?}");
    // Every sample file is listed in the kustomization (nothing silently left out).
    let listed: Value = serde_norway::from_str(
        &std::fs::read_to_string(root().join("config/samples/kustomization.yaml")).expect("read"),
    )
    .expect("yaml");
    let listed: BTreeSet<String> = listed["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    for entry in std::fs::read_dir(root().join("config/samples")).expect("samples") {
        let f = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .to_string();
        if f.ends_with(".yaml") && f != "kustomization.yaml" && f != "credentials.example.yaml" {
            assert!(
                listed.contains(&f),
                "config/samples/{f} is not in kustomization.yaml"
            );
        }
    }
}

fn parse_file_values(rel: &str) -> Vec<Value> {
    refwarden::manifests::parse_file(&root().join(rel))
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

/// CI has no container engine: check the Dockerfile's shape, not a build.
#[test]
fn dockerfile_is_multi_stage_non_root_and_runs_refwarden() {
    let text = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let froms: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert!(froms.len() >= 2, "multi-stage: {froms:?}");
    assert!(
        froms[0].starts_with("FROM rust:") && froms[0].contains(" AS "),
        "{}",
        froms[0]
    );
    let last = *froms.last().expect("final stage");
    assert!(
        last.contains("gcr.io/distroless/") || last.contains("cgr.dev/chainguard/static"),
        "final stage is distroless/static: {last}"
    );
    let final_stage: Vec<&str> = lines.iter().copied().skip_while(|l| *l != last).collect();
    // Only the binary is copied into the final image.
    let copies: Vec<&str> = final_stage
        .iter()
        .copied()
        .filter(|l| l.starts_with("COPY"))
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert!(
        copies[0].starts_with("COPY --from=") && copies[0].ends_with("/usr/local/bin/refwarden"),
        "{}",
        copies[0]
    );
    assert!(
        !final_stage.iter().any(|l| l.starts_with("RUN ")),
        "no RUN in the final (shell-less) stage"
    );
    let user = final_stage
        .iter()
        .rev()
        .find(|l| l.starts_with("USER "))
        .expect("USER in the final stage");
    let uid = user
        .trim_start_matches("USER ")
        .split(':')
        .next()
        .unwrap_or("");
    assert!(
        uid == "nonroot" || uid.parse::<u32>().is_ok_and(|u| u > 0),
        "non-root USER: {user}"
    );
    assert!(
        final_stage.contains(&r#"ENTRYPOINT ["/usr/local/bin/refwarden"]"#),
        "ENTRYPOINT runs refwarden (exec form)"
    );
    // The chart's runAsUser matches the image's non-root user (distroless nonroot = 65532).
    let values: Value = serde_norway::from_str(
        &std::fs::read_to_string(root().join("charts/refwarden/values.yaml")).expect("values"),
    )
    .expect("yaml");
    assert_eq!(values["podSecurityContext"]["runAsUser"], 65532);
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).expect(".dockerignore");
    for must in ["target", ".git", ".tools"] {
        assert!(
            ignore.lines().any(|l| l.trim_start_matches('/') == must),
            ".dockerignore lacks {must}"
        );
    }
}
