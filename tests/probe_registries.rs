//! The capability probe against real registries: Debian's docker-registry
//! (CNCF distribution 2.8: anonymous, htpasswd, token auth with full and
//! read-only credentials, delete disabled) and the spec-following OCI 1.1 test
//! registry (referrers API and the quirks of real registries).

use std::process::Command;

use refwarden::crd::{CapabilityState, EffectiveDiscoveryMode};
use refwarden::probe::{self, ProbeOptions, ProbeReport};
use refwarden::registry::{Credentials, RegistryClient, RegistryClientConfig};
use refwarden_testkit::{
    Auth, DistributionOptions, DistributionRegistry, OciRegistry, Quirks, ReferrersMode, SeedAuth,
    Seeder, TokenServer, TokenUser,
};
use secrecy::SecretString;

type TestResult = refwarden_testkit::Result<()>;

const REPO: &str = "probe/app";
const TAG: &str = "1.0";

fn client(url: &str, credentials: Credentials) -> RegistryClient {
    refwarden::registry::ensure_crypto_provider();
    let mut cfg = RegistryClientConfig::new(url, true).expect("valid test URL");
    cfg.credentials = credentials;
    cfg.retry.base_delay = std::time::Duration::from_millis(10);
    RegistryClient::new(cfg).expect("client builds")
}

fn basic(user: &str, pass: &str) -> Credentials {
    Credentials::Basic {
        username: user.to_string(),
        password: SecretString::from(pass.to_string()),
    }
}

fn opts(write_probes: bool) -> ProbeOptions {
    ProbeOptions::new(REPO, TAG, write_probes)
}

#[track_caller]
fn assert_cap(report: &ProbeReport, name: &str, state: CapabilityState, reason: &str) {
    let c = &report.capabilities;
    let cap = match name {
        "referrersApi" => &c.referrers_api,
        "artifactTypeFilter" => &c.artifact_type_filter,
        "chunkedUpload" => &c.chunked_upload,
        "crossRepoMount" => &c.cross_repo_mount,
        "deleteManifests" => &c.delete_manifests,
        "deleteBlobs" => &c.delete_blobs,
        other => panic!("unknown capability {other}"),
    };
    assert_eq!(
        (cap.state, cap.reason.as_str()),
        (state, reason),
        "{name}: {cap:?}\nwhole report: {report:#?}"
    );
}

/// Upload sessions left in distribution's storage: `_uploads/<id>` directories that still
/// hold `data` or `startedat`. (Distribution 2.8's cancel leaves an empty `hashstates/`
/// tree behind; that is not a session, and its upload purging removes it.)
fn leftover_uploads(reg: &DistributionRegistry) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![reg.storage_dir()];
    let mut visited = 0;
    while let Some(dir) = stack.pop() {
        visited += 1;
        if visited > 10_000 {
            break;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n == "_uploads") {
                    if let Ok(inner) = std::fs::read_dir(&p) {
                        for i in inner.flatten() {
                            let session = i.path();
                            if session.join("data").exists() || session.join("startedat").exists() {
                                found.push(session.display().to_string());
                            }
                        }
                    }
                } else {
                    stack.push(p);
                }
            }
        }
    }
    found
}

async fn blob_status(url: &str, repo: &str, digest: &str, auth: Option<String>) -> u16 {
    let http = refwarden_testkit::http_client().expect("http client");
    let mut req = http.head(format!("{url}/v2/{repo}/blobs/{digest}"));
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    req.send().await.map(|r| r.status().as_u16()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_anonymous_delete_enabled() -> TestResult {
    let reg = DistributionRegistry::start(DistributionOptions::default())?;
    let img = Seeder::new(&reg.url(), SeedAuth::None)?
        .push_image(REPO, TAG)
        .await?;
    let report = probe::run(&client(&reg.url(), Credentials::Anonymous), &opts(true)).await;

    assert!(report.is_reachable());
    assert_eq!(
        report.distribution_api_version.as_deref(),
        Some("registry/2.0")
    );
    assert_eq!(report.test_digest.as_deref(), Some(img.digest.as_str()));
    // distribution 2.8 has no referrers API: 404 text/plain "404 page not found".
    assert_cap(
        &report,
        "referrersApi",
        CapabilityState::Unsupported,
        "NotFound",
    );
    assert_eq!(report.capabilities.referrers_api.http_status, Some(404));
    assert_cap(
        &report,
        "artifactTypeFilter",
        CapabilityState::Unsupported,
        "ReferrersApiUnsupported",
    );
    assert_cap(
        &report,
        "chunkedUpload",
        CapabilityState::Supported,
        "ChunkAccepted",
    );
    assert_cap(
        &report,
        "crossRepoMount",
        CapabilityState::Supported,
        "Mounted",
    );
    assert_cap(
        &report,
        "deleteManifests",
        CapabilityState::Supported,
        "UnknownDigestNotFound",
    );
    assert_cap(
        &report,
        "deleteBlobs",
        CapabilityState::Supported,
        "UnknownDigestNotFound",
    );
    // version + chunked + mount + delete = 4 of 5.
    assert_eq!(report.score, 4);
    assert!(report.notes.is_empty(), "{:?}", report.notes);

    // Nothing left behind: no open upload session, the mounted blob link removed again,
    // and the test image untouched.
    assert_eq!(leftover_uploads(&reg), Vec::<String>::new());
    let scratch = probe::default_scratch_repository(REPO);
    assert_eq!(
        blob_status(&reg.url(), &scratch, &img.config_digest, None).await,
        404
    );
    assert_eq!(
        blob_status(&reg.url(), REPO, &img.config_digest, None).await,
        200
    );

    let status = probe::status::from_report(
        &report,
        &probe::status::StatusContext {
            generation: Some(1),
            requested_mode: Default::default(),
            insecure_skip_tls_verify: false,
            previous: None,
            now: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ),
        },
    );
    assert_eq!(
        status.discovery_mode,
        Some(EffectiveDiscoveryMode::TagFallback)
    );
    assert_eq!((status.score, status.score_out_of), (4, 5));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_delete_disabled_is_unsupported_despite_allow_header() -> TestResult {
    let reg = DistributionRegistry::start(DistributionOptions {
        auth: Auth::Anonymous,
        delete_enabled: false,
    })?;
    Seeder::new(&reg.url(), SeedAuth::None)?
        .push_image(REPO, TAG)
        .await?;
    let report = probe::run(&client(&reg.url(), Credentials::Anonymous), &opts(true)).await;
    assert_cap(
        &report,
        "deleteManifests",
        CapabilityState::Unsupported,
        "DeleteDisabled",
    );
    assert_cap(
        &report,
        "deleteBlobs",
        CapabilityState::Unsupported,
        "DeleteDisabled",
    );
    assert_eq!(report.capabilities.delete_manifests.http_status, Some(405));
    // OPTIONS still advertises DELETE: the message shows it, the verdict ignores it.
    let msg = report
        .capabilities
        .delete_manifests
        .message
        .clone()
        .unwrap_or_default();
    assert!(msg.contains("Allow") && msg.contains("DELETE"), "{msg}");
    assert_cap(
        &report,
        "crossRepoMount",
        CapabilityState::Supported,
        "Mounted",
    );
    // The mounted link cannot be removed without delete: said in a note.
    assert!(
        report.notes.iter().any(|n| n.contains("could not delete")),
        "{:?}",
        report.notes
    );
    assert_eq!(leftover_uploads(&reg), Vec::<String>::new());
    assert_eq!(report.score, 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_htpasswd_with_and_without_credentials() -> TestResult {
    let reg = DistributionRegistry::start(DistributionOptions {
        auth: Auth::Htpasswd {
            users: vec![("alice".into(), "s3cret-pass".into())],
        },
        delete_enabled: true,
    })?;
    Seeder::new(
        &reg.url(),
        SeedAuth::Basic("alice".into(), "s3cret-pass".into()),
    )?
    .push_image(REPO, TAG)
    .await?;

    let with = probe::run(
        &client(&reg.url(), basic("alice", "s3cret-pass")),
        &opts(true),
    )
    .await;
    assert_cap(
        &with,
        "referrersApi",
        CapabilityState::Unsupported,
        "NotFound",
    );
    assert_cap(
        &with,
        "chunkedUpload",
        CapabilityState::Supported,
        "ChunkAccepted",
    );
    assert_cap(
        &with,
        "crossRepoMount",
        CapabilityState::Supported,
        "Mounted",
    );
    assert_cap(
        &with,
        "deleteBlobs",
        CapabilityState::Supported,
        "UnknownDigestNotFound",
    );
    assert_eq!(with.score, 4);

    // Anonymous against an htpasswd registry: everything Unknown, never Unsupported.
    let without = probe::run(&client(&reg.url(), Credentials::Anonymous), &opts(true)).await;
    assert!(without.is_reachable());
    assert_eq!(
        without.distribution_api_version.as_deref(),
        Some("registry/2.0")
    );
    assert_eq!(without.test_digest, None);
    for name in [
        "chunkedUpload",
        "crossRepoMount",
        "deleteManifests",
        "deleteBlobs",
    ] {
        let c = &without.capabilities;
        let cap = match name {
            "chunkedUpload" => &c.chunked_upload,
            "crossRepoMount" => &c.cross_repo_mount,
            "deleteManifests" => &c.delete_manifests,
            _ => &c.delete_blobs,
        };
        assert_eq!(cap.state, CapabilityState::Unknown, "{name}: {cap:?}");
    }
    // 401: credentials missing (the one HTTP table, crate::reason::classify).
    assert_cap(
        &without,
        "referrersApi",
        CapabilityState::Unknown,
        "AuthFailed",
    );
    assert_eq!(without.score, 1);

    // A wrong password is not leaked anywhere in the report.
    let wrong = probe::run(
        &client(&reg.url(), basic("alice", "WRONG-pw-9f3k")),
        &opts(true),
    )
    .await;
    assert!(!format!("{wrong:?}").contains("WRONG-pw-9f3k"));
    assert_cap(
        &wrong,
        "referrersApi",
        CapabilityState::Unknown,
        "AuthFailed",
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_token_auth_full_and_read_only() -> TestResult {
    let ts = TokenServer::start(
        vec![
            TokenUser::new("writer", "wpass-123", &["pull", "push", "delete"]),
            TokenUser::new("reader", "rpass-456", &["pull"]),
        ],
        false,
    )?;
    let reg = DistributionRegistry::start(DistributionOptions {
        auth: Auth::Token(ts.clone()),
        delete_enabled: true,
    })?;
    let token = ts.mint("writer", REPO, &["pull", "push"])?;
    let img = Seeder::new(&reg.url(), SeedAuth::Bearer(token))?
        .push_image(REPO, TAG)
        .await?;

    let writer = client(&reg.url(), basic("writer", "wpass-123"));
    let report = probe::run(&writer, &opts(true)).await;
    assert_eq!(report.test_digest.as_deref(), Some(img.digest.as_str()));
    assert_cap(
        &report,
        "referrersApi",
        CapabilityState::Unsupported,
        "NotFound",
    );
    assert_cap(
        &report,
        "chunkedUpload",
        CapabilityState::Supported,
        "ChunkAccepted",
    );
    assert_cap(
        &report,
        "crossRepoMount",
        CapabilityState::Supported,
        "Mounted",
    );
    assert_cap(
        &report,
        "deleteManifests",
        CapabilityState::Supported,
        "UnknownDigestNotFound",
    );
    assert_eq!(report.score, 4);
    // Tokens are cached per scope: far fewer token fetches than requests.
    let token_requests = writer
        .counters()
        .count(writer.registry(), refwarden::registry::Endpoint::Token);
    assert!(token_requests >= 1, "the token flow ran");
    assert!(
        token_requests < report.requests / 2,
        "{token_requests} token requests for {} requests",
        report.requests
    );

    // Read-only credentials: write probes and delete are Unknown (InsufficientPermissions).
    let reader = client(&reg.url(), basic("reader", "rpass-456"));
    let ro = probe::run(&reader, &opts(true)).await;
    assert_eq!(ro.test_digest.as_deref(), Some(img.digest.as_str()));
    assert_cap(
        &ro,
        "referrersApi",
        CapabilityState::Unsupported,
        "NotFound",
    );
    assert_cap(
        &ro,
        "chunkedUpload",
        CapabilityState::Unknown,
        "InsufficientPermissions",
    );
    assert_cap(
        &ro,
        "crossRepoMount",
        CapabilityState::Unknown,
        "InsufficientPermissions",
    );
    assert_cap(
        &ro,
        "deleteManifests",
        CapabilityState::Unknown,
        "InsufficientPermissions",
    );
    assert_cap(
        &ro,
        "deleteBlobs",
        CapabilityState::Unknown,
        "InsufficientPermissions",
    );
    assert_eq!(ro.score, 1);
    assert_eq!(leftover_uploads(&reg), Vec::<String>::new());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_test_image_makes_referrers_unknown() -> TestResult {
    let reg = DistributionRegistry::start(DistributionOptions::default())?;
    let report = probe::run(&client(&reg.url(), Credentials::Anonymous), &opts(true)).await;
    assert!(report.is_reachable());
    assert_eq!(report.test_digest, None);
    assert_cap(
        &report,
        "referrersApi",
        CapabilityState::Unknown,
        "TestImageNotFound",
    );
    assert_cap(
        &report,
        "crossRepoMount",
        CapabilityState::Unknown,
        "TestImageNotFound",
    );
    // The probes that need no image still ran.
    assert_cap(
        &report,
        "chunkedUpload",
        CapabilityState::Supported,
        "ChunkAccepted",
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_registry_fails_the_probe() -> TestResult {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let report = probe::run(&client(&url, Credentials::Anonymous), &opts(true)).await;
    assert!(!report.is_reachable());
    assert_eq!(
        report.reachable.as_ref().err().map(|(r, _)| r.as_str()),
        Some("Unreachable")
    );
    assert_cap(
        &report,
        "referrersApi",
        CapabilityState::Unknown,
        "Unreachable",
    );
    assert_eq!(report.score, 0);
    Ok(())
}

async fn oci_with_image(quirks: Quirks) -> refwarden_testkit::Result<(OciRegistry, String)> {
    let reg = OciRegistry::start(quirks)?;
    let img = Seeder::new(&reg.url(), SeedAuth::None)?
        .push_image(REPO, TAG)
        .await?;
    Ok((reg, img.digest))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_registry_with_referrers_api_scores_five() -> TestResult {
    let (reg, digest) = oci_with_image(Quirks::default()).await?;
    reg.clear_access_log();
    let report = probe::run(&client(&reg.url(), Credentials::Anonymous), &opts(true)).await;
    assert_eq!(report.test_digest.as_deref(), Some(digest.as_str()));
    assert_cap(
        &report,
        "referrersApi",
        CapabilityState::Supported,
        "IndexReturned",
    );
    assert_cap(
        &report,
        "artifactTypeFilter",
        CapabilityState::Supported,
        "FiltersApplied",
    );
    assert_eq!(report.score, 5);
    // The filter went out URL-encoded (`+` as %2B).
    let log = reg.access_log();
    assert!(
        log.iter().any(|e| e
            .path
            .contains("artifactType=application%2Fvnd.dev.refwarden.probe.v1%2Bjson")),
        "{log:?}"
    );
    // Every upload session opened was cancelled.
    let opened = log
        .iter()
        .filter(|e| e.method == "POST" && e.status == 202)
        .count();
    let cancelled = log
        .iter()
        .filter(|e| e.method == "DELETE" && e.path.contains("/blobs/uploads/"))
        .count();
    assert_eq!(opened, cancelled, "{log:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_registry_quirks() -> TestResult {
    let (reg, _) = oci_with_image(Quirks::default()).await?;
    let c = client(&reg.url(), Credentials::Anonymous);
    let cases: &[(ReferrersMode, CapabilityState, &str)] = &[
        (
            ReferrersMode::NotFoundPlain,
            CapabilityState::Unsupported,
            "NotFound",
        ),
        (
            ReferrersMode::NotFoundHtml,
            CapabilityState::Unsupported,
            "NotFound",
        ),
        (
            ReferrersMode::WrongContentTypeJson,
            CapabilityState::Supported,
            "NonConformantContentType",
        ),
        (
            ReferrersMode::AlwaysEmptyIndex,
            CapabilityState::Supported,
            "IndexReturned",
        ),
        (
            ReferrersMode::RedirectElsewhere,
            CapabilityState::Unsupported,
            "RedirectedToOtherHost",
        ),
        (
            ReferrersMode::HtmlLoginPage200,
            CapabilityState::Unsupported,
            "HtmlInsteadOfIndex",
        ),
        (
            ReferrersMode::NotAcceptable406,
            CapabilityState::Unsupported,
            "NotAcceptable",
        ),
        (
            ReferrersMode::MethodNotAllowed405,
            CapabilityState::Unsupported,
            "MethodNotAllowed",
        ),
        (
            ReferrersMode::NotFoundWithEmptyIndex,
            CapabilityState::Supported,
            "EmptyIndexOn404",
        ),
        // Quay answers 400 only for unknown subjects; the test image exists.
        (
            ReferrersMode::UnknownSubject400,
            CapabilityState::Supported,
            "IndexReturned",
        ),
    ];
    for (mode, state, reason) in cases {
        reg.update_quirks(|q| q.referrers = *mode);
        let report = probe::run(&c, &opts(false)).await;
        assert_eq!(
            (
                report.capabilities.referrers_api.state,
                report.capabilities.referrers_api.reason.as_str()
            ),
            (*state, *reason),
            "mode {mode:?}: {:?}",
            report.capabilities.referrers_api
        );
    }

    // Harbor 2.8: the filter is ignored and not announced.
    reg.update_quirks(|q| {
        q.referrers = ReferrersMode::Native;
        q.filters_applied_header = false;
    });
    let report = probe::run(&c, &opts(false)).await;
    assert_cap(
        &report,
        "artifactTypeFilter",
        CapabilityState::Unsupported,
        "FiltersNotApplied",
    );

    // A registry that answers a mount with 202 refused it; the session is cancelled.
    reg.update_quirks(|q| {
        q.filters_applied_header = true;
        q.mount_supported = false;
        q.chunked_upload_supported = false;
        q.delete_enabled = false;
    });
    reg.clear_access_log();
    let report = probe::run(&c, &opts(true)).await;
    assert_cap(
        &report,
        "crossRepoMount",
        CapabilityState::Unsupported,
        "MountRefused",
    );
    assert_cap(
        &report,
        "chunkedUpload",
        CapabilityState::Unsupported,
        "ChunkRejected",
    );
    assert_cap(
        &report,
        "deleteManifests",
        CapabilityState::Unsupported,
        "DeleteDisabled",
    );
    let log = reg.access_log();
    let opened = log
        .iter()
        .filter(|e| e.method == "POST" && e.status == 202)
        .count();
    let cancelled = log
        .iter()
        .filter(|e| e.method == "DELETE" && e.path.contains("/blobs/uploads/"))
        .count();
    assert_eq!(opened, 2, "{log:?}");
    assert_eq!(opened, cancelled, "{log:?}");
    // version + referrers = 2.
    assert_eq!(report.score, 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_probes_off_sends_no_write() -> TestResult {
    let (reg, _) = oci_with_image(Quirks::default()).await?;
    reg.clear_access_log();
    let report = probe::run(&client(&reg.url(), Credentials::Anonymous), &opts(false)).await;
    assert_cap(
        &report,
        "chunkedUpload",
        CapabilityState::Unknown,
        "WriteProbesDisabled",
    );
    assert_cap(
        &report,
        "crossRepoMount",
        CapabilityState::Unknown,
        "WriteProbesDisabled",
    );
    // Read-only means read-only: not even the DELETE of a digest that cannot exist (it needs
    // delete rights and shows in audit logs). Delete is Unknown, OPTIONS quoted as advisory.
    for cap in ["deleteManifests", "deleteBlobs"] {
        assert_cap(
            &report,
            cap,
            CapabilityState::Unknown,
            "WriteProbesDisabled",
        );
    }
    let log = reg.access_log();
    assert!(
        log.iter()
            .all(|e| matches!(e.method.as_str(), "GET" | "HEAD" | "OPTIONS")),
        "{log:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_registry_rate_limit_is_retried() -> TestResult {
    let (reg, _) = oci_with_image(Quirks::default()).await?;
    reg.clear_access_log();
    reg.update_quirks(|q| q.rate_limit_429 = Some((1, Some("0".into()))));
    let report = probe::run(&client(&reg.url(), Credentials::Anonymous), &opts(false)).await;
    assert_eq!(report.api_version.state, CapabilityState::Supported);
    let log = reg.access_log();
    assert_eq!(log.first().map(|e| e.status), Some(429), "{log:?}");
    assert_eq!(
        log.get(1).map(|e| (e.path.as_str(), e.status)),
        Some(("/v2/", 200))
    );
    Ok(())
}

fn refwarden() -> Command {
    Command::new(env!("CARGO_BIN_EXE_refwarden"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_probe_json_is_the_status_and_exit_codes_hold() -> TestResult {
    let reg = DistributionRegistry::start(DistributionOptions::default())?;
    let img = Seeder::new(&reg.url(), SeedAuth::None)?
        .push_image(REPO, TAG)
        .await?;
    let url = reg.url();
    let out = tokio::task::spawn_blocking(move || {
        refwarden()
            .args([
                "probe",
                &url,
                "--plain-http",
                "-r",
                REPO,
                "-t",
                TAG,
                "-o",
                "json",
            ])
            .output()
    })
    .await??;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: refwarden::crd::RegistryProfileStatus = serde_json::from_slice(&out.stdout)?;
    assert_eq!(status.test_digest.as_deref(), Some(img.digest.as_str()));
    assert_eq!(
        status.capabilities.referrers_api.state,
        CapabilityState::Unsupported
    );
    assert_eq!((status.score, status.score_out_of), (4, 5));
    assert_eq!(
        status.discovery_mode,
        Some(EffectiveDiscoveryMode::TagFallback)
    );
    let raw: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    for field in [
        "conditions",
        "distributionApiVersion",
        "testDigest",
        "capabilities",
        "score",
        "scoreOutOf",
        "discoveryMode",
        "lastProbeTime",
    ] {
        assert!(raw.get(field).is_some(), "missing {field} in {raw}");
    }
    assert!(raw["capabilities"]["deleteBlobs"]["httpStatus"].is_number());

    // Table output names every capability.
    let url = reg.url();
    let out = tokio::task::spawn_blocking(move || {
        refwarden()
            .args(["probe", &url, "--plain-http", "-r", REPO, "-t", TAG])
            .output()
    })
    .await??;
    assert_eq!(out.status.code(), Some(0));
    let table = String::from_utf8_lossy(&out.stdout);
    for row in [
        "referrers API",
        "chunked upload",
        "cross-repo mount",
        "delete blobs",
        "4/5",
    ] {
        assert!(table.contains(row), "{row} missing in\n{table}");
    }

    // Unreachable: exit 1. Bad arguments: exit 2.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let out = refwarden()
        .args(["probe", &format!("http://127.0.0.1:{port}"), "--plain-http"])
        .output()?;
    assert_eq!(out.status.code(), Some(1));
    let out = refwarden()
        .args(["probe", "http://127.0.0.1:5000"])
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --plain-http"));
    let out = refwarden().args(["probe", "127.0.0.1:5000"]).output()?;
    assert_eq!(out.status.code(), Some(2));
    let out = refwarden()
        .args(["probe", "https://r.example", "-r", "Bad/Repo"])
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    Ok(())
}
