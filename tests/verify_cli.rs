//! `refwarden verify` as a user runs it, against really signed artifacts: key-signed cosign 2
//! `.sig` tags on Debian's distribution 2.8 (no referrers API), a keyless sigstore bundle
//! referrer on the spec registry (referrers API), material generated offline
//! (`refwarden_testkit::sigstore_gen`, `refwarden_testkit::sigstore_docs`). Exit codes 0/1/2/3, the JSON
//! report, and what reading the evidence costs (from the registries' access logs).

use std::path::{Path, PathBuf};

use refwarden_testkit::faults::{Action, FaultProxy, Rule, Synth};
use refwarden_testkit::{
    DistributionOptions, DistributionRegistry, OciRegistry, Quirks, SeedAuth, Seeder, media,
    referrers_tag_for, tools,
};
use serde_json::{Value, json};

mod g {
    pub use refwarden_testkit::sigstore_docs::*;
    pub use refwarden_testkit::sigstore_gen::*;
}

type TestResult = refwarden_testkit::Result<()>;

const ISSUER: &str = "https://issuer.test";
const EMAIL: &str = "dev@example.com";
const SIGN_V1: &str = "https://sigstore.dev/cosign/sign/v1";

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("stdout is not JSON ({e}): {}\n{}", self.stdout, self.stderr)
        })
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn refwarden(args: &[&str]) -> Run {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_refwarden"))
        .args(args)
        // No Docker config of the machine running the tests.
        .env("DOCKER_CONFIG", "/nonexistent-refwarden-test")
        .env_remove("REFWARDEN_LOG")
        .output()
        .expect("run refwarden");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn write(dir: &Path, name: &str, content: &[u8]) -> String {
    let p: PathBuf = dir.join(name);
    std::fs::write(&p, content).expect("write");
    p.display().to_string()
}

/// `sha256:<hex>` of the key's DER SubjectPublicKeyInfo (the verifier's fingerprint).
fn fingerprint(k: &g::Key) -> String {
    format!("sha256:{}", hex::encode(g::sha256(&k.spki_der())))
}

/// A cosign 2 `.sig` tag for `subject_digest` with one simple-signing layer per
/// (signed digest, signing key). Returns the manifest digest and the layer digests.
async fn push_sig_tag(
    seeder: &Seeder,
    repo: &str,
    subject_digest: &str,
    signatures: &[(&str, &g::Key)],
) -> refwarden_testkit::Result<(String, Vec<String>)> {
    let layers: Vec<(&str, Vec<u8>, Value)> = signatures
        .iter()
        .map(|(signed, key)| {
            let payload = g::simple_signing_payload(signed);
            let sig = g::b64(&key.sign(&payload));
            (
                media::COSIGN_SIMPLESIGNING,
                payload,
                json!({"dev.cosignproject.cosign/signature": sig}),
            )
        })
        .collect();
    let layer_digests = layers
        .iter()
        .map(|(_, p, _)| refwarden_testkit::digest_of(p))
        .collect();
    let config = json!({"architecture": "", "os": "", "config": {},
        "rootfs": {"type": "layers", "diff_ids": []}})
    .to_string()
    .into_bytes();
    let (digest, _) = tools::push_layers(
        seeder,
        repo,
        Some(&format!("{}.sig", referrers_tag_for(subject_digest))),
        (media::OCI_CONFIG, config),
        &layers,
        json!({}),
    )
    .await?;
    Ok((digest, layer_digests))
}

/// (a) the right key verifies (exit 0, key fingerprint, found by `cosign-tag`, 2 requests);
/// (b) a wrong key is exit 1 `NoSignatureByTrustedKey`; (c) a signature over another digest is
/// exit 1 `DigestMismatch`; several signatures in one `.sig` are one layer each; a blob the
/// registry will not hand over is exit 3, never "unverified".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_signed_cosign_tags_on_distribution() -> TestResult {
    refwarden_testkit::init_tracing();
    let reg = DistributionRegistry::start(DistributionOptions::default())?;
    let proxy = FaultProxy::in_front_of(&reg.url())?;
    let seeder = Seeder::new(&reg.url(), SeedAuth::None)?;
    let dir = tempfile::tempdir()?;
    let key = g::Key::generate(g::Alg::P256);
    let other = g::Key::generate(g::Alg::P256);
    let key_file = write(dir.path(), "cosign.pub", key.public_pem().as_bytes());
    let other_file = write(dir.path(), "other.pub", other.public_pem().as_bytes());
    let host = proxy.host();
    // `refwarden verify IMAGE --key cosign.pub -o json`, plain HTTP, no transparency log.
    let verify_json = |image: &str| {
        refwarden(&[
            "verify",
            image,
            "--plain-http",
            "--insecure-ignore-tlog",
            "--key",
            &key_file,
            "-o",
            "json",
        ])
    };

    let v1 = seeder.push_image("app", "v1").await?;
    let (sig, layers) = push_sig_tag(&seeder, "app", &v1.digest, &[(&v1.digest, &key)]).await?;
    let image = format!("{host}/app:v1");
    let base = [
        "verify",
        image.as_str(),
        "--plain-http",
        "--insecure-ignore-tlog",
    ];

    // (a) the right key.
    proxy.clear_log();
    let run = verify_json(&image);
    assert_eq!(run.code, Some(0), "{run}");
    let v = run.json();
    assert_eq!(v["result"], "verified", "{v:#}");
    assert_eq!(v["digest"], v1.digest.as_str());
    let r = &v["referrers"][0];
    assert_eq!(r["digest"], sig.as_str());
    assert_eq!(r["format"], "cosign-simple-signing");
    assert_eq!(r["method"], "cosign-tag");
    assert_eq!(
        r["tag"],
        format!("{}.sig", referrers_tag_for(&v1.digest)).as_str()
    );
    assert_eq!(r["result"], "verified");
    assert_eq!(r["verified"]["by"]["kind"], "key");
    assert_eq!(
        r["verified"]["by"]["fingerprint"],
        fingerprint(&key).as_str()
    );
    assert_eq!(r["signatures"][0]["layer"], layers[0].as_str());
    // Reading the evidence: the manifest (by digest) and the one layer blob.
    assert_eq!(v["requests"]["verification"], 2, "{v:#}");
    assert_eq!(r["requests"], 2);
    assert_eq!(proxy.count(&format!("/v2/app/manifests/{sig}")), 1);
    assert_eq!(proxy.count(&format!("/v2/app/blobs/{}", layers[0])), 1);
    let total = v["requests"]["resolve"].as_u64().unwrap_or(0)
        + v["requests"]["discovery"].as_u64().unwrap_or(0)
        + v["requests"]["verification"].as_u64().unwrap_or(0);
    assert_eq!(proxy.log().len() as u64, total, "{:#?}", proxy.log());
    // The table says the same.
    let run = refwarden(&[&base[..], &["--key", &key_file]].concat());
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout
            .contains(&format!("by key {}", fingerprint(&key))),
        "{run}"
    );
    assert!(run.stdout.contains("cosign-tag sha256-"), "{run}");

    // (b) a wrong key.
    let run = refwarden(&[&base[..], &["--key", &other_file, "-o", "json"]].concat());
    assert_eq!(run.code, Some(1), "{run}");
    let v = run.json();
    assert_eq!(v["result"], "unverified");
    assert_eq!(
        v["referrers"][0]["reason"], "NoSignatureByTrustedKey",
        "{v:#}"
    );
    assert!(run.stderr.contains("NoSignatureByTrustedKey"), "{run}");
    let run = refwarden(&[&base[..], &["--key", &other_file]].concat());
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("NoSignatureByTrustedKey"), "{run}");

    // (c) a valid signature by the trusted key, but over v1, tagged for v2.
    let v2 = seeder.push_image("app", "v2").await?;
    push_sig_tag(&seeder, "app", &v2.digest, &[(&v1.digest, &key)]).await?;
    let image2 = format!("{host}/app:v2");
    let run = verify_json(&image2);
    assert_eq!(run.code, Some(1), "{run}");
    let v = run.json();
    assert_eq!(v["referrers"][0]["reason"], "DigestMismatch", "{v:#}");
    assert!(
        v["referrers"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&v1.digest)),
        "{v:#}"
    );

    // Two signatures in one `.sig` (cosign appends a layer): the second, by the trusted key,
    // verifies; 1 manifest + 2 blobs.
    let v3 = seeder.push_image("app", "v3").await?;
    let (_, layers3) = push_sig_tag(
        &seeder,
        "app",
        &v3.digest,
        &[(&v3.digest, &other), (&v3.digest, &key)],
    )
    .await?;
    let image3 = format!("{host}/app@{}", v3.digest);
    let run = verify_json(&image3);
    assert_eq!(run.code, Some(0), "{run}");
    let v = run.json();
    let r = &v["referrers"][0];
    assert_eq!(
        r["signatures"][0]["reason"], "NoSignatureByTrustedKey",
        "{v:#}"
    );
    assert_eq!(r["signatures"][1]["verdict"], "Verified");
    assert_eq!(
        r["verified"]["by"]["fingerprint"],
        fingerprint(&key).as_str()
    );
    assert_eq!(v["requests"]["verification"], 3, "≤ 2 per signature: {v:#}");

    // The registry will not hand over the signature blob: Unknown (3), not unverified.
    proxy.set_rules(vec![
        Rule::on(
            &format!("/blobs/{}", layers3[1]),
            Action::Respond(Synth::new(500)),
        ),
        Rule::on(
            &format!("/blobs/{}", layers3[0]),
            Action::Respond(Synth::new(500)),
        ),
    ]);
    let run = verify_json(&image3);
    assert_eq!(run.code, Some(3), "{run}");
    let v = run.json();
    assert_eq!(v["result"], "unknown", "{v:#}");
    assert_eq!(v["referrers"][0]["result"], "unknown");
    assert_eq!(v["referrers"][0]["reason"], "RegistryError");
    // The crate's one HTTP table names the other failures, as discovery and the probe do: a
    // signature blob gone (collected after the listing) and a registry that refuses it.
    for (status, reason) in [(404, "ReferrerNotFound"), (403, "InsufficientPermissions")] {
        proxy.set_rules(vec![Rule::on(
            &format!("/blobs/{}", layers3[0]),
            Action::Respond(Synth::new(status)),
        )]);
        let run = verify_json(&image3);
        assert_eq!(run.code, Some(3), "HTTP {status}: {run}");
        assert_eq!(run.json()["referrers"][0]["reason"], reason, "{run}");
    }
    // Other bytes than the digest names: Unknown too, and never judged.
    proxy.set_rules(vec![Rule::on(
        &format!("/blobs/{}", layers3[0]),
        Action::Respond(Synth::new(200).body(b"{}".to_vec())),
    )]);
    let run = verify_json(&image3);
    assert_eq!(run.code, Some(3), "{run}");
    assert_eq!(
        run.json()["referrers"][0]["reason"],
        "ContentDigestMismatch",
        "{run}"
    );
    proxy.heal();
    Ok(())
}

/// (d) a cosign 3 style keyless sigstore bundle referrer (DSSE `sign/v1`, Fulcio-like
/// certificate, Rekor-like entry with SET and inclusion proof) on the spec registry: the right
/// identity verifies (exit 0, found `native`, the log index); a wrong or partial identity
/// regexp is exit 1 `IdentityMismatch` (regexps are anchored).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_bundle_referrer_on_the_spec_registry() -> TestResult {
    refwarden_testkit::init_tracing();
    let reg = OciRegistry::start(Quirks::default())?;
    let seeder = Seeder::new(&reg.url(), SeedAuth::None)?;
    let img = seeder.push_image("app", "v1").await?;
    let t0 = jiff::Timestamp::now().as_second() as u64 - 3600;
    let mut world = g::Keyless::new(EMAIL, ISSUER, t0);
    let (bundle, entry) = world.cosign3_bundle(&img.digest);
    let pushed = tools::push_sigstore_bundle(&seeder, "app", img.subject(), bundle).await?;
    let dir = tempfile::tempdir()?;
    let root = world.trusted_root();
    let root_file = write(dir.path(), "trusted_root.json", &root);
    let image = format!("{}/app:v1", reg.host());
    let base = [
        "verify",
        image.as_str(),
        "--plain-http",
        "--trusted-root",
        root_file.as_str(),
        "-o",
        "json",
    ];

    reg.clear_access_log();
    let run = refwarden(
        &[
            &base[..],
            &[
                "--certificate-identity",
                EMAIL,
                "--certificate-oidc-issuer",
                ISSUER,
            ],
        ]
        .concat(),
    );
    assert_eq!(run.code, Some(0), "{run}");
    let v = run.json();
    let r = &v["referrers"][0];
    assert_eq!(r["digest"], pushed.digest.as_str(), "{v:#}");
    assert_eq!(r["method"], "native");
    assert_eq!(r["format"], "sigstore-bundle-v0.3");
    assert_eq!(r["role"], "signature");
    assert_eq!(r["verified"]["by"]["kind"], "identity");
    assert_eq!(r["verified"]["by"]["subject"], EMAIL);
    assert_eq!(r["verified"]["by"]["issuer"], ISSUER);
    assert_eq!(r["verified"]["logIndex"], entry.log_index);
    assert_eq!(r["verified"]["predicateType"], SIGN_V1);
    assert_eq!(v["requests"]["verification"], 2, "{v:#}");
    assert_eq!(
        reg.count_requests("GET", &format!("/v2/app/manifests/{}", pushed.digest)),
        1,
        "{:#?}",
        reg.access_log()
    );
    assert_eq!(
        reg.count_requests("GET", &format!("/v2/app/blobs/{}", pushed.layer_digest)),
        1
    );
    assert_eq!(reg.request_count() as u64, {
        let q = &v["requests"];
        q["resolve"].as_u64().unwrap_or(0)
            + q["discovery"].as_u64().unwrap_or(0)
            + q["verification"].as_u64().unwrap_or(0)
    });

    // The right identity as anchored regexps.
    let run = refwarden(
        &[
            &base[..],
            &[
                "--certificate-identity-regexp",
                r".*@example\.com",
                "--certificate-oidc-issuer-regexp",
                r"https://issuer\.test",
            ],
        ]
        .concat(),
    );
    assert_eq!(run.code, Some(0), "{run}");

    for wrong in [r".*@evil\.test", "example"] {
        let run = refwarden(
            &[
                &base[..],
                &[
                    "--certificate-identity-regexp",
                    wrong,
                    "--certificate-oidc-issuer",
                    ISSUER,
                ],
            ]
            .concat(),
        );
        assert_eq!(run.code, Some(1), "{wrong}: {run}");
        let v = run.json();
        assert_eq!(v["referrers"][0]["reason"], "IdentityMismatch", "{v:#}");
    }

    // A `sign/v1` bundle is a signature: asking for an attestation finds none.
    let run = refwarden(
        &[
            &base[..],
            &[
                "--certificate-identity",
                EMAIL,
                "--certificate-oidc-issuer",
                ISSUER,
            ],
            &["--type", "attestation"],
        ]
        .concat(),
    );
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("no attestation found"), "{run}");
    Ok(())
}

/// (e) nothing listens where the registry should be: exit 3 with the JSON error object.
#[test]
fn registry_down_is_unknown() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let dir = tempfile::tempdir().expect("tempdir");
    let key = g::Key::generate(g::Alg::P256);
    let key_file = write(dir.path(), "cosign.pub", key.public_pem().as_bytes());
    let image = format!("127.0.0.1:{port}/app:v1");
    let run = refwarden(&[
        "verify",
        &image,
        "--plain-http",
        "--key",
        &key_file,
        "--insecure-ignore-tlog",
        "--timeout-seconds",
        "5",
        "-o",
        "json",
    ]);
    assert_eq!(run.code, Some(3), "{run}");
    let v = run.json();
    assert_eq!(v["error"]["exitCode"], 3, "{v:#}");
    assert_eq!(v["error"]["reason"], "RegistryError");
    let run = refwarden(&[
        "verify",
        &format!("127.0.0.1:{port}/app@sha256:{}", "a".repeat(64)),
        "--plain-http",
        "--key",
        &key_file,
        "--insecure-ignore-tlog",
        "--timeout-seconds",
        "5",
    ]);
    assert_eq!(run.code, Some(3), "by digest (discovery Unknown): {run}");
}

/// (f) bad input is exit 2, before any request: no trust at all, an unreadable key, half an
/// identity, keyless without a trusted root, a key without a log and without
/// --insecure-ignore-tlog, a bad regexp.
#[test]
fn bad_input_is_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = g::Key::generate(g::Alg::P256);
    let key_file = write(dir.path(), "cosign.pub", key.public_pem().as_bytes());
    let junk = write(dir.path(), "junk.pub", b"not a key");
    let missing = dir.path().join("missing.pub").display().to_string();
    // Port 9 (discard): never contacted, every case fails before the network.
    let image = "127.0.0.1:9/app:v1";
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![], "no trust configured"),
        (vec!["--key", &missing, "--insecure-ignore-tlog"], "--key"),
        (vec!["--key", &junk, "--insecure-ignore-tlog"], "--key"),
        (vec!["--key", &key_file], "--insecure-ignore-tlog"),
        (
            vec!["--certificate-identity", EMAIL],
            "--certificate-oidc-issuer",
        ),
        (
            vec![
                "--certificate-identity",
                EMAIL,
                "--certificate-oidc-issuer",
                ISSUER,
            ],
            "--trusted-root",
        ),
        (
            vec![
                "--certificate-identity-regexp",
                "(",
                "--certificate-oidc-issuer",
                ISSUER,
            ],
            "regular expression",
        ),
        (vec!["--trusted-identity", "*"], "--trust-store"),
    ];
    for (extra, says) in cases {
        let run =
            refwarden(&[&["verify", image, "--plain-http", "-o", "json"][..], &extra].concat());
        assert_eq!(run.code, Some(2), "{extra:?}: {run}");
        let v = run.json();
        assert_eq!(v["error"]["reason"], "BadInput", "{extra:?}: {v:#}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(says)),
            "{extra:?}: {v:#}"
        );
        assert!(!run.stdout.contains("BEGIN PUBLIC KEY"), "{run}");
    }
}
