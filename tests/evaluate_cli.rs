//! `refwarden evaluate` on files against the real distribution 2.8 registry:
//! every exit code, multi-document files, a `kubectl get pods -o json` list,
//! Deployments by tag resolved through the registry, bad input, and the demo's
//! fixture (so `make demo` cannot silently rot).

use std::process::{Command, Output};

use refwarden_testkit::demo::{demo_dir, seed_demo, write_demo_manifests};
use serde_json::{Value, json};

type TestResult = refwarden_testkit::Result<()>;

fn refwarden(args: &[&str]) -> std::io::Result<Output> {
    Command::new(env!("CARGO_BIN_EXE_refwarden"))
        .args(args)
        .output()
}

async fn run(args: Vec<String>) -> refwarden_testkit::Result<Output> {
    Ok(tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        refwarden(&a)
    })
    .await??)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_fixture_gives_one_compliant_two_violations() -> TestResult {
    let demo = seed_demo().await?;
    let dir = tempfile::tempdir()?;
    write_demo_manifests(dir.path(), &demo.reg.host())?;
    let out = run(vec![
        "evaluate".into(),
        "-f".into(),
        dir.path().display().to_string(),
        "-o".into(),
        "json".into(),
    ])
    .await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "violations found; stderr: {stderr}"
    );
    let report: Value = serde_json::from_slice(&out.stdout)?;
    let policy = &report["referrerPolicies"][0];
    assert_eq!(policy["name"], "signature-and-sbom");
    let status = &policy["status"];
    assert_eq!(
        status["summary"],
        // Pods, not workloads: three Deployments of 2 replicas each.
        json!({"pods": 6, "images": 3, "compliant": 1, "nonCompliant": 2, "unknown": 0})
    );
    let violations = status["violations"].as_array().ok_or("violations")?;
    let host = demo.reg.host();
    let got: Vec<(String, String, Vec<String>)> = violations
        .iter()
        .map(|v| {
            (
                v["image"].as_str().unwrap_or_default().to_string(),
                v["digest"].as_str().unwrap_or_default().to_string(),
                v["missing"]
                    .as_array()
                    .map(|m| {
                        m.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                format!("{host}/demo/bare"),
                demo.digests[2].clone(),
                vec!["signature".to_string(), "sbom".to_string()]
            ),
            (
                format!("{host}/demo/sig-only"),
                demo.digests[1].clone(),
                vec!["sbom".to_string()]
            ),
        ]
    );
    assert_eq!(
        violations[0]["workloads"],
        json!([{"namespace": "demo", "kind": "Deployment", "name": "bare"}])
    );
    assert_eq!(violations[0]["discoveryMethod"], "tag-schema+cosign-tag");
    // The tag the workload names, and how many pods run it.
    assert_eq!(violations[0]["reference"], format!("{host}/demo/bare:1.0"));
    assert_eq!(violations[0]["pods"], 2);
    let conditions = status["conditions"].as_array().ok_or("conditions")?;
    let compliant = conditions
        .iter()
        .find(|c| c["type"] == "Compliant")
        .ok_or("Compliant condition")?;
    assert_eq!(compliant["status"], "False");
    assert_eq!(compliant["reason"], "MissingReferrers");
    // The RegistryProfile was probed live.
    let profile = &report["registryProfiles"][0]["status"];
    assert_eq!(profile["discoveryMode"], "TagFallback");
    assert_eq!(
        profile["capabilities"]["referrersApi"]["state"],
        "Unsupported"
    );

    // -o yaml prints the same status objects.
    let out = run(vec![
        "evaluate".into(),
        "-f".into(),
        dir.path().display().to_string(),
        "-o".into(),
        "yaml".into(),
    ])
    .await?;
    assert_eq!(out.status.code(), Some(1));
    let yaml: Value = serde_norway::from_slice(&out.stdout)?;
    assert_eq!(
        yaml["referrerPolicies"][0]["status"]["summary"],
        status["summary"]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_compliant_unknown_and_bad_input() -> TestResult {
    let demo = seed_demo().await?;
    let host = demo.reg.host();
    let dir = tempfile::tempdir()?;
    let profile = std::fs::read_to_string(demo_dir().join("registryprofile.yaml"))?
        .replace("REGISTRY_HOST", &host);
    // One multi-document file: profile, policy, and a compliant Deployment.
    let compliant = format!(
        "{profile}\n---\n{}\n---\n{}",
        std::fs::read_to_string(demo_dir().join("referrerpolicy.yaml"))?
            .replace("REGISTRY_HOST", &host),
        std::fs::read_to_string(demo_dir().join("deployment-complete.yaml"))?
            .replace("REGISTRY_HOST", &host)
    );
    let f = dir.path().join("all.yaml");
    std::fs::write(&f, &compliant)?;
    let out = run(vec![
        "evaluate".into(),
        "-f".into(),
        f.display().to_string(),
    ])
    .await?;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("signature-and-sbom  True"));

    // A tag that does not exist: Unknown, no violations -> 3.
    let missing = compliant.replace("demo/complete:1.0", "demo/complete:9.9");
    std::fs::write(&f, missing)?;
    let out = run(vec![
        "evaluate".into(),
        "-f".into(),
        f.display().to_string(),
        "-o".into(),
        "json".into(),
    ])
    .await?;
    assert_eq!(out.status.code(), Some(3));
    let report: Value = serde_json::from_slice(&out.stdout)?;
    let unknown = &report["referrerPolicies"][0]["status"]["unknown"][0];
    assert_eq!(unknown["reason"], "ImageNotFound");
    assert!(
        unknown["message"]
            .as_str()
            .unwrap_or_default()
            .contains("TagNotFound")
    );

    // Malformed YAML -> 2, naming the file and document.
    std::fs::write(&f, format!("{profile}\n---\nkind: [unclosed\n"))?;
    let out = run(vec![
        "evaluate".into(),
        "-f".into(),
        f.display().to_string(),
    ])
    .await?;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("all.yaml: document 2"), "{err}");

    // Unknown field -> 2, naming the field.
    std::fs::write(
        &f,
        compliant.replace("replicas: 2", "replicas: 2\n  replicaz: 3"),
    )?;
    let out = run(vec![
        "evaluate".into(),
        "-f".into(),
        f.display().to_string(),
    ])
    .await?;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("document 3: spec.replicaz: unknown field"),
        "{err}"
    );

    // An include glob that matches none of the workloads' images (a typo) -> 2, naming it,
    // even though the images the other glob selects are compliant.
    std::fs::write(
        &f,
        compliant.replace("include: [\"", "include: [\"ghcr.io/acme-typo/**\", \""),
    )?;
    let out = run(vec![
        "evaluate".into(),
        "-f".into(),
        f.display().to_string(),
    ])
    .await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains(
            "NOT READY GlobMatchesNothing: spec.images.include[0] \"ghcr.io/acme-typo/**\" matches none of the 1 repositories"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("signature-and-sbom  True"), "{stdout}");

    // A bad preset in a policy -> 2, naming the field.
    std::fs::write(&f, compliant.replace("preset: sbom", "preset: sbomz"))?;
    let out = run(vec![
        "evaluate".into(),
        "-f".into(),
        f.display().to_string(),
    ])
    .await?;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("document 2: spec.require"), "{err}");

    // No ReferrerPolicy at all (a CI gate pointed at the wrong folder) -> 2, not "compliant".
    let only_workloads = dir.path().join("workloads.yaml");
    std::fs::write(
        &only_workloads,
        std::fs::read_to_string(demo_dir().join("deployment-complete.yaml"))?
            .replace("REGISTRY_HOST", &host),
    )?;
    let out = run(vec![
        "evaluate".into(),
        "-f".into(),
        only_workloads.display().to_string(),
    ])
    .await?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no ReferrerPolicy"));

    // The same policy twice -> 2.
    std::fs::write(&f, &compliant)?;
    let out = run(vec![
        "evaluate".into(),
        "-f".into(),
        f.display().to_string(),
        "-f".into(),
        f.display().to_string(),
    ])
    .await?;
    // (the same file given twice is read once)
    assert_eq!(out.status.code(), Some(0));
    let twice = dir.path().join("twice.yaml");
    std::fs::write(
        &twice,
        format!(
            "{compliant}\n---\n{}",
            std::fs::read_to_string(demo_dir().join("referrerpolicy.yaml"))?
                .replace("REGISTRY_HOST", &host)
        ),
    )?;
    let out = run(vec![
        "evaluate".into(),
        "-f".into(),
        twice.display().to_string(),
    ])
    .await?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("defined twice"));

    // A missing file -> 2.
    let out = run(vec![
        "evaluate".into(),
        "-f".into(),
        dir.path().join("nope.yaml").display().to_string(),
    ])
    .await?;
    assert_eq!(out.status.code(), Some(2));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_pod_list_snapshot_uses_image_ids() -> TestResult {
    let demo = seed_demo().await?;
    let host = demo.reg.host();
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("profile.yaml"),
        std::fs::read_to_string(demo_dir().join("registryprofile.yaml"))?
            .replace("REGISTRY_HOST", &host),
    )?;
    std::fs::write(
        dir.path().join("policy.yaml"),
        std::fs::read_to_string(demo_dir().join("referrerpolicy.yaml"))?
            .replace("REGISTRY_HOST", &host),
    )?;
    // What `kubectl get pods -A -o json` prints: imageID from containerd, a
    // ReplicaSet owner, and a kind-loaded image with a bare image ID.
    let pod = |name: &str, image: String, image_id: String, owner: Value| {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "prod",
                "labels": {"pod-template-hash": "5d8f7b9c4"},
                "ownerReferences": owner},
            "spec": {"containers": [{"name": "app", "image": image}]},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "app", "image": image, "imageID": image_id, "ready": true,
                "restartCount": 0, "started": true}]}
        })
    };
    let list = json!({
        "apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
        "items": [
            pod("signed-5d8f7b9c4-abcde",
                format!("{host}/demo/complete:1.0"),
                format!("{host}/demo/complete@{}", demo.digests[0]),
                json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "signed-5d8f7b9c4", "uid": "u1", "controller": true}])),
            pod("local-dev",
                format!("{host}/demo/local:dev"),
                "sha256:1234567890123456789012345678901234567890123456789012345678901234".into(),
                json!([])),
        ]
    });
    std::fs::write(
        dir.path().join("pods.json"),
        serde_json::to_vec_pretty(&list)?,
    )?;
    let out = run(vec![
        "evaluate".into(),
        "-f".into(),
        dir.path().display().to_string(),
        "-o".into(),
        "json".into(),
    ])
    .await?;
    // signed is compliant; the locally loaded image is Unknown -> exit 3.
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout)?;
    let status = &report["referrerPolicies"][0]["status"];
    assert_eq!(status["summary"]["compliant"], 1);
    assert_eq!(status["summary"]["unknown"], 1);
    assert_eq!(status["unknown"][0]["reason"], "DigestNotResolvable");
    assert_eq!(
        status["unknown"][0]["workloads"],
        json!([{"namespace": "prod", "kind": "Pod", "name": "local-dev"}])
    );
    Ok(())
}
