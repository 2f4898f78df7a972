//! Credentials go only where they belong, and the client goes only where the registry may send
//! it (`docs/security.md`): hostile registries on loopback ports — a second "CDN" host, a host
//! that issues its own challenge, token realms on plain HTTP, on a metadata name, on a name that
//! resolves to the metadata address — `Link` and upload `Location`s to other origins, oversized
//! tokens and headers; through the client, `refwarden discover` / `probe`, and the controller's
//! discovery path (`evaluate_policy` with a RegistryProfile's client).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use refwarden::crd::{DiscoveryMode, SubjectMatch};
use refwarden::discovery::{Discoverer, DiscoveryOutcome, DiscoveryRequest};
use refwarden::policy::{PolicyInput, evaluate_policy};
use refwarden::probe::{self, ProbeOptions};
use refwarden::registry::{
    Credentials, Endpoint, RegistryClient, RegistryClientConfig, RegistryError, RegistryRequest,
};
use refwarden::registry::{RegistryDirectory, RegistryEntry};
use refwarden_testkit::faults::{Action, FaultProxy, Rule, Seen, Synth};
use refwarden_testkit::{OciRegistry, Quirks, SeedAuth, Seeder};
use secrecy::SecretString;

type TestResult = refwarden_testkit::Result<()>;

const USER: &str = "alice";
const PASSWORD: &str = "egress-Passw0rd-9f2c";
const SIG: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

fn basic() -> Credentials {
    Credentials::Basic {
        username: USER.into(),
        password: SecretString::from(PASSWORD),
    }
}

fn config(url: &str, creds: Credentials) -> RegistryClientConfig {
    refwarden::registry::ensure_crypto_provider();
    let mut cfg = RegistryClientConfig::new(url, url.starts_with("http://")).expect("config");
    cfg.credentials = creds;
    cfg.timeout = Duration::from_secs(5);
    cfg.retry.max_retries = 0;
    cfg
}

fn client(url: &str, creds: Credentials) -> RegistryClient {
    RegistryClient::new(config(url, creds)).expect("client")
}

/// Requests that carried an `Authorization` header.
fn with_auth(log: &[Seen]) -> Vec<String> {
    log.iter()
        .filter(|s| s.header("authorization").is_some())
        .map(|s| s.target.clone())
        .collect()
}

/// A registry front: the spec registry behind a proxy that wants Basic credentials and sends
/// `/manifests/` reads to `cdn` (another host). Returns (proxy, registry, seeded image digest,
/// signature digest).
async fn registry_with_cdn(
    cdn: &str,
) -> refwarden_testkit::Result<(FaultProxy, OciRegistry, String, String)> {
    registry_with_cdn_auth(cdn, true).await
}

/// [`registry_with_cdn`]; with `require_auth` false the registry serves anonymous pulls (the
/// first challenge a client sees then comes from the CDN).
async fn registry_with_cdn_auth(
    cdn: &str,
    require_auth: bool,
) -> refwarden_testkit::Result<(FaultProxy, OciRegistry, String, String)> {
    let reg = OciRegistry::start(Quirks::default())?;
    let seeder = Seeder::new(&reg.url(), SeedAuth::None)?;
    let img = seeder.push_image("app", "v1").await?;
    let sig = seeder
        .push_artifact("app", Some(&img.subject()), SIG, b"sig", None)
        .await?;
    let proxy = FaultProxy::in_front_of(&reg.url())?;
    let cdn = cdn.to_string();
    proxy.set_rules(vec![Rule::any(Action::Dynamic(Arc::new(move |seen| {
        if require_auth && seen.header("authorization").is_none() {
            return Some(Synth::new(401).header("WWW-Authenticate", "Basic realm=\"registry\""));
        }
        if seen.target.contains("/manifests/sha256:") {
            return Some(Synth::new(307).header("Location", format!("{cdn}{}", seen.target)));
        }
        None
    })))]);
    Ok((proxy, reg, img.digest, sig.digest))
}

/// A 401 with its own challenge from a host a redirect led to is not answered, Bearer or Basic:
/// no token request to its realm, no retry with credentials there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_from_another_host_is_not_answered() -> TestResult {
    refwarden_testkit::init_tracing();
    let realm = FaultProxy::standalone()?;
    realm.set_rules(vec![Rule::any(Action::Respond(
        Synth::new(200).json(&serde_json::json!({"token": "stolen"})),
    ))]);
    for challenge in [
        format!("Bearer realm=\"{}/token\",service=\"cdn\"", realm.url()),
        "Basic realm=\"cdn\"".to_string(),
    ] {
        let cdn = FaultProxy::standalone()?;
        cdn.set_rules(vec![Rule::any(Action::Respond(
            Synth::new(401).header("WWW-Authenticate", challenge.clone()),
        ))]);
        // Anonymous pulls on the registry: the first challenge the client sees is the CDN's.
        let (proxy, _reg, _digest, sig) = registry_with_cdn_auth(&cdn.url(), false).await?;
        let c = client(&proxy.url(), basic());
        let resp = c
            .send(RegistryRequest::get(
                format!("/v2/app/manifests/{sig}"),
                Endpoint::ManifestGet,
            ))
            .await?;
        assert_eq!(resp.status.as_u16(), 401, "{challenge}");
        assert_eq!(
            cdn.log().len(),
            1,
            "{challenge}: one request, no retry with credentials"
        );
        assert!(with_auth(&cdn.log()).is_empty(), "{challenge}");
        assert!(
            realm.log().is_empty(),
            "{challenge}: its token realm was asked"
        );
        assert!(with_auth(&proxy.log()).is_empty());
    }
    Ok(())
}

/// Token realms: https unless the registry itself is plain HTTP (checked in the client's unit
/// tests with a TLS server), never a metadata name or a name that resolves to the metadata
/// address, a token endpoint that redirects is an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_realm_rules() -> TestResult {
    // "The metadata service": a loopback server the metadata host name is mapped to.
    let metadata = FaultProxy::standalone()?;
    metadata.set_rules(vec![Rule::any(Action::Respond(
        Synth::new(200).json(&serde_json::json!({"token": "t"})),
    ))]);
    let port = metadata.addr().port();
    for (realm, why) in [
        (
            format!("http://metadata.google.internal:{port}/token"),
            "metadata",
        ),
        (format!("http://rebind.test:{port}/token"), "metadata"),
        (format!("http://169.254.169.254:{port}/token"), "metadata"),
    ] {
        let reg = FaultProxy::standalone()?;
        reg.set_rules(vec![Rule::any(Action::Respond(Synth::new(401).header(
            "WWW-Authenticate",
            format!("Bearer realm=\"{realm}\",service=\"reg\""),
        )))]);
        let mut cfg = config(&reg.url(), basic());
        cfg.resolve.insert(
            "metadata.google.internal".into(),
            vec!["127.0.0.1".parse()?],
        );
        cfg.resolve
            .insert("rebind.test".into(), vec!["169.254.169.254".parse()?]);
        let c = RegistryClient::new(cfg)?;
        let e = c
            .send(RegistryRequest::get("/v2/", Endpoint::Base))
            .await
            .expect_err(&realm);
        assert!(matches!(e, RegistryError::Auth { .. }), "{realm}: {e:?}");
        assert!(e.to_string().contains(why), "{realm}: {e}");
        assert!(
            metadata.log().is_empty(),
            "{realm}: the metadata server was asked"
        );
    }

    // A token endpoint that redirects (to steal the credentials elsewhere): an error, not
    // followed.
    let elsewhere = FaultProxy::standalone()?;
    let token = FaultProxy::standalone()?;
    token.set_rules(vec![Rule::any(Action::Respond(
        Synth::new(302).header("Location", format!("{}/token", elsewhere.url())),
    ))]);
    let reg = FaultProxy::standalone()?;
    reg.set_rules(vec![Rule::any(Action::Respond(Synth::new(401).header(
        "WWW-Authenticate",
        format!("Bearer realm=\"{}/token\"", token.url()),
    )))]);
    let e = client(&reg.url(), basic())
        .send(RegistryRequest::get("/v2/", Endpoint::Base))
        .await
        .expect_err("redirecting token endpoint");
    assert!(e.to_string().contains("302"), "{e}");
    assert!(elsewhere.log().is_empty());
    Ok(())
}

/// `Link` next pages and upload `Location`s must stay on the registry's origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_ups_to_another_origin_are_refused() -> TestResult {
    let other = FaultProxy::standalone()?;
    let reg = OciRegistry::start(Quirks::default())?;
    let seeder = Seeder::new(&reg.url(), SeedAuth::None)?;
    let img = seeder.push_image("app", "v1").await?;
    let proxy = FaultProxy::in_front_of(&reg.url())?;
    let other_url = other.url();
    proxy.set_rules(vec![
        Rule::on(
            "/referrers/",
            Action::Respond(
                Synth::new(200)
                    .header("Content-Type", "application/vnd.oci.image.index.v1+json")
                    .header(
                        "Link",
                        format!("<{other_url}/v2/app/referrers/x?page=2>; rel=\"next\""),
                    )
                    .body(r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#),
            ),
        ),
        Rule::on(
            "/blobs/uploads/",
            Action::Respond(
                Synth::new(202).header("Location", format!("{other_url}/v2/app/blobs/uploads/1")),
            ),
        ),
    ]);
    let c = client(&proxy.url(), basic());
    let mut req = DiscoveryRequest::new(c.registry(), "app", &img.digest);
    req.reach = refwarden::discovery::Reach::Listing;
    let out = Discoverer::default()
        .discover(&c, DiscoveryMode::Native, None, &req)
        .await;
    match out.as_ref() {
        DiscoveryOutcome::Unknown { message, .. } => {
            assert!(message.contains("origin"), "{message}")
        }
        other => panic!("a Link to another origin must be Unknown: {other:?}"),
    }
    // The probe's chunked upload: the PATCH would go to the other origin; it is not sent.
    let report = probe::run(&c, &ProbeOptions::new("app", "v1", true)).await;
    assert_ne!(
        report.capabilities.chunked_upload.state,
        refwarden::crd::CapabilityState::Supported
    );
    assert!(other.log().is_empty(), "{:?}", other.log());
    Ok(())
}

/// Redirects follow one policy: a CDN gets no credentials; a redirect to a metadata address (by
/// IP, by name, by what a name resolves to) is refused; a loop is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_follow_one_policy() -> TestResult {
    let cdn = FaultProxy::standalone()?;
    cdn.set_rules(vec![Rule::any(Action::Respond(
        Synth::new(200).body("blob"),
    ))]);
    let (proxy, _reg, _digest, sig) = registry_with_cdn(&cdn.url()).await?;
    let c = client(&proxy.url(), basic());
    let r = c
        .send(RegistryRequest::get(
            format!("/v2/app/manifests/{sig}"),
            Endpoint::ManifestGet,
        ))
        .await?;
    assert_eq!(&r.body[..], b"blob");
    assert_eq!(cdn.log().len(), 1);
    assert!(
        with_auth(&cdn.log()).is_empty(),
        "credentials went to the CDN"
    );

    let port = cdn.addr().port();
    for target in [
        format!("http://169.254.169.254:{port}/blob"),
        format!("http://metadata.google.internal:{port}/blob"),
        format!("http://rebind.test:{port}/blob"),
    ] {
        cdn.clear_log();
        let reg = FaultProxy::standalone()?;
        reg.set_rules(vec![Rule::any(Action::Respond(
            Synth::new(302).header("Location", target.clone()),
        ))]);
        let mut cfg = config(&reg.url(), basic());
        cfg.resolve.insert(
            "metadata.google.internal".into(),
            vec!["127.0.0.1".parse()?],
        );
        cfg.resolve
            .insert("rebind.test".into(), vec!["169.254.169.254".parse()?]);
        let e = RegistryClient::new(cfg)?
            .send(RegistryRequest::get(
                "/v2/app/blobs/sha256:0",
                Endpoint::BlobGet,
            ))
            .await
            .expect_err(&target);
        assert!(e.to_string().contains("metadata"), "{target}: {e}");
        assert!(cdn.log().is_empty(), "{target} was contacted");
    }
    Ok(())
}

/// Oversized tokens and headers are refused, never buffered without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_tokens_and_headers_are_refused() -> TestResult {
    for (token_len, want) in [
        (70_000usize, "exceeds 65536 bytes"),
        (20_000, "longer than 16384"),
    ] {
        let token = FaultProxy::standalone()?;
        token.set_rules(vec![Rule::any(Action::Respond(
            Synth::new(200).json(&serde_json::json!({"token": "t".repeat(token_len)})),
        ))]);
        let reg = FaultProxy::standalone()?;
        reg.set_rules(vec![Rule::any(Action::Respond(Synth::new(401).header(
            "WWW-Authenticate",
            format!("Bearer realm=\"{}/token\"", token.url()),
        )))]);
        let e = client(&reg.url(), basic())
            .send(RegistryRequest::get("/v2/", Endpoint::Base))
            .await
            .expect_err("oversized token");
        assert!(e.to_string().contains(want), "{token_len}: {e}");
    }
    // A 9 KiB WWW-Authenticate is not parsed (the 401 is returned as it is).
    let token = FaultProxy::standalone()?;
    let reg = FaultProxy::standalone()?;
    reg.set_rules(vec![Rule::any(Action::Respond(Synth::new(401).header(
        "WWW-Authenticate",
        format!(
            "Bearer realm=\"{}/token\",scope=\"{}\"",
            token.url(),
            "x".repeat(9 * 1024)
        ),
    )))]);
    let r = client(&reg.url(), basic())
        .send(RegistryRequest::get("/v2/", Endpoint::Base))
        .await?;
    assert_eq!(r.status.as_u16(), 401);
    assert!(token.log().is_empty());
    // 200 headers of 4 KiB: refused by the header bound, an error (never a panic or a hang).
    let reg = FaultProxy::standalone()?;
    let mut s = Synth::new(200);
    for i in 0..200 {
        s = s.header(&format!("X-Filler-{i}"), "y".repeat(4096));
    }
    reg.set_rules(vec![Rule::any(Action::Respond(s))]);
    let e = client(&reg.url(), Credentials::Anonymous)
        .send(RegistryRequest::get("/v2/", Endpoint::Base))
        .await
        .expect_err("oversized headers");
    assert_eq!(e.reason(), "Unreachable", "{e}");
    Ok(())
}

/// The hostile CDN-with-its-own-challenge registry through `refwarden discover` and `probe` (with
/// `--password-stdin`) and through the controller's discovery path: the credentials reach the
/// registry and nobody else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_registry_through_the_cli_and_the_controller_path() -> TestResult {
    let realm = FaultProxy::standalone()?;
    let cdn = FaultProxy::standalone()?;
    cdn.set_rules(vec![Rule::any(Action::Respond(Synth::new(401).header(
        "WWW-Authenticate",
        format!("Bearer realm=\"{}/token\"", realm.url()),
    )))]);
    let (proxy, _reg, digest, _sig) = registry_with_cdn(&cdn.url()).await?;
    let host = proxy.host();
    let cli = |args: &[&str]| -> refwarden_testkit::Result<std::process::Output> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_refwarden"))
            .args(args)
            .args(["--plain-http", "--username", USER, "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .ok_or("stdin")?
            .write_all(PASSWORD.as_bytes())?;
        Ok(child.wait_with_output()?)
    };
    let out = cli(&[
        "discover",
        &format!("{host}/app@{digest}"),
        "--platforms",
        "-o",
        "json",
    ])?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains(PASSWORD), "{text}");
    let out = cli(&[
        "probe",
        &format!("http://{host}"),
        "-r",
        "app",
        "-t",
        "v1",
        "--no-write-probes",
    ])?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains(PASSWORD), "{text}");

    // The controller's path: a RegistryProfile's client in the registry directory.
    let mut dir = RegistryDirectory::new();
    dir.insert(
        "hostile",
        &host,
        Ok(RegistryEntry {
            profile: Some("hostile".into()),
            client: client(&proxy.url(), basic()),
            mode: DiscoveryMode::Auto,
            hint: None,
        }),
    );
    let pods = [refwarden_testkit::running_pod(
        "p",
        format!("{host}/app:v1"),
        format!("{host}/app@{digest}"),
    )];
    let spec = refwarden_testkit::signature_policy("signature", SubjectMatch::IndexOrPlatform);
    let status = evaluate_policy(
        &PolicyInput {
            name: "p",
            spec: &spec,
            generation: Some(1),
            previous: None,
            trust: &Default::default(),
        },
        pods.iter(),
        &BTreeMap::new(),
        &dir,
        &Discoverer::default(),
        &refwarden::policy::Verifier::new(),
        Time(jiff::Timestamp::now()),
    )
    .await
    .status;
    assert!(!serde_json::to_string(&status)?.contains(PASSWORD));
    assert!(
        !cdn.log().is_empty(),
        "the CDN was reached (the hostile path ran)"
    );
    assert!(
        with_auth(&cdn.log()).is_empty(),
        "{:?}",
        with_auth(&cdn.log())
    );
    assert!(realm.log().is_empty(), "{:?}", realm.log());
    assert!(!with_auth(&proxy.log()).is_empty());
    Ok(())
}
