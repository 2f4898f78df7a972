//! Registry capability probe.
//!
//! [`run`] makes the requests (I/O); [`verdict`] decides what each answer means
//! (pure); [`status`] turns a [`ProbeReport`] into the RegistryProfile status.
//!
//! The probe leaves nothing behind: upload sessions are cancelled, a mounted
//! blob is deleted where delete works, and delete is tested with digests that
//! cannot exist.

pub mod status;
pub mod verdict;

use bytes::Bytes;
use http::Method;
use tracing::{debug, warn};

use crate::crd::{Capabilities, Capability, CapabilityState};
use crate::oci;
use crate::reason::Reason;
use crate::registry::{
    Endpoint, RegistryClient, RegistryError, RegistryRequest, RegistryResponse, Scope,
};
use verdict::{Answer, DeleteTarget, Observation};

/// An artifact type used to test `?artifactType=` filtering.
pub const FILTER_PROBE_ARTIFACT_TYPE: &str = "application/vnd.dev.refwarden.probe.v1+json";

/// What to probe.
#[derive(Clone, Debug)]
pub struct ProbeOptions {
    /// Repository of the test image.
    pub test_repository: String,
    /// Tag of the test image.
    pub test_tag: String,
    /// Where write probes act.
    pub scratch_repository: String,
    /// Whether to run the upload and mount probes.
    pub write_probes: bool,
}

impl ProbeOptions {
    /// Options with the default scratch repository `<testRepository>-refwarden-probe`.
    pub fn new(test_repository: &str, test_tag: &str, write_probes: bool) -> Self {
        Self {
            test_repository: test_repository.to_string(),
            test_tag: test_tag.to_string(),
            scratch_repository: default_scratch_repository(test_repository),
            write_probes,
        }
    }

    /// The options a RegistryProfile's spec asks for (`testRepository`, `testTag`, `probe`).
    pub fn for_profile(spec: &crate::crd::RegistryProfileSpec) -> Self {
        let mut opts = Self::new(
            &spec.test_repository,
            &spec.test_tag,
            spec.probe.write_probes,
        );
        if let Some(s) = &spec.probe.scratch_repository {
            opts.scratch_repository = s.clone();
        }
        opts
    }
}

/// Default scratch repository for write probes.
pub fn default_scratch_repository(test_repository: &str) -> String {
    format!("{test_repository}-refwarden-probe")
}

/// Everything one probe found.
#[derive(Clone, Debug)]
pub struct ProbeReport {
    /// Registry label (`host:port`).
    pub registry: String,
    /// `Ok` when `GET /v2/` got an HTTP answer; the failure reason and message otherwise.
    pub reachable: Result<(), (Reason, String)>,
    /// API version header value.
    pub distribution_api_version: Option<String>,
    /// Verdict on the API version (counts towards the score).
    pub api_version: Capability,
    /// Digest of the test image.
    pub test_digest: Option<String>,
    /// Why the test digest is missing, when it is.
    pub test_digest_problem: Option<(Reason, String)>,
    /// Capability verdicts.
    pub capabilities: Capabilities,
    /// Score out of [`crate::crd::SCORE_OUT_OF`].
    pub score: u32,
    /// Things the probe could not clean up, or other remarks for the operator.
    pub notes: Vec<String>,
    /// Number of HTTP requests the probe made (including token requests and retries).
    pub requests: u64,
}

impl ProbeReport {
    /// Whether the registry could be reached at all.
    pub fn is_reachable(&self) -> bool {
        self.reachable.is_ok()
    }
}

fn observe(result: Result<RegistryResponse, RegistryError>) -> Observation {
    match result {
        Ok(r) => Observation::Answered(to_answer(&r)),
        Err(e) => Observation::Failed {
            reason: e.reason(),
            message: e.to_string(),
        },
    }
}

/// Reduces a registry response to what verdicts need (shared with discovery).
pub fn to_answer(r: &RegistryResponse) -> Answer {
    Answer {
        status: r.status.as_u16(),
        content_type: r.content_type().map(str::to_string),
        headers: r
            .headers
            .iter()
            .filter_map(|(k, v)| {
                v.to_str()
                    .ok()
                    .map(|v| (k.as_str().to_ascii_lowercase(), v.to_string()))
            })
            .collect(),
        body: r.body.clone(),
        error_codes: r.error_codes(),
    }
}

fn status_of(obs: &Observation) -> Option<u16> {
    match obs {
        Observation::Answered(a) => Some(a.status),
        _ => None,
    }
}

/// A digest that cannot exist in any registry (sha256 of a random marker).
fn impossible_digest() -> String {
    let marker = format!(
        "refwarden-probe-nonexistent-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    );
    oci::digest_sha256(marker.as_bytes())
}

/// Runs the probe. Never panics; every failure ends up as an Unknown verdict.
pub async fn run(client: &RegistryClient, opts: &ProbeOptions) -> ProbeReport {
    let counters = client.counters();
    let registry = client.registry().to_string();
    let before = counters.total_for(&registry);
    let test_repo = opts.test_repository.as_str();
    let scratch = opts.scratch_repository.as_str();
    let mut notes = Vec::new();

    // 1. Distribution version.
    let base = observe(
        client
            .send(RegistryRequest::get("/v2/", Endpoint::Base))
            .await,
    );
    let (distribution_api_version, api_version) = verdict::api_version(&base);
    if let Observation::Failed { reason, message } = &base {
        let unknown = verdict::unknown(*reason, None, message.clone());
        let capabilities = Capabilities {
            referrers_api: unknown.clone(),
            artifact_type_filter: unknown.clone(),
            chunked_upload: unknown.clone(),
            cross_repo_mount: unknown.clone(),
            delete_manifests: unknown.clone(),
            delete_blobs: unknown,
        };
        return ProbeReport {
            registry: registry.clone(),
            reachable: Err((*reason, message.clone())),
            distribution_api_version,
            api_version,
            test_digest: None,
            test_digest_problem: Some((*reason, message.clone())),
            capabilities,
            score: 0,
            notes,
            requests: counters.total_for(&registry) - before,
        };
    }

    // 2. Test digest (and the config blob, for the mount probe).
    let resolved = resolve_test_image(client, test_repo, &opts.test_tag).await;
    let (test_digest, config_digest, test_digest_problem) = match resolved {
        Ok((d, c)) => (Some(d), c, None),
        Err(problem) => (None, None, Some(problem)),
    };

    // 3. Referrers API and artifactType filter.
    let (referrers_api, artifact_type_filter) = match &test_digest {
        Some(digest) => {
            let path = format!("/v2/{test_repo}/referrers/{digest}");
            let plain = observe(
                client
                    .send(
                        RegistryRequest::get(&path, Endpoint::Referrers)
                            .accept(oci::MEDIA_TYPE_OCI_INDEX)
                            .scope(Scope::pull(test_repo)),
                    )
                    .await,
            );
            let referrers = verdict::referrers_api(&plain);
            let filter = if referrers.state == CapabilityState::Supported {
                let filtered = observe(
                    client
                        .send(
                            RegistryRequest::get(&path, Endpoint::Referrers)
                                .accept(oci::MEDIA_TYPE_OCI_INDEX)
                                .query("artifactType", FILTER_PROBE_ARTIFACT_TYPE)
                                .scope(Scope::pull(test_repo)),
                        )
                        .await,
                );
                verdict::artifact_type_filter(&referrers, &filtered)
            } else {
                verdict::artifact_type_filter(
                    &referrers,
                    &Observation::skipped(Reason::NotProbed, ""),
                )
            };
            (referrers, filter)
        }
        None => {
            let (reason, message) = test_digest_problem
                .clone()
                .unwrap_or_else(|| (Reason::TestImageNotFound, String::new()));
            let c = verdict::unknown(
                reason,
                None,
                format!("cannot verify without the test image: {message}"),
            );
            (
                c.clone(),
                verdict::artifact_type_filter(&c, &Observation::skipped(Reason::NotProbed, "")),
            )
        }
    };

    // 4. Delete: OPTIONS for context, then DELETE of digests that cannot exist (a write probe:
    // it needs delete rights and shows in audit logs). Read-only: OPTIONS alone, advisory.
    let delete_manifests =
        probe_delete(client, test_repo, DeleteTarget::Manifest, opts.write_probes).await;
    let delete_blobs = probe_delete(client, test_repo, DeleteTarget::Blob, opts.write_probes).await;

    // 5. Chunked upload and 6. cross-repo mount (write probes).
    let (chunked_upload, cross_repo_mount) = if !opts.write_probes {
        let skipped = verdict::unknown(
            Reason::WriteProbesDisabled,
            None,
            "write probes are disabled (probe.writeProbes: false)",
        );
        (skipped.clone(), skipped)
    } else {
        let chunked = probe_chunked_upload(client, scratch, &mut notes).await;
        let mount = match &config_digest {
            Some(blob) => {
                probe_mount(client, scratch, test_repo, blob, &delete_blobs, &mut notes).await
            }
            None => verdict::unknown(
                Reason::TestImageNotFound,
                None,
                "cannot test a mount without a blob of the test image",
            ),
        };
        (chunked, mount)
    };

    let score = verdict::score(
        &api_version,
        &referrers_api,
        &chunked_upload,
        &cross_repo_mount,
        &delete_manifests,
        &delete_blobs,
    );
    ProbeReport {
        registry: registry.clone(),
        reachable: Ok(()),
        distribution_api_version,
        api_version,
        test_digest,
        test_digest_problem,
        capabilities: Capabilities {
            referrers_api,
            artifact_type_filter,
            chunked_upload,
            cross_repo_mount,
            delete_manifests,
            delete_blobs,
        },
        score,
        notes,
        requests: counters.total_for(&registry) - before,
    }
}

/// Resolves the test image to its digest (HEAD, or GET and hash when the digest
/// header is missing) and finds a blob of it (the config of the manifest, or of
/// the first platform manifest of an index) for the mount probe.
async fn resolve_test_image(
    client: &RegistryClient,
    repo: &str,
    tag: &str,
) -> Result<(String, Option<String>), (Reason, String)> {
    let path = format!("/v2/{repo}/manifests/{tag}");
    let head = client
        .send(
            RegistryRequest::head(&path, Endpoint::ManifestHead)
                .accept(oci::manifest_accept_header())
                .scope(Scope::pull(repo)),
        )
        .await
        .map_err(|e| (e.reason(), e.to_string()))?;
    match head.status.as_u16() {
        200 => {}
        404 => {
            return Err((
                Reason::TestImageNotFound,
                format!("{repo}:{tag} was not found (HTTP 404)"),
            ));
        }
        s @ (401 | 403) => {
            let reason = head.failure_reason().unwrap_or(Reason::AuthFailed);
            return Err((reason, format!("HEAD {repo}:{tag} answered HTTP {s}")));
        }
        s => {
            return Err((
                Reason::TestImageUnresolvable,
                format!("HEAD {repo}:{tag} answered HTTP {s}"),
            ));
        }
    }
    let header_digest = head
        .header("docker-content-digest")
        .filter(|d| oci::parse_digest(d).is_ok())
        .map(str::to_string);

    // GET the manifest: needed for the mount probe's blob, and to hash when the header is missing.
    let get = client
        .send(
            RegistryRequest::get(&path, Endpoint::ManifestGet)
                .accept(oci::manifest_accept_header())
                .scope(Scope::pull(repo)),
        )
        .await;
    let body = match get {
        Ok(r) if r.status.as_u16() == 200 => Some(r.body),
        Ok(r) => {
            debug!(
                status = r.status.as_u16(),
                "GET of the test manifest failed"
            );
            None
        }
        Err(e) => {
            debug!(error = %e, "GET of the test manifest failed");
            None
        }
    };
    let digest = match (header_digest, &body) {
        (Some(d), _) => d,
        (None, Some(b)) => oci::digest_sha256(b),
        (None, None) => {
            return Err((
                Reason::TestImageUnresolvable,
                format!(
                    "{repo}:{tag}: no Docker-Content-Digest header and the manifest could not be read"
                ),
            ));
        }
    };
    let blob = match body {
        Some(b) => find_blob(client, repo, &b).await,
        None => None,
    };
    Ok((digest, blob))
}

/// The config digest of a manifest, or of the first platform manifest of an index.
async fn find_blob(client: &RegistryClient, repo: &str, body: &Bytes) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    if let Some(cfg) = v
        .get("config")
        .and_then(|c| c.get("digest"))
        .and_then(|d| d.as_str())
    {
        return Some(cfg.to_string());
    }
    let child = v
        .get("manifests")?
        .as_array()?
        .iter()
        .find_map(|m| m.get("digest")?.as_str())?
        .to_string();
    let r = client
        .send(
            RegistryRequest::get(
                format!("/v2/{repo}/manifests/{child}"),
                Endpoint::ManifestGet,
            )
            .accept(oci::manifest_accept_header())
            .scope(Scope::pull(repo)),
        )
        .await
        .ok()?;
    if r.status.as_u16() != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    v.get("config")?.get("digest")?.as_str().map(str::to_string)
}

async fn probe_delete(
    client: &RegistryClient,
    repo: &str,
    target: DeleteTarget,
    write_probes: bool,
) -> Capability {
    let (kind, ep_delete) = match target {
        DeleteTarget::Manifest => ("manifests", Endpoint::ManifestDelete),
        DeleteTarget::Blob => ("blobs", Endpoint::BlobDelete),
    };
    let path = format!("/v2/{repo}/{kind}/{}", impossible_digest());
    let options = client
        .send(RegistryRequest::options(&path, Endpoint::Options).scope(Scope::pull(repo)))
        .await
        .ok()
        .and_then(|r| r.header("allow").map(str::to_string));
    if !write_probes {
        return verdict::delete_read_only(target, options.as_deref());
    }
    let obs = observe(
        client
            .send(RegistryRequest::delete(&path, ep_delete).scope(Scope::new(repo, &["delete"])))
            .await,
    );
    verdict::delete(target, &obs, options.as_deref())
}

async fn cancel_upload(client: &RegistryClient, location: &str, notes: &mut Vec<String>) {
    let r = client
        .send(RegistryRequest::delete(
            location,
            Endpoint::BlobUploadCancel,
        ))
        .await;
    match r {
        Ok(r) if r.status.is_success() || r.status.as_u16() == 404 => {}
        Ok(r) => {
            let msg = format!(
                "could not cancel an upload session (HTTP {}); the registry will expire it",
                r.status.as_u16()
            );
            warn!("{msg}");
            notes.push(msg);
        }
        Err(e) => {
            let msg = format!("could not cancel an upload session: {e}");
            warn!("{msg}");
            notes.push(msg);
        }
    }
}

async fn probe_chunked_upload(
    client: &RegistryClient,
    scratch: &str,
    notes: &mut Vec<String>,
) -> Capability {
    let post = client
        .send(
            RegistryRequest::post(
                format!("/v2/{scratch}/blobs/uploads/"),
                Endpoint::BlobUploadStart,
            )
            .header("content-length", "0")
            .scope(Scope::push_pull(scratch)),
        )
        .await;
    let location = post
        .as_ref()
        .ok()
        .filter(|r| r.status.as_u16() == 202)
        .and_then(|r| r.header("location").map(str::to_string));
    let post_obs = observe(post);
    let patch_obs = match &location {
        Some(loc) => {
            let patch = client
                .send(
                    RegistryRequest::new(Method::PATCH, loc.clone(), Endpoint::BlobUploadStart)
                        .body("application/octet-stream", Bytes::from_static(b"r"))
                        .header("content-range", "0-0")
                        .scope(Scope::push_pull(scratch)),
                )
                .await;
            // Cancel at the newest location the registry gave us.
            let newest = patch
                .as_ref()
                .ok()
                .and_then(|r| r.header("location").map(str::to_string))
                .unwrap_or_else(|| loc.clone());
            let obs = observe(patch);
            cancel_upload(client, &newest, notes).await;
            Some(obs)
        }
        None => None,
    };
    verdict::chunked_upload(&post_obs, patch_obs.as_ref())
}

async fn probe_mount(
    client: &RegistryClient,
    scratch: &str,
    from: &str,
    blob: &str,
    delete_blobs: &Capability,
    notes: &mut Vec<String>,
) -> Capability {
    let resp = client
        .send(
            RegistryRequest::post(format!("/v2/{scratch}/blobs/uploads/"), Endpoint::BlobMount)
                .query("mount", blob)
                .query("from", from)
                .header("content-length", "0")
                .scope(Scope::push_pull(scratch))
                .scope(Scope::pull(from)),
        )
        .await;
    let obs = observe(resp);
    let verdict = verdict::cross_repo_mount(&obs);
    match status_of(&obs) {
        Some(202) => {
            if let Observation::Answered(a) = &obs
                && let Some(loc) = a.header("location")
            {
                let loc = loc.to_string();
                cancel_upload(client, &loc, notes).await;
            }
        }
        Some(201) => {
            // Remove the mounted blob link again where delete works.
            let cleaned = if delete_blobs.state == CapabilityState::Supported {
                client
                    .send(
                        RegistryRequest::delete(
                            format!("/v2/{scratch}/blobs/{blob}"),
                            Endpoint::BlobDelete,
                        )
                        .scope(Scope::new(scratch, &["delete"])),
                    )
                    .await
                    .map(|r| r.status.is_success())
                    .unwrap_or(false)
            } else {
                false
            };
            if !cleaned {
                notes.push(format!(
                    "the mount probe linked blob {blob} into {scratch} and could not delete it (blob delete is {}); it shares storage with {from} and adds no data",
                    delete_blobs.state
                ));
            }
        }
        _ => {}
    }
    verdict
}
