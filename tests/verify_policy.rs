//! ReferrerPolicy `verify` as users run it: `refwarden evaluate` on files (pods, the policy, the
//! ConfigMaps its trust names) against real registries holding really signed artifacts —
//! key-signed cosign 2 `.sig` tags on Debian's distribution 2.8, a keyless sigstore bundle and a
//! Notation JWS signature as referrers on the spec registry — and the library path that shows a
//! recheck costs no request and no signature check. Material is generated offline
//! (`support/sigstore_gen.rs`, `verify_generated/docs.rs`).

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use refwarden::crd::ReferrerPolicySpec;
use refwarden::discovery::{Discoverer, DiscovererConfig};
use refwarden::policy::{PodInfo, PolicyInput, TrustObjects, Verifier, evaluate_policy};
use refwarden::registry::{ImplicitAccess, PlainHttp, RegistryDirectory};
use refwarden_testkit as support;
use serde_json::{Value, json};
use support::faults::{Action, FaultProxy, Rule, Synth};
use support::seed::ArtifactSpec;
use support::{
    DistributionOptions, DistributionRegistry, OciRegistry, Quirks, SeedAuth, Seeder, tools,
};

mod g {
    pub use refwarden_testkit::sigstore_docs::*;
    pub use refwarden_testkit::sigstore_gen::*;
}

type TestResult = support::Result<()>;

const ISSUER: &str = "https://issuer.test";
const EMAIL: &str = "dev@example.com";
const NS: &str = "refwarden-system";

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
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

async fn evaluate(dir: &Path) -> support::Result<(Run, Value)> {
    let dir = dir.display().to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_refwarden"))
            .args(["evaluate", "-f", &dir, "--plain-http", "-o", "json"])
            .env("DOCKER_CONFIG", "/nonexistent-refwarden-test")
            .env_remove("REFWARDEN_LOG")
            .output()
    })
    .await??;
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let v = serde_json::from_str(&run.stdout).unwrap_or(Value::Null);
    Ok((run, v))
}

fn write_json(dir: &Path, name: &str, v: &Value) -> std::io::Result<()> {
    std::fs::write(dir.join(name), serde_json::to_vec_pretty(v)?)
}

fn pod(name: &str, image: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "apps"},
        "spec": {"containers": [{"name": "c", "image": image}]}})
}

fn config_map(name: &str, key: &str, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NS}, "data": {key: value}})
}

fn policy(name: &str, require: Value) -> Value {
    json!({"apiVersion": "refwarden.dev/v1alpha1", "kind": "ReferrerPolicy",
        "metadata": {"name": name}, "spec": {"require": require}})
}

/// `sha256:<hex>` of the key's DER SubjectPublicKeyInfo (the verifier's fingerprint).
fn fingerprint(k: &g::Key) -> String {
    format!("sha256:{}", hex::encode(g::sha256(&k.spki_der())))
}

fn by_digest<'a>(list: &'a Value, digest: &str) -> &'a Value {
    list.as_array()
        .and_then(|a| a.iter().find(|v| v["digest"] == digest))
        .unwrap_or(&Value::Null)
}

/// Key-signed cosign 2 tags on distribution 2.8, judged by a policy whose key is in a
/// ConfigMap: the right key is compliant (status lists the key and the referrer); a valid
/// signature over another digest is a violation `DigestMismatch`; another key's signature is
/// `NoSignatureByTrustedKey`; a signature blob the registry will not hand over is Unknown,
/// never a violation. The same images under the same requirement without `verify` are all
/// compliant: presence is not trust.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_signatures_through_evaluate_on_distribution() -> TestResult {
    support::init_tracing();
    let reg = DistributionRegistry::start(DistributionOptions::default())?;
    let proxy = FaultProxy::in_front_of(&reg.url())?;
    let seeder = Seeder::new(&reg.url(), SeedAuth::None)?;
    let key = g::Key::generate(g::Alg::P256);
    let other = g::Key::generate(g::Alg::P256);
    let host = proxy.host();

    let good = seeder.push_image("app", "good").await?;
    let (good_sig, good_layer) =
        tools::cosign2_sign_with_key(&seeder, "app", &good.digest, &good.digest, &key).await?;
    let moved = seeder.push_image("app", "moved").await?;
    tools::cosign2_sign_with_key(&seeder, "app", &moved.digest, &good.digest, &key).await?;
    let foreign = seeder.push_image("app", "foreign").await?;
    tools::cosign2_sign_with_key(&seeder, "app", &foreign.digest, &foreign.digest, &other).await?;
    let broken = seeder.push_image("app", "broken").await?;
    let (_, broken_layer) =
        tools::cosign2_sign_with_key(&seeder, "app", &broken.digest, &broken.digest, &key).await?;
    proxy.set_rules(vec![Rule::on(
        &format!("/blobs/{broken_layer}"),
        Action::Respond(Synth::new(500)),
    )]);

    let dir = tempfile::tempdir()?;
    for (name, img) in [
        ("good", &good),
        ("moved", &moved),
        ("foreign", &foreign),
        ("broken", &broken),
    ] {
        write_json(
            dir.path(),
            &format!("pod-{name}.json"),
            &pod(name, &format!("{host}/app@{}", img.digest)),
        )?;
    }
    write_json(
        dir.path(),
        "key.json",
        &config_map("cosign-key", "cosign.pub", &key.public_pem()),
    )?;
    write_json(
        dir.path(),
        "policy.json",
        &policy(
            "signed",
            json!([{"name": "signature", "preset": "signature", "verify": {
                "keys": [{"configMapRef": {"namespace": NS, "name": "cosign-key", "key": "cosign.pub"}}],
                "ignoreTlog": true,
            }}]),
        ),
    )?;
    proxy.clear_log();
    let (run, v) = evaluate(dir.path()).await?;
    assert_eq!(run.code, Some(1), "{run}");
    let status = &v["referrerPolicies"][0]["status"];
    assert_eq!(
        status["summary"],
        json!({"pods": 4, "images": 4, "compliant": 1, "nonCompliant": 2, "unknown": 1,
            "verified": 1, "unverified": 2}),
        "{run}"
    );
    let verified = by_digest(&status["verified"], &good.digest);
    assert_eq!(verified["referrers"][0]["referrer"], good_sig.as_str());
    assert_eq!(
        verified["referrers"][0]["signer"],
        format!("key {}", fingerprint(&key)).as_str()
    );
    assert_eq!(verified["referrers"][0]["format"], "cosign-simple-signing");
    let m = by_digest(&status["violations"], &moved.digest);
    assert_eq!(m["missing"], json!(["signature"]));
    assert_eq!(m["unverified"][0]["reason"], "DigestMismatch", "{m:#}");
    let f = by_digest(&status["violations"], &foreign.digest);
    assert_eq!(
        f["unverified"][0]["reason"], "NoSignatureByTrustedKey",
        "{f:#}"
    );
    let b = by_digest(&status["unknown"], &broken.digest);
    assert_eq!(b["reason"], "RegistryUnavailable", "{status:#}");
    assert!(
        b["message"]
            .as_str()
            .is_some_and(|m| m.contains("RegistryError")),
        "{b:#}"
    );
    let compliant = status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Compliant"))
        .cloned()
        .unwrap_or_default();
    assert!(
        compliant["message"]
            .as_str()
            .is_some_and(|m| m.contains("2 with referrers that do not verify")),
        "{compliant:#}"
    );
    // Verifying the good image cost its `.sig` manifest and its one layer. The `moved` image's
    // signature carries the very same payload (good's digest, same key: same bytes, same blob),
    // read once more for that other referrer.
    assert_eq!(proxy.count(&format!("/v2/app/manifests/{good_sig}")), 1);
    assert_eq!(proxy.count(&format!("/v2/app/blobs/{good_layer}")), 2);

    // Presence alone: every image carries a signature-typed referrer.
    write_json(
        dir.path(),
        "policy.json",
        &policy(
            "signed",
            json!([{"name": "signature", "preset": "signature"}]),
        ),
    )?;
    let (run, v) = evaluate(dir.path()).await?;
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(
        v["referrerPolicies"][0]["status"]["summary"]["compliant"], 4,
        "{run}"
    );

    // A key that is not in the files: bad input naming the field, exit 2.
    write_json(
        dir.path(),
        "policy.json",
        &policy(
            "signed",
            json!([{"name": "signature", "preset": "signature", "verify": {
                "keys": [{"secretRef": {"namespace": NS, "name": "absent", "key": "cosign.pub"}}],
                "ignoreTlog": true,
            }}]),
        ),
    )?;
    let (run, _) = evaluate(dir.path()).await?;
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr
            .contains("spec.require[0].verify.keys[0].secretRef"),
        "{run}"
    );
    assert!(
        run.stderr.contains("Secret refwarden-system/absent"),
        "{run}"
    );
    proxy.heal();
    Ok(())
}

/// A keyless bundle (cosign 3 style DSSE `sign/v1`, Fulcio-like certificate, Rekor-like entry
/// with SET and inclusion proof) and a Notation JWS signature as referrers on the spec registry,
/// each judged by a policy with its trust in ConfigMaps: the right identity and trust store
/// verify; a wrong identity is `IdentityMismatch`; a trust store of another root is
/// `UntrustedRoot`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_and_notation_referrers_through_evaluate() -> TestResult {
    support::init_tracing();
    let reg = OciRegistry::start(Quirks::default())?;
    let seeder = Seeder::new(&reg.url(), SeedAuth::None)?;
    let t0 = jiff::Timestamp::now().as_second() as u64 - 3600;

    // Keyless.
    let keyless_img = seeder.push_image("app", "keyless").await?;
    let mut world = g::Keyless::new(EMAIL, ISSUER, t0);
    let (bundle, entry) = world.cosign3_bundle(&keyless_img.digest);
    tools::push_sigstore_bundle(&seeder, "app", keyless_img.subject(), bundle).await?;
    let root = world.trusted_root();

    // Notation.
    let notation_img = seeder.push_image("app", "notation").await?;
    let n_root = g::Ca::root("notation-root", t0 - 86_400 * 365, t0 + 86_400 * 365 * 10);
    let n_key = g::Key::generate(g::Alg::P256);
    let n_leaf = g::notation_leaf(
        &n_key,
        &n_root,
        "Acme",
        t0 - 86_400,
        t0 + 86_400 * 365,
        vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning],
    );
    let target = json!({"mediaType": notation_img.media_type, "digest": notation_img.digest,
        "size": notation_img.size});
    let signed_at = jiff::Timestamp::from_second(t0 as i64 + 600)
        .map_err(|e| e.to_string())?
        .to_string();
    let jws = g::notation_jws(
        &n_key,
        std::slice::from_ref(&n_leaf),
        &target,
        &signed_at,
        None,
    );
    seeder
        .push_artifact_spec(
            "app",
            &ArtifactSpec {
                subject: Some(notation_img.subject()),
                artifact_type: Some(refwarden::oci::NOTATION_SIGNATURE.into()),
                config: None,
                layer_media_type: refwarden::oci::NOTATION_JWS.into(),
                payload: jws,
                annotations: BTreeMap::new(),
                tag: None,
            },
        )
        .await?;
    let other_root = g::Ca::root("other-root", t0 - 86_400, t0 + 86_400 * 365);

    let host = reg.host();
    let dir = tempfile::tempdir()?;
    write_json(
        dir.path(),
        "pod-keyless.json",
        &pod("keyless", &format!("{host}/app@{}", keyless_img.digest)),
    )?;
    write_json(
        dir.path(),
        "pod-notation.json",
        &pod("notation", &format!("{host}/app@{}", notation_img.digest)),
    )?;
    write_json(
        dir.path(),
        "root.json",
        &config_map(
            "sigstore-root",
            "trusted_root.json",
            std::str::from_utf8(&root)?,
        ),
    )?;
    write_json(
        dir.path(),
        "store.json",
        &json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "notation-store", "namespace": NS},
            "data": {"acme.pem": g::pem("CERTIFICATE", &n_root.der),
                     "other.pem": g::pem("CERTIFICATE", &other_root.der)}}),
    )?;
    let write_policies = |subject_re: &str, store_key: &str| -> std::io::Result<()> {
        write_json(
            dir.path(),
            "policy-keyless.json",
            &json!({"apiVersion": "refwarden.dev/v1alpha1", "kind": "ReferrerPolicy",
            "metadata": {"name": "keyless"},
            "spec": {"images": {"include": [format!("{host}/app")]},
              "require": [{"name": "bundle", "preset": "sigstore-bundle", "verify": {
                "trustedRootRef": {"namespace": NS, "name": "sigstore-root", "key": "trusted_root.json"},
                "keyless": {"identities": [{"issuer": ISSUER, "subjectRegExp": subject_re}]},
            }}]}}),
        )?;
        write_json(
            dir.path(),
            "policy-notation.json",
            &json!({"apiVersion": "refwarden.dev/v1alpha1", "kind": "ReferrerPolicy",
            "metadata": {"name": "notation"},
            "spec": {"require": [{"name": "notation", "preset": "notation-signature", "verify": {
                "notation": {
                    "trustStore": {"configMapRef": {"namespace": NS, "name": "notation-store", "key": store_key}},
                    "trustedIdentities": ["x509.subject: C=US, ST=WA, O=Acme"],
                },
            }}]}}),
        )
    };
    let status_of = |v: &Value, name: &str| -> Value {
        v["referrerPolicies"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["name"] == name))
            .map(|p| p["status"].clone())
            .unwrap_or_default()
    };

    write_policies(r"dev@example\.com", "acme.pem")?;
    let (run, v) = evaluate(dir.path()).await?;
    assert_eq!(run.code, Some(1), "{run}");
    // Each policy selects both images; each image carries one kind of signature.
    let k = status_of(&v, "keyless");
    let kv = by_digest(&k["verified"], &keyless_img.digest);
    assert_eq!(
        kv["referrers"][0]["signer"],
        format!("identity {ISSUER} {EMAIL}").as_str(),
        "{k:#}"
    );
    assert_eq!(kv["referrers"][0]["format"], "sigstore-bundle-v0.3");
    assert_eq!(kv["referrers"][0]["logIndex"], entry.log_index);
    let n = status_of(&v, "notation");
    let nv = by_digest(&n["verified"], &notation_img.digest);
    assert_eq!(nv["referrers"][0]["format"], "notation-jws", "{n:#}");
    assert!(
        nv["referrers"][0]["signer"]
            .as_str()
            .is_some_and(|s| s.starts_with("certificate ") && s.contains("Acme")),
        "{nv:#}"
    );
    // The image without a bundle misses it (no referrer, nothing unverified).
    let missing = by_digest(&k["violations"], &notation_img.digest);
    assert_eq!(missing["missing"], json!(["bundle"]), "{k:#}");
    assert!(missing.get("unverified").is_none(), "{missing:#}");

    // A subject regexp is anchored: a prefix does not match the whole SAN.
    write_policies(r"dev@example", "other.pem")?;
    let (run, v) = evaluate(dir.path()).await?;
    assert_eq!(run.code, Some(1), "{run}");
    let k = status_of(&v, "keyless");
    let kv = by_digest(&k["violations"], &keyless_img.digest);
    assert_eq!(kv["unverified"][0]["reason"], "IdentityMismatch", "{k:#}");
    assert_eq!(k["summary"]["unverified"], 1);
    let n = status_of(&v, "notation");
    let nv = by_digest(&n["violations"], &notation_img.digest);
    assert_eq!(nv["unverified"][0]["reason"], "UntrustedRoot", "{n:#}");
    Ok(())
}

fn directory() -> RegistryDirectory {
    RegistryDirectory::with_implicit(ImplicitAccess {
        plain_http: PlainHttp::All,
        ..ImplicitAccess::default()
    })
}

/// Verdicts are cached by (referrer, subject, trust): a second evaluation with the same
/// Discoverer and Verifier sends no request and checks no signature; other trust (another key)
/// is verified afresh and comes to another verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recheck_costs_no_request_and_no_signature_check() -> TestResult {
    support::init_tracing();
    let reg = DistributionRegistry::start(DistributionOptions::default())?;
    let proxy = FaultProxy::in_front_of(&reg.url())?;
    let seeder = Seeder::new(&reg.url(), SeedAuth::None)?;
    let key = g::Key::generate(g::Alg::P256);
    let other = g::Key::generate(g::Alg::P256);
    let img = seeder.push_image("app", "v1").await?;
    tools::cosign2_sign_with_key(&seeder, "app", &img.digest, &img.digest, &key).await?;
    let image = format!("{}/app@{}", proxy.host(), img.digest);
    let pods: Vec<PodInfo> = vec![support::running_pod("p", image.clone(), image)];
    let spec_for = |pem: &str| -> ReferrerPolicySpec {
        serde_json::from_value(
            json!({"require": [{"name": "signature", "preset": "signature",
            "verify": {"keys": [{"pem": pem}], "ignoreTlog": true}}]}),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let dir = directory();
    let discoverer = Discoverer::new(DiscovererConfig::default());
    let verifier = Verifier::new();
    let objects = TrustObjects::default();
    let run = |spec: ReferrerPolicySpec| {
        let (dir, discoverer, verifier, objects, pods) =
            (&dir, &discoverer, &verifier, &objects, &pods);
        async move {
            let input = PolicyInput {
                name: "p",
                spec: &spec,
                generation: Some(1),
                previous: None,
                trust: objects,
            };
            evaluate_policy(
                &input,
                pods.iter(),
                &BTreeMap::new(),
                dir,
                discoverer,
                verifier,
                Time(jiff::Timestamp::now()),
            )
            .await
            .status
        }
    };
    let checked = |v: &Verifier| v.stats.checked.load(std::sync::atomic::Ordering::Relaxed);

    proxy.clear_log();
    let s = run(spec_for(&key.public_pem())).await;
    assert_eq!(s.summary.verified, 1, "{s:#?}");
    let cold = proxy.log().len();
    assert!(cold >= 3, "discovery + manifest + blob: {:#?}", proxy.log());
    assert_eq!(checked(&verifier), 1);

    proxy.clear_log();
    let s = run(spec_for(&key.public_pem())).await;
    assert_eq!(s.summary.verified, 1);
    assert_eq!(proxy.log().len(), 0, "{:#?}", proxy.log());
    assert_eq!(checked(&verifier), 1, "no second signature check");
    assert_eq!(
        verifier
            .stats
            .cache_hits
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    // Other trust: verified afresh (the evidence read again), another verdict.
    let s = run(spec_for(&other.public_pem())).await;
    assert_eq!(s.summary.unverified, 1, "{s:#?}");
    assert_eq!(
        s.violations[0].unverified[0].reason,
        "NoSignatureByTrustedKey"
    );
    assert_eq!(checked(&verifier), 2);
    Ok(())
}
