//! `refwarden lifecycle analyze` as a user runs it: `--deployed` and
//! `--from-cluster` (pods listed from a kubeconfig's API server, here a fake one
//! on 127.0.0.1) must give the same simulation.

use std::process::Command;

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};

fn d(c: char) -> String {
    format!("sha256:{}", std::iter::repeat_n(c, 64).collect::<String>())
}

const POLICY: &str = r#"{"rules":[
 {"rulePriority":1,"selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}}]}"#;

fn inventory() -> Value {
    json!({"imageDetails": [
        {"imageDigest": d('a'), "imageTags": ["v1"], "imagePushedAt": "2025-01-01T00:00:00Z"},
        {"imageDigest": d('1'), "imagePushedAt": "2025-01-02T00:00:00Z", "subjectManifestDigest": d('a')},
        {"imageDigest": d('b'), "imageTags": ["v2"], "imagePushedAt": "2025-01-01T00:00:00Z"},
    ]})
}

fn run(args: &[&str], kubeconfig: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_refwarden"));
    cmd.args(args).env_remove("KUBERNETES_SERVICE_HOST");
    match kubeconfig {
        Some(k) => cmd.env("KUBECONFIG", k),
        None => cmd.env("KUBECONFIG", "/nonexistent/kubeconfig"),
    };
    cmd.output().expect("refwarden runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_cluster_reads_deployed_digests_like_deployed_flag() {
    // A fake API server answering `GET /api/v1/pods` with one running pod of image a.
    let pod_list = json!({
        "apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"},
        "items": [{
            "metadata": {"name": "web-1", "namespace": "prod"},
            "spec": {"containers": [{"name": "app", "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:v1"}]},
            "status": {"containerStatuses": [{"name": "app", "image": "app:v1",
                "imageID": format!("123456789012.dkr.ecr.eu-west-1.amazonaws.com/app@{}", d('a')),
                "ready": true, "restartCount": 0}]}
        }]
    });
    let app = Router::new().route(
        "/api/v1/pods",
        get(move || {
            let body = pod_list.clone();
            async move { axum::Json(body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{addr}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\nusers:\n- name: fake\n  user: {{}}\n"
        ),
    )
    .expect("write kubeconfig");
    let policy = dir.path().join("policy.json");
    std::fs::write(&policy, POLICY).expect("write policy");
    let inv = dir.path().join("inventory.json");
    std::fs::write(&inv, inventory().to_string()).expect("write inventory");
    let (policy, inv, kc) = (
        policy.display().to_string(),
        inv.display().to_string(),
        kubeconfig.display().to_string(),
    );
    let base: Vec<String> = [
        "lifecycle",
        "analyze",
        "--ecr-policy",
        &policy,
        "--inventory",
        &inv,
        "--now",
        "2025-06-01T00:00:00Z",
        "-o",
        "json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let deployed_a = d('a');
    let with_flag = tokio::task::spawn_blocking({
        let mut args = base.clone();
        args.extend(["--deployed".to_string(), deployed_a.clone()]);
        move || run(&args.iter().map(String::as_str).collect::<Vec<_>>(), None)
    })
    .await
    .expect("join");
    let from_cluster = tokio::task::spawn_blocking({
        let mut args = base.clone();
        args.push("--from-cluster".into());
        let kc = kc.clone();
        move || {
            run(
                &args.iter().map(String::as_str).collect::<Vec<_>>(),
                Some(&kc),
            )
        }
    })
    .await
    .expect("join");
    server.abort();
    assert_eq!(
        with_flag.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&with_flag.stderr)
    );
    assert_eq!(
        from_cluster.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&from_cluster.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&with_flag.stdout),
        String::from_utf8_lossy(&from_cluster.stdout)
    );
    // The deployed image's referrer is the one the simulation warns about.
    assert!(String::from_utf8_lossy(&from_cluster.stdout).contains(&d('1')));

    // Without a cluster: exit 2, naming the flag.
    let out = tokio::task::spawn_blocking(move || {
        let mut args: Vec<&str> = base.iter().map(String::as_str).collect();
        args.push("--from-cluster");
        run(&args, None)
    })
    .await
    .expect("join");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--from-cluster"));
}

/// Exit codes per family file flag: 0 safe, 1 findings, 2 bad input naming the file.
#[test]
fn family_flags_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p.display().to_string()
    };
    let safe = write(
        "gitlab-safe.json",
        r#"{"enabled":true,"name_regex":"dev-.*","keep_n":10,"older_than":"30d"}"#,
    );
    let risky = write(
        "gitlab-risky.json",
        r#"{"enabled":true,"name_regex":".*","keep_n":5,"older_than":"14d"}"#,
    );
    let broken = write("gitlab-broken.json", r#"{"enabled": tru"#);
    let ecr_invalid = write(
        "ecr-invalid.json",
        r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":0},"action":{"type":"expire"}}]}"#,
    );
    let code = |args: &[&str]| run(args, None);
    let out = code(&["lifecycle", "analyze", "--gitlab-policy", &safe]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = code(&[
        "lifecycle",
        "analyze",
        "--gitlab-policy",
        &risky,
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        v["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["kind"] == "DeletesReferrers"
                && f["rule"].as_str().unwrap_or("").contains("name_regex")),
        "{v}"
    );
    let out = code(&["lifecycle", "analyze", "--gitlab-policy", &broken]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("gitlab-broken.json"));
    // An invalid ECR policy is a finding (InvalidPolicy naming the rule), not a crash.
    let out = code(&[
        "lifecycle",
        "analyze",
        "--ecr-policy",
        &ecr_invalid,
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let f = &v["findings"][0];
    assert_eq!(f["kind"], "InvalidPolicy", "{v}");
    assert!(f["rule"].as_str().unwrap_or("").contains('1'), "{v}");
}
