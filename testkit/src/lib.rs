//! refwarden's test harness (dev-only, `publish = false`): the integration tests in `tests/`
//! and the benchmark in `benches/` depend on it as `refwarden_testkit`.
//!
//! The registry side is an independent peer of the product (it speaks HTTP, not
//! `refwarden` types); [`controller`], [`running_pod`] and [`signature_policy`] build
//! product values for the tests that drive the product's own API. Pieces:
//! - [`distribution`]: Debian's `docker-registry` (CNCF distribution 2.8) as a
//!   child process on 127.0.0.1 with its own config (anonymous, htpasswd,
//!   token auth; delete on/off).
//! - [`token_server`]: a Docker-registry token issuer (ES256 JWT with `x5c`)
//!   for distribution's `auth: token`.
//! - [`seed`]: pushes images, indexes, OCI 1.1 artifacts, referrers-tag
//!   indexes and cosign legacy tags over plain HTTP.
//! - [`oci_registry`]: an in-memory OCI distribution-spec v1.1.1 registry with
//!   the referrers API and switchable real-registry quirks.
//! - [`tools`]: artifacts laid out the way each producer (cosign, notation, BuildKit, oras, …)
//!   writes them.
//! - [`faults`]: a fault-injecting proxy; [`emulator`]: the Kubernetes API emulator
//!   (`e2e/emulator`) and the controller as child processes; [`peers`]: other clients
//!   (`tests/peers/*.py`); [`demo`]: what `scripts/demo.sh` seeds.
//! - [`sigstore_gen`], [`sigstore_docs`]: generated Sigstore and Notation material and the
//!   documents built from it (offline verification tests).
//! - [`controller`]: the reconciler tests' recording API mock and test `Context`.
//! - [`helm`], [`gitops`], [`promql`]: the chart's external tools and offline validation,
//!   Argo CD / Flux health checks, and what PromQL expressions read.
//!
//! Files next to the code: `validate_report.py` (JUnit / SARIF schema validation). Data
//! files are found from [`repo_root`].
//!
//! Every wait loop is bounded; every process and server stops on `Drop`.

pub mod controller;
pub mod demo;
pub mod distribution;
pub mod emulator;
pub mod faults;
pub mod gitops;
pub mod helm;
pub mod oci_registry;
pub mod peers;
pub mod promql;
pub mod seed;
pub mod sigstore_docs;
pub mod sigstore_gen;
pub mod token_server;
pub mod tools;

pub use distribution::{Auth, DistributionOptions, DistributionRegistry};
pub use oci_registry::{AccessLogEntry, DescriptorTyping, OciRegistry, Quirks, ReferrersMode};
pub use seed::{
    PushedArtifact, PushedImage, PushedIndex, SeedAuth, Seeder, Subject, digest_of,
    referrers_tag_for,
};
pub use token_server::{TokenServer, TokenServerOptions, TokenUser};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The repository root (this crate lives in its `testkit/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit/ has a parent directory")
        .to_path_buf()
}

/// `testkit/validate_report.py`: validates a JUnit XML or SARIF report against its schema.
pub fn validate_report_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("validate_report.py")
}

/// Errors of the harness: plain messages, good enough for test failures.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
pub type Result<T> = std::result::Result<T, BoxError>;

/// Media types used across the harness.
pub mod media {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
    /// Digest of the two-byte empty JSON object `{}`.
    pub const OCI_EMPTY_DIGEST: &str =
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    pub const COSIGN_SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
    pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
    pub const SPDX_JSON: &str = "application/spdx+json";
    pub const SIGSTORE_BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
    pub const CYCLONEDX_JSON: &str = "application/vnd.cyclonedx+json";
    pub const OPENVEX_JSON: &str = "application/vnd.openvex+json";
}

/// Tracing for tests: installs a subscriber writing to the test output when
/// `RUST_LOG` is set. Safe to call many times.
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// A plain-HTTP reqwest client for talking to the harness servers: no proxy,
/// no redirects followed, 30 s timeout.
pub fn http_client() -> Result<reqwest::Client> {
    // reqwest is built with `rustls-no-provider`; building a client needs a
    // process-wide provider even when only plain HTTP is used.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// An axum server on 127.0.0.1:<ephemeral> running on its own thread with its
/// own current-thread runtime, so it works from plain and `#[tokio::test]`
/// tests alike. Dropping it stops the runtime (and every connection).
pub struct ServerHandle {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerHandle {
    pub fn spawn(name: &str, router: axum::Router) -> Result<ServerHandle> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel::<std::result::Result<(), String>>();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("building runtime: {e}")));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("registering listener: {e}")));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    tokio::select! {
                        _ = async { axum::serve(listener, router).await } => {}
                        _ = shutdown_rx => {}
                    }
                });
                // Dropping `rt` here cancels every connection task.
            })?;
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("{name}: {e}").into()),
            Err(e) => return Err(format!("{name}: server thread did not start: {e}").into()),
        }
        Ok(ServerHandle {
            addr,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            // Do not join from the server's own thread (cannot happen in
            // practice, but a self-join would deadlock).
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

/// Parses `Basic base64(user:pass)` from an Authorization header value.
pub fn parse_basic(value: &str) -> Option<(String, String)> {
    use base64::Engine as _;
    let rest = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// `Basic base64(user:pass)`
pub fn basic_header(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// A bare Pod in `default` (its own workload) running one image with the runtime's `imageID`.
pub fn running_pod(name: &str, image: String, image_id: String) -> refwarden::policy::PodInfo {
    use refwarden::policy::pods::{ContainerImage, PodImage};
    refwarden::policy::PodInfo {
        namespace: "default".into(),
        name: name.into(),
        labels: Default::default(),
        workload: refwarden::crd::WorkloadRef {
            namespace: "default".into(),
            kind: "Pod".into(),
            name: name.into(),
        },
        images: vec![PodImage::shared(ContainerImage {
            image,
            image_id: Some(image_id),
        })],
    }
}

/// A ReferrerPolicy spec over every pod and image that requires one signature (preset), named
/// `requirement`.
pub fn signature_policy(
    requirement: &str,
    subject_match: refwarden::crd::SubjectMatch,
) -> refwarden::crd::ReferrerPolicySpec {
    use refwarden::crd::{ImageFilter, Preset, ReferrerPolicySpec, Requirement};
    ReferrerPolicySpec {
        namespace_selector: None,
        pod_selector: None,
        images: ImageFilter::default(),
        require: vec![Requirement {
            verify: None,
            name: requirement.into(),
            preset: Some(Preset::Signature),
            artifact_types: vec![],
            legacy_tag_suffixes: vec![],
            min_count: 1,
            formats: vec![],
            repository: None,
        }],
        subject_match,
        registry_profiles: vec![],
        recheck_interval: "10m".into(),
        max_reported_violations: 50,
    }
}
