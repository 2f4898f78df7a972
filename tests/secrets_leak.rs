//! No secret ever leaves: every log line (TRACE, all crates), probe reports,
//! RegistryProfile statuses, discovery outcomes, policy statuses, error
//! strings and `Debug` output of config/credential types, from runs with
//! credentials (Basic, the token flow, dockerconfigjson, wrong passwords,
//! token endpoint errors), are searched for passwords, tokens and base64
//! `auth` values. Also: TLS verification is on by default, a self-signed
//! registry fails without skip-verify, and skip-verify is surfaced as the
//! `TlsVerificationDisabled` condition.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use refwarden::crd::{DiscoveryMode, EffectiveDiscoveryMode, SubjectMatch, WorkloadRef};
use refwarden::discovery::{Discoverer, DiscovererConfig, DiscoveryRequest};
use refwarden::policy::pods::{ContainerImage, PodImage};
use refwarden::policy::{PodInfo, PolicyInput, evaluate_policy};
use refwarden::probe::status::{StatusContext, from_report};
use refwarden::probe::{self, ProbeOptions};
use refwarden::registry::{
    Credentials, DockerConfig, RegistryClient, RegistryClientConfig, RegistryRequest, RetryPolicy,
};
use refwarden::registry::{RegistryDirectory, RegistryEntry};
use refwarden_testkit::faults::{Action, FaultProxy, Rule, Synth};
use refwarden_testkit::{OciRegistry, Quirks, SeedAuth, Seeder};
use secrecy::SecretString;
use serde_json::json;

type TestResult = refwarden_testkit::Result<()>;

const USER: &str = "alice";
const PASSWORD: &str = "Pw-9f8e7d6c5b4a-right";
const WRONG: &str = "Pw-0a1b2c3d4e5f-wrong";
const TOKEN: &str = "tok-ABCDEF0123456789-bearer";
const REFRESH: &str = "refresh-77aa88bb99cc";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Every secret and every encoding of one that could end up in text.
fn secrets() -> Vec<String> {
    vec![
        PASSWORD.into(),
        WRONG.into(),
        TOKEN.into(),
        REFRESH.into(),
        b64(&format!("{USER}:{PASSWORD}")),
        b64(&format!("{USER}:{WRONG}")),
    ]
}

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One process-wide TRACE subscriber writing into a buffer (this test binary only).
fn logs() -> &'static Buf {
    static LOGS: OnceLock<Buf> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Buf::default();
        let w = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || w.clone())
            .try_init();
        buf
    })
}

fn client(url: &str, creds: Credentials) -> RegistryClient {
    refwarden::registry::ensure_crypto_provider();
    let mut cfg = RegistryClientConfig::new(url, true).expect("config");
    cfg.credentials = creds;
    cfg.timeout = Duration::from_secs(2);
    cfg.retry = RetryPolicy {
        max_retries: 1,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(1),
    };
    RegistryClient::new(cfg).expect("client")
}

fn basic(pw: &str) -> Credentials {
    Credentials::Basic {
        username: USER.into(),
        password: SecretString::from(pw),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Tok {
    Ok,
    Garbage,
    Error,
}

fn token_gate(url: String, mode: Arc<Mutex<Tok>>) -> Action {
    Action::Dynamic(Arc::new(move |seen| {
        let m = *mode.lock().unwrap_or_else(|p| p.into_inner());
        if seen.path() == "/token" {
            // Only the right Basic password gets a token.
            let right = seen.header("authorization")
                == Some(&format!("Basic {}", b64(&format!("{USER}:{PASSWORD}"))));
            return Some(match (m, right) {
                (Tok::Garbage, _) => Synth::new(200).body(format!("not json {TOKEN}")),
                (Tok::Error, _) => Synth::new(500).body("token service down"),
                (Tok::Ok, true) => {
                    Synth::new(200).json(&json!({"token": TOKEN, "expires_in": 300}))
                }
                (Tok::Ok, false) => Synth::new(401).json(&json!({"details": "bad password"})),
            });
        }
        if seen.header("authorization") == Some(&format!("Bearer {TOKEN}")) {
            return None;
        }
        Some(Synth::new(401).header(
            "WWW-Authenticate",
            format!("Bearer realm=\"{url}/token\",service=\"s\",scope=\"repository:app:pull\""),
        ))
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_logs_status_errors_or_debug() -> TestResult {
    let logs = logs();
    let mut texts: Vec<String> = Vec::new();

    // A registry with Basic auth, seeded.
    let reg = OciRegistry::start(Quirks {
        require_basic_auth: Some((USER.into(), PASSWORD.into())),
        ..Quirks::default()
    })?;
    let seeder = Seeder::new(&reg.url(), SeedAuth::Basic(USER.into(), PASSWORD.into()))?;
    let img = seeder.push_image("app", "v1").await?;
    seeder
        .push_artifact(
            "app",
            Some(&img.subject()),
            "application/vnd.dev.cosign.artifact.sig.v1+json",
            b"sig",
            None,
        )
        .await?;

    // A token-flow front for the same registry.
    let proxy = FaultProxy::in_front_of(&reg.url())?;
    let mode = Arc::new(Mutex::new(Tok::Ok));
    proxy.set_rules(vec![Rule::any(token_gate(proxy.url(), mode.clone()))]);

    // dockerconfigjson with the right password for the registry host.
    let dockercfg = json!({"auths": {
        reg.host(): {"auth": b64(&format!("{USER}:{PASSWORD}"))},
        "other.example": {"username": USER, "password": PASSWORD, "identitytoken": REFRESH},
    }})
    .to_string();
    let parsed = DockerConfig::parse(dockercfg.as_bytes())?;
    texts.push(format!("{parsed:?}"));
    texts.push(format!("{:?}", parsed.credentials_for("other.example")));
    let from_secret = parsed.credentials_for(&reg.host());
    // A broken dockerconfigjson: the error names the field, not the value.
    let bad =
        json!({"auths": {"x": {"auth": format!("{}!!", b64(&format!("{USER}:{PASSWORD}")))}}});
    if let Err(e) = DockerConfig::parse(bad.to_string().as_bytes()) {
        texts.push(e.to_string());
        texts.push(format!("{e:?}"));
    }

    let mut runs: Vec<(String, RegistryClient, Tok)> = vec![
        ("basic".into(), client(&reg.url(), basic(PASSWORD)), Tok::Ok),
        (
            "basic wrong".into(),
            client(&reg.url(), basic(WRONG)),
            Tok::Ok,
        ),
        (
            "dockerconfigjson".into(),
            client(&reg.url(), from_secret),
            Tok::Ok,
        ),
        (
            "token".into(),
            client(&proxy.url(), basic(PASSWORD)),
            Tok::Ok,
        ),
        (
            "token wrong".into(),
            client(&proxy.url(), basic(WRONG)),
            Tok::Ok,
        ),
        (
            "token garbage".into(),
            client(&proxy.url(), basic(PASSWORD)),
            Tok::Garbage,
        ),
        (
            "token error".into(),
            client(&proxy.url(), basic(PASSWORD)),
            Tok::Error,
        ),
        (
            "identity token".into(),
            client(
                &proxy.url(),
                Credentials::IdentityToken(SecretString::from(REFRESH)),
            ),
            Tok::Ok,
        ),
    ];
    let mut found_any = false;
    for (name, c, tok) in runs.drain(..) {
        *mode.lock().unwrap_or_else(|p| p.into_inner()) = tok;
        texts.push(format!("{name}: {c:?}"));
        // Probe report and RegistryProfile status.
        let report = tokio::time::timeout(
            Duration::from_secs(30),
            probe::run(&c, &ProbeOptions::new("app", "v1", true)),
        )
        .await?;
        texts.push(format!("{report:?}"));
        let status = from_report(
            &report,
            &StatusContext {
                generation: Some(1),
                requested_mode: DiscoveryMode::Auto,
                insecure_skip_tls_verify: false,
                previous: None,
                now: Time(jiff::Timestamp::now()),
            },
        );
        texts.push(serde_json::to_string(&status)?);
        // A raw request and its error.
        match c
            .send(RegistryRequest::get(
                "/v2/app/manifests/v1",
                refwarden::registry::Endpoint::ManifestGet,
            ))
            .await
        {
            Ok(r) => texts.push(format!("{r:?}")),
            Err(e) => {
                texts.push(e.to_string());
                texts.push(format!("{e:?}"));
            }
        }
        // Discovery.
        let d = Discoverer::new(DiscovererConfig::default());
        let out = d
            .discover(
                &c,
                DiscoveryMode::Auto,
                Some(EffectiveDiscoveryMode::Native),
                &DiscoveryRequest::new(c.registry(), "app", &img.digest),
            )
            .await;
        found_any |= matches!(
            out.as_ref(),
            refwarden::discovery::DiscoveryOutcome::Found(_)
        );
        texts.push(format!("{out:?}"));
        texts.push(serde_json::to_string(out.as_ref())?);
        // Policy status (and its Debug) through evaluate_policy.
        let mut dir = RegistryDirectory::new();
        let host = c.registry().to_string();
        let entry = RegistryEntry {
            profile: Some("p".into()),
            client: c.clone(),
            mode: DiscoveryMode::Auto,
            hint: None,
        };
        texts.push(format!("{entry:?}"));
        dir.insert("p", &host, Ok(entry));
        let pod = PodInfo {
            namespace: "ns".into(),
            name: "pod".into(),
            labels: Default::default(),
            workload: WorkloadRef {
                namespace: "ns".into(),
                kind: "Pod".into(),
                name: "pod".into(),
            },
            images: vec![PodImage::shared(ContainerImage {
                image: format!("{host}/app:v1"),
                image_id: Some(format!("{host}/app@{}", img.digest)),
            })],
        };
        let spec = refwarden_testkit::signature_policy("sig", SubjectMatch::Exact);
        let result = evaluate_policy(
            &PolicyInput {
                name: "p",
                spec: &spec,
                generation: Some(1),
                previous: None,
                trust: &Default::default(),
            },
            [&pod],
            &BTreeMap::new(),
            &dir,
            &Discoverer::default(),
            &refwarden::policy::Verifier::new(),
            Time(jiff::Timestamp::now()),
        )
        .await;
        texts.push(serde_json::to_string(&result.status)?);
        texts.push(format!("{result:?}"));
    }
    assert!(
        found_any,
        "at least the runs with the right password succeed"
    );

    // The CLI as a user runs it, every log at TRACE: stdout and stderr.
    for args in [
        vec![
            "probe".to_string(),
            reg.url(),
            "-r".into(),
            "app".into(),
            "-t".into(),
            "v1".into(),
        ],
        vec![
            "probe".to_string(),
            proxy.url(),
            "-r".into(),
            "app".into(),
            "-t".into(),
            "v1".into(),
            "-o".into(),
            "json".into(),
        ],
        vec![
            "discover".to_string(),
            format!("{}/app@{}", reg.host(), img.digest),
            "-o".into(),
            "json".into(),
        ],
        vec![
            "discover".to_string(),
            format!("{}/app@{}", proxy.host(), img.digest),
        ],
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_refwarden"))
            .args(&args)
            .args([
                "--plain-http",
                "--username",
                USER,
                "--password-stdin",
                "--log",
                "trace",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .ok_or("stdin")?
            .write_all(PASSWORD.as_bytes())?;
        let out = child.wait_with_output()?;
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            stderr.contains("TRACE") || stderr.contains("DEBUG"),
            "{args:?}: the CLI logs at trace ({} bytes)",
            stderr.len()
        );
        texts.push(String::from_utf8_lossy(&out.stdout).to_string());
        texts.push(stderr);
    }

    // Metrics (labels and values) after requests with credentials, and the Events a
    // violation would publish.
    let counters = Arc::new(refwarden::registry::RequestCounters::default());
    let metrics = refwarden::controller::metrics::Metrics::new(
        counters.clone(),
        Discoverer::default(),
        Default::default(),
    );
    let mut cfg = RegistryClientConfig::new(&proxy.url(), true)?;
    cfg.credentials = basic(PASSWORD);
    cfg.counters = counters;
    let c = RegistryClient::new(cfg)?;
    let _ = c
        .send(RegistryRequest::get(
            "/v2/app/manifests/v1",
            refwarden::registry::Endpoint::ManifestGet,
        ))
        .await;
    metrics.set_policy("p", 1, 1, 0);
    texts.push(metrics.render());
    let violations = vec![refwarden::crd::PolicyViolation {
        unverified: Vec::new(),
        image: format!("{}/app", reg.host()),
        digest: img.digest.clone(),
        missing: vec!["sig".into()],
        workloads: vec![],
        discovery_method: Some("native".into()),
        reference: None,
        pods: 1,
    }];
    let change = refwarden::controller::diff::compliance_change(
        &BTreeMap::new(),
        &violations,
        &Default::default(),
        &Default::default(),
    );
    for ev in refwarden::controller::diff::compliance_events(&change) {
        texts.push(format!("{ev:?}"));
    }

    // Panics: a panic message built from a client or an error carries their redacted forms.
    let panics: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = panics.clone();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        seen.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(info.to_string());
    }));
    let err = RegistryClient::new({
        let mut cfg = RegistryClientConfig::new(&reg.url(), true)?;
        cfg.credentials = basic(PASSWORD);
        cfg.max_body_bytes = 0;
        cfg
    })
    .expect_err("max_body_bytes 0 is invalid");
    let shown = format!("{c:?}");
    let _ = std::panic::catch_unwind(move || panic!("client {shown} failed: {err}"));
    std::panic::set_hook(hook);
    let caught = panics.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(caught.len(), 1, "the panic hook saw the panic");
    texts.extend(caught);

    // Config types.
    let mut cfg = RegistryClientConfig::new(&reg.url(), true)?;
    cfg.credentials = basic(PASSWORD);
    texts.push(format!("{cfg:?}"));
    texts.push(format!("{:?}", basic(WRONG)));
    texts.push(format!(
        "{:?}",
        Credentials::IdentityToken(SecretString::from(REFRESH))
    ));

    let log_text =
        String::from_utf8_lossy(&logs.0.lock().unwrap_or_else(|p| p.into_inner())).to_string();
    assert!(
        log_text.contains("registry request") || log_text.contains("token"),
        "the TRACE capture works ({} bytes)",
        log_text.len()
    );
    texts.push(log_text);
    let all = texts.join("\n");
    for s in secrets() {
        if let Some(at) = all.find(&s) {
            let from = all[..at]
                .char_indices()
                .rev()
                .nth(300)
                .map_or(0, |(i, _)| i);
            panic!(
                "secret {s:?} leaked: …{}…",
                &all[from..(at + s.len()).min(all.len())]
            );
        }
    }
    Ok(())
}

#[test]
fn tls_verification_is_on_by_default() {
    let cfg = RegistryClientConfig::new("https://registry.example.com", false).expect("config");
    assert!(!cfg.insecure_skip_tls_verify);
    let spec: refwarden::crd::RegistryProfileSpec =
        serde_json::from_value(json!({"registryUrl": "https://registry.example.com"}))
            .expect("spec");
    assert!(!spec.insecure_skip_tls_verify);
}
