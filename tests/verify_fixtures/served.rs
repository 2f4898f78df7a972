//! The published cosign signatures of real images, served by the spec test registry as cosign
//! wrote them (the image manifest from the fixture under its own digest, the `.sig` tag with
//! the published payload and layer annotations), judged by `refwarden verify` and by
//! `refwarden evaluate` with a ReferrerPolicy `verify`: each verifies or fails for the
//! published reason, as through the library.

use super::*;

use refwarden_testkit::{OciRegistry, Quirks, SeedAuth, Seeder, media, referrers_tag_for, tools};
use serde_json::json;

struct Served {
    name: String,
    case: PathBuf,
    expect: Value,
    image: String,
    /// The key file (key cases) or None (keyless).
    key: Option<PathBuf>,
}

fn refwarden(args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_refwarden"))
        .args(args)
        .env("DOCKER_CONFIG", "/nonexistent-refwarden-test")
        .env_remove("REFWARDEN_LOG")
        .output()
        .expect("run refwarden");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Serves every cosign case that carries its image manifest and layer descriptor.
async fn serve(fx: &Path, reg: &OciRegistry, seeder: &Seeder) -> Vec<Served> {
    let mut out = Vec::new();
    for family in ["cosign-key", "cosign-keyless"] {
        for case in cases(&fx.join(family)) {
            if !case.join("manifest.json").is_file()
                || !case.join("layer-descriptor.json").is_file()
            {
                continue;
            }
            let name = self::name(&case);
            let expect = json(&case.join("expect.json"));
            let repo = format!("fixtures/{name}");
            let digest =
                reg.serve_published_manifest(&repo, Some("v1"), &read(&case.join("manifest.json")));
            let layer = json(&case.join("layer-descriptor.json"));
            let payload = read(&case.join("payload.json"));
            let (config_type, config) = (media::OCI_CONFIG, b"{}".to_vec());
            tools::push_layers(
                seeder,
                &repo,
                Some(&format!("{}.sig", referrers_tag_for(&digest))),
                (config_type, config),
                &[(
                    layer["mediaType"].as_str().expect("layer mediaType"),
                    payload.clone(),
                    layer["annotations"].clone(),
                )],
                json!({}),
            )
            .await
            .expect("pushing the published .sig");
            // Served as published: the layer is the very blob the descriptor names.
            assert_eq!(
                format!("sha256:{}", hex::encode(Sha256::digest(&payload))),
                layer["digest"].as_str().unwrap_or_default(),
                "{name}"
            );
            let key = expect["key"].as_str().map(|k| case.join(k));
            out.push(Served {
                image: format!("{}/{repo}@{digest}", reg.host()),
                name,
                case,
                expect,
                key,
            });
        }
    }
    out
}

fn trusted_root_file(fx: &Path, s: &Served) -> PathBuf {
    match s.expect["trusted_root"].as_str() {
        Some(r) => s.case.join(r),
        None => fx.join("trust/public-good/trusted_root.json"),
    }
}

fn expected_reason(s: &Served) -> Option<&'static str> {
    if s.expect["verifies"].as_bool().unwrap_or(false) {
        None
    } else {
        Some(reason_for(s.expect["fails_because"].as_str().unwrap_or_default()).as_str())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_cosign_signatures_through_verify_and_evaluate() {
    let Some(fx) = fixtures() else { return };
    let reg = OciRegistry::start(Quirks::default()).expect("registry");
    let seeder = Seeder::new(&reg.url(), SeedAuth::None).expect("seeder");
    let served = serve(&fx, &reg, &seeder).await;
    assert_eq!(served.len(), 11, "cosign cases with their image manifest");

    // `refwarden verify`, as cosign verify would be run on each.
    for s in &served {
        let root = trusted_root_file(&fx, s);
        let root_s = root.display().to_string();
        let mut args: Vec<String> = vec![
            "verify".into(),
            s.image.clone(),
            "--plain-http".into(),
            "-o".into(),
            "json".into(),
            "--trusted-root".into(),
            root_s,
        ];
        match &s.key {
            Some(k) => {
                args.extend(["--key".into(), k.display().to_string()]);
                if s.expect.get("rekor_key").is_none() {
                    args.push("--insecure-ignore-tlog".into());
                }
            }
            None => {
                let id = &s.expect["identity"];
                let san = id["san_email"]
                    .as_str()
                    .or(id["san_uri"].as_str())
                    .unwrap_or_default();
                args.extend([
                    "--certificate-identity".into(),
                    san.into(),
                    "--certificate-oidc-issuer".into(),
                    id["issuer"].as_str().unwrap_or_default().into(),
                ]);
            }
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stdout, stderr) = tokio::task::spawn_blocking({
            let a: Vec<String> = a.iter().map(|s| s.to_string()).collect();
            move || {
                let a: Vec<&str> = a.iter().map(String::as_str).collect();
                refwarden(&a)
            }
        })
        .await
        .expect("join");
        let v: Value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        match expected_reason(s) {
            None => {
                assert_eq!(code, Some(0), "{}: {stdout}\n{stderr}", s.name);
                assert_eq!(v["referrers"][0]["method"], "cosign-tag", "{}", s.name);
            }
            Some(reason) => {
                assert_eq!(code, Some(1), "{}: {stdout}\n{stderr}", s.name);
                assert_eq!(v["referrers"][0]["reason"], reason, "{}: {v:#}", s.name);
            }
        }
    }

    // `refwarden evaluate`: one policy per case over its image, the trust in ConfigMaps.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut docs: Vec<Value> = Vec::new();
    for (i, s) in served.iter().enumerate() {
        let root = read(&trusted_root_file(&fx, s));
        let cm = format!("trust-{i}");
        let mut data = serde_json::Map::new();
        data.insert(
            "trusted_root.json".into(),
            Value::String(String::from_utf8(root).expect("UTF-8 root")),
        );
        let mut verify =
            json!({"trustedRootRef": {"namespace": "ops", "name": cm, "key": "trusted_root.json"}});
        match &s.key {
            Some(k) => {
                data.insert("cosign.pub".into(), Value::String(text(k)));
                verify["keys"] = json!([{"configMapRef": {"namespace": "ops", "name": cm, "key": "cosign.pub"}}]);
                if s.expect.get("rekor_key").is_none() {
                    verify["ignoreTlog"] = json!(true);
                }
            }
            None => {
                let id = &s.expect["identity"];
                let san = id["san_email"]
                    .as_str()
                    .or(id["san_uri"].as_str())
                    .unwrap_or_default();
                verify["keyless"] =
                    json!({"identities": [{"issuer": id["issuer"], "subject": san}]});
            }
        }
        docs.push(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": cm, "namespace": "ops"}, "data": data}));
        let repo = s.image.split('@').next().unwrap_or_default().to_string();
        docs.push(
            json!({"apiVersion": "refwarden.dev/v1alpha1", "kind": "ReferrerPolicy",
            "metadata": {"name": format!("case-{i}")},
            "spec": {"images": {"include": [repo]}, "subjectMatch": "Exact",
                     "require": [{"name": "signature", "preset": "signature", "verify": verify}]}}),
        );
        docs.push(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("pod-{i}"), "namespace": "apps"},
            "spec": {"containers": [{"name": "c", "image": s.image}]}}));
    }
    for (i, d) in docs.iter().enumerate() {
        fs::write(dir.path().join(format!("{i:03}.json")), d.to_string()).expect("write");
    }
    let path = dir.path().display().to_string();
    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || {
        refwarden(&["evaluate", "-f", &path, "--plain-http", "-o", "json"])
    })
    .await
    .expect("join");
    assert_eq!(code, Some(1), "violations expected: {stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("evaluate JSON");
    for (i, s) in served.iter().enumerate() {
        let status = report["referrerPolicies"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["name"] == format!("case-{i}")))
            .map(|p| p["status"].clone())
            .unwrap_or_default();
        match expected_reason(s) {
            None => {
                assert_eq!(status["summary"]["verified"], 1, "{}: {status:#}", s.name);
                let signer = status["verified"][0]["referrers"][0]["signer"]
                    .as_str()
                    .unwrap_or_default();
                let want = if s.key.is_some() {
                    "key sha256:"
                } else {
                    "identity "
                };
                assert!(signer.starts_with(want), "{}: {signer}", s.name);
            }
            Some(reason) => {
                assert_eq!(status["summary"]["unverified"], 1, "{}: {status:#}", s.name);
                assert_eq!(
                    status["violations"][0]["unverified"][0]["reason"], reason,
                    "{}: {status:#}",
                    s.name
                );
            }
        }
    }
}
