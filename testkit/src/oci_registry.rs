//! An in-memory registry following the OCI distribution-spec v1.1.1 text,
//! including the referrers API that distribution 2.8 lacks, with switchable
//! quirks of real registries (see the reference sheet §3).
//!
//! Routing is done by hand because repository names contain `/`.

use super::{Result, ServerHandle, media, parse_basic};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256, Sha512};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// How `GET /v2/<name>/referrers/<digest>` answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReferrersMode {
    /// Per spec: 200 index, filtering, pagination.
    Native,
    /// GHCR: `404 MANIFEST_UNKNOWN` (JSON error body).
    NotFoundPlain,
    /// GitLab virtual registry: `404 text/html`.
    NotFoundHtml,
    /// CNCF distribution 2.8 (no route): `404 text/plain` `404 page not found`.
    NotFoundTextPlain,
    /// Harbor ≤ 2.9: the index but `Content-Type: application/json; charset=utf-8`
    /// (goharbor/harbor#19212, fixed in v2.10.0; formats-in-the-wild §2).
    WrongContentTypeJson,
    /// GHCR (sbomify/sbomify#1530, 2026-09): `200 {"manifests":[]}` for every subject, while
    /// the signatures sit in cosign tags. An empty index is not proof of absence.
    AlwaysEmptyIndex,
    /// GHCR (artifacthub/hub#4785, 2026-04): `303 See Other` to another host
    /// (`Quirks::redirect_elsewhere`, `github.com/-/v2/packages/...` with the digest cut at
    /// `:`), which answers 429 or HTML.
    RedirectElsewhere,
    /// GAR / registry.k8s.io redirect to a login page: `200 text/html`.
    HtmlLoginPage200,
    /// Old Artifactory: `406 Not Acceptable`.
    NotAcceptable406,
    /// `405 Method Not Allowed` (UNSUPPORTED).
    MethodNotAllowed405,
    /// Older drafts: `404` with an (index) body.
    NotFoundWithEmptyIndex,
    /// Quay: native, but an unknown subject gets `400 MANIFEST_INVALID`.
    UnknownSubject400,
}

/// Behaviour switches. Change at runtime through [`OciRegistry::update_quirks`].
#[derive(Clone, Debug)]
pub struct Quirks {
    pub referrers: ReferrersMode,
    /// When false the artifactType filter is ignored and
    /// `OCI-Filters-Applied` omitted (Harbor 2.8).
    pub filters_applied_header: bool,
    /// Send `OCI-Subject` on a manifest PUT with `subject` (only when
    /// `referrers` is `Native` or `UnknownSubject400`).
    pub oci_subject_header: bool,
    /// false -> DELETE answers 405 UNSUPPORTED.
    pub delete_enabled: bool,
    /// false -> `POST ?mount=&from=` always opens an upload session (202).
    pub mount_supported: bool,
    /// false -> PATCH on an upload answers 405 UNSUPPORTED.
    pub chunked_upload_supported: bool,
    /// The next N requests get 429 TOOMANYREQUESTS (with `Retry-After`).
    pub rate_limit_429: Option<(u32, Option<String>)>,
    /// Every request needs this Basic user/password, else 401.
    pub require_basic_auth: Option<(String, String)>,
    /// Referrers descriptors per page; more -> `Link: <...>; rel="next"`.
    pub page_size: usize,
    /// Header on every answer, e.g. `Docker-Distribution-API-Version:
    /// registry/2.0` (what distribution sends); `None` -> no header.
    pub api_version_header: Option<(String, String)>,
    /// GitLab: a tag `sha256-<hex>` that does not exist resolves to the
    /// manifest with that digest (the subject itself).
    pub dash_tag_resolves_digest: bool,
    /// Base URL (`http://127.0.0.1:PORT`) of the host [`ReferrersMode::RedirectElsewhere`]
    /// redirects to.
    pub redirect_elsewhere: Option<String>,
    /// What the referrers API's descriptors carry as `artifactType`.
    pub descriptor_artifact_type: DescriptorTyping,
}

/// How referrers descriptors are typed by the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DescriptorTyping {
    /// As the spec says: the manifest's `artifactType`, else its config media type.
    #[default]
    Spec,
    /// No `artifactType` at all (ACR on CMK-encrypted registries: Azure/acr#784).
    Omitted,
    /// `application/vnd.oci.empty.v1+json` (what older ggcr writes into fallback indexes,
    /// oci-referrers §2.3, seen from registries that index such manifests by config type).
    OciEmpty,
}

impl Default for Quirks {
    fn default() -> Self {
        Quirks {
            referrers: ReferrersMode::Native,
            filters_applied_header: true,
            oci_subject_header: true,
            delete_enabled: true,
            mount_supported: true,
            chunked_upload_supported: true,
            rate_limit_429: None,
            require_basic_auth: None,
            page_size: 100,
            api_version_header: Some((
                "Docker-Distribution-API-Version".to_string(),
                "registry/2.0".to_string(),
            )),
            dash_tag_resolves_digest: false,
            redirect_elsewhere: None,
            descriptor_artifact_type: DescriptorTyping::Spec,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessLogEntry {
    pub method: String,
    /// Path plus `?query` as received.
    pub path: String,
    pub status: u16,
    /// `Basic` / `Bearer` when an Authorization header was sent.
    pub auth_scheme: Option<String>,
}

#[derive(Clone)]
struct StoredManifest {
    media_type: String,
    bytes: Bytes,
    subject: Option<String>,
    artifact_type: Option<String>,
    config_media_type: Option<String>,
    annotations: Option<Value>,
    is_index: bool,
}

#[derive(Default)]
struct Repo {
    blobs: HashMap<String, Bytes>,
    manifests: BTreeMap<String, StoredManifest>,
    tags: BTreeMap<String, String>,
}

struct Upload {
    repo: String,
    data: Vec<u8>,
}

#[derive(Default)]
struct Store {
    repos: BTreeMap<String, Repo>,
    uploads: HashMap<String, Upload>,
    next_upload: u64,
}

struct Shared {
    store: Mutex<Store>,
    quirks: Arc<Mutex<Quirks>>,
    log: Mutex<Vec<AccessLogEntry>>,
}

/// The spec registry on `127.0.0.1:<ephemeral>`; stops on Drop.
pub struct OciRegistry {
    server: ServerHandle,
    shared: Arc<Shared>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not wedge the server.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl OciRegistry {
    pub fn start(quirks: Quirks) -> Result<OciRegistry> {
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::default()),
            quirks: Arc::new(Mutex::new(quirks)),
            log: Mutex::new(Vec::new()),
        });
        let router = axum::Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(shared.clone());
        let server = ServerHandle::spawn("oci-registry", router)?;
        Ok(OciRegistry { server, shared })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        self.server.addr().to_string()
    }

    /// The live quirks; changes apply to the next request.
    pub fn quirks_handle(&self) -> Arc<Mutex<Quirks>> {
        self.shared.quirks.clone()
    }

    pub fn quirks(&self) -> Quirks {
        lock(&self.shared.quirks).clone()
    }

    pub fn set_quirks(&self, q: Quirks) {
        *lock(&self.shared.quirks) = q;
    }

    pub fn update_quirks(&self, f: impl FnOnce(&mut Quirks)) {
        f(&mut lock(&self.shared.quirks));
    }

    pub fn access_log(&self) -> Vec<AccessLogEntry> {
        lock(&self.shared.log).clone()
    }

    pub fn request_count(&self) -> usize {
        lock(&self.shared.log).len()
    }

    pub fn clear_access_log(&self) {
        lock(&self.shared.log).clear();
    }

    /// Serves `bytes` as a manifest of `repo` under its sha256 digest (and `tag`), without the
    /// blobs it names: a harness facility (not a registry deviation) for published material
    /// whose image manifest is in the fixtures but whose layers are not. Returns the digest.
    pub fn serve_published_manifest(&self, repo: &str, tag: Option<&str>, bytes: &[u8]) -> String {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
        let doc: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
        let stored = StoredManifest {
            media_type: doc
                .get("mediaType")
                .and_then(Value::as_str)
                .unwrap_or("application/vnd.docker.distribution.manifest.v2+json")
                .to_string(),
            bytes: Bytes::copy_from_slice(bytes),
            subject: None,
            artifact_type: None,
            config_media_type: doc
                .pointer("/config/mediaType")
                .and_then(Value::as_str)
                .map(str::to_string),
            annotations: None,
            is_index: false,
        };
        let mut store = lock(&self.shared.store);
        let r = store.repos.entry(repo.to_string()).or_default();
        r.manifests.insert(digest.clone(), stored);
        if let Some(t) = tag {
            r.tags.insert(t.to_string(), digest.clone());
        }
        digest
    }

    /// Number of requests whose path contains `needle`.
    pub fn count_requests(&self, method: &str, needle: &str) -> usize {
        lock(&self.shared.log)
            .iter()
            .filter(|e| e.method == method && e.path.contains(needle))
            .count()
    }
}

// ---------------------------------------------------------------- helpers

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"errors": [{"code": code, "message": message, "detail": null}]});
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

fn unsupported() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "UNSUPPORTED",
        "The operation is unsupported.",
    )
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&ch| {
                    ch.is_ascii_lowercase()
                        || ch.is_ascii_digit()
                        || matches!(ch, b'.' | b'_' | b'-')
                })
                && c.chars().all(|ch| !ch.is_ascii_uppercase())
        })
}

fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// `sha256:<64 lowercase hex>` or `sha512:<128 lowercase hex>`.
fn valid_digest(d: &str) -> bool {
    let Some((alg, enc)) = d.split_once(':') else {
        return false;
    };
    let len = match alg {
        "sha256" => 64,
        "sha512" => 128,
        _ => return false,
    };
    enc.len() == len && enc.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

fn looks_like_digest(r: &str) -> bool {
    r.contains(':')
}

fn compute_digest(alg: &str, data: &[u8]) -> String {
    match alg {
        "sha512" => format!("sha512:{}", hex::encode(Sha512::digest(data))),
        _ => format!("sha256:{}", hex::encode(Sha256::digest(data))),
    }
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn query_get(q: &[(String, String)], key: &str) -> Option<String> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

enum Route {
    Base,
    Tags(String),
    Manifest(String, String),
    Blob(String, String),
    UploadStart(String),
    Upload(String, String),
    Referrers(String, String),
    Unknown,
}

fn route(path: &str) -> Route {
    if path == "/v2" || path == "/v2/" {
        return Route::Base;
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Route::Unknown;
    };
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Route::Tags(name.to_string());
    }
    if let Some(name) = rest.strip_suffix("/blobs/uploads/") {
        return Route::UploadStart(name.to_string());
    }
    if let Some(name) = rest.strip_suffix("/blobs/uploads") {
        return Route::UploadStart(name.to_string());
    }
    for (sep, kind) in [
        ("/blobs/uploads/", 0),
        ("/manifests/", 1),
        ("/referrers/", 2),
        ("/blobs/", 3),
    ] {
        if let Some(i) = rest.rfind(sep) {
            let name = rest[..i].to_string();
            let last = rest[i + sep.len()..].to_string();
            if last.is_empty() || last.contains('/') {
                continue;
            }
            return match kind {
                0 => Route::Upload(name, last),
                1 => Route::Manifest(name, last),
                2 => Route::Referrers(name, last),
                _ => Route::Blob(name, last),
            };
        }
    }
    Route::Unknown
}

fn set_header(resp: &mut Response, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        resp.headers_mut().insert(n, v);
    }
}

// ---------------------------------------------------------------- handler

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let quirks = lock(&shared.quirks).clone();
    let mut resp = dispatch(&shared, &quirks, &method, &uri, &headers, body);
    if let Some((name, value)) = &quirks.api_version_header {
        set_header(&mut resp, name, value);
    }
    let auth_scheme = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_whitespace().next())
        .map(str::to_string);
    lock(&shared.log).push(AccessLogEntry {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_else(|| uri.path().to_string()),
        status: resp.status().as_u16(),
        auth_scheme,
    });
    resp
}

fn dispatch(
    shared: &Shared,
    quirks: &Quirks,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    // Rate limiting first: the next N requests get 429.
    {
        let mut q = lock(&shared.quirks);
        if let Some((n, retry_after)) = q.rate_limit_429.clone() {
            q.rate_limit_429 = if n > 1 {
                Some((n - 1, retry_after.clone()))
            } else {
                None
            };
            if n > 0 {
                let mut r = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TOOMANYREQUESTS",
                    "too many requests",
                );
                if let Some(ra) = retry_after {
                    set_header(&mut r, "Retry-After", &ra);
                }
                return r;
            }
        }
    }
    if let Some((user, pass)) = &quirks.require_basic_auth {
        let ok = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_basic)
            .is_some_and(|(u, p)| &u == user && &p == pass);
        if !ok {
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "authentication required",
            );
            set_header(
                &mut r,
                "WWW-Authenticate",
                "Basic realm=\"refwarden-oci-test\"",
            );
            return r;
        }
    }

    let q = query_pairs(uri);
    let is_head = *method == Method::HEAD;
    match route(uri.path()) {
        Route::Base => match *method {
            Method::GET | Method::HEAD => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{}",
            )
                .into_response(),
            _ => unsupported(),
        },
        Route::Unknown => error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint"),
        Route::Tags(name)
        | Route::Manifest(name, _)
        | Route::Blob(name, _)
        | Route::UploadStart(name)
        | Route::Upload(name, _)
        | Route::Referrers(name, _)
            if !valid_name(&name) =>
        {
            error(
                StatusCode::BAD_REQUEST,
                "NAME_INVALID",
                "invalid repository name",
            )
        }
        Route::Tags(name) => match *method {
            Method::GET | Method::HEAD => tags_list(shared, &name, &q),
            _ => unsupported(),
        },
        Route::Blob(name, digest) => match *method {
            Method::GET | Method::HEAD => get_blob(shared, &name, &digest, is_head),
            Method::DELETE => {
                if !quirks.delete_enabled {
                    return unsupported();
                }
                let mut store = lock(&shared.store);
                match store
                    .repos
                    .get_mut(&name)
                    .and_then(|r| r.blobs.remove(&digest))
                {
                    Some(_) => StatusCode::ACCEPTED.into_response(),
                    None => error(
                        StatusCode::NOT_FOUND,
                        "BLOB_UNKNOWN",
                        "blob unknown to registry",
                    ),
                }
            }
            _ => unsupported(),
        },
        Route::UploadStart(name) => match *method {
            Method::POST => start_upload(shared, quirks, &name, &q, body),
            _ => unsupported(),
        },
        Route::Upload(name, id) => upload(shared, quirks, method, &name, &id, &q, headers, body),
        Route::Manifest(name, reference) => match *method {
            Method::GET | Method::HEAD => get_manifest(shared, quirks, &name, &reference, is_head),
            Method::PUT => put_manifest(shared, quirks, &name, &reference, headers, body),
            Method::DELETE => delete_manifest(shared, quirks, &name, &reference),
            _ => unsupported(),
        },
        Route::Referrers(name, digest) => match *method {
            Method::GET | Method::HEAD => referrers(shared, quirks, &name, &digest, &q, uri),
            _ => unsupported(),
        },
    }
}

fn tags_list(shared: &Shared, name: &str, q: &[(String, String)]) -> Response {
    let store = lock(&shared.store);
    let Some(repo) = store.repos.get(name) else {
        return error(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "repository name not known to registry",
        );
    };
    let last = query_get(q, "last");
    let n = query_get(q, "n").and_then(|n| n.parse::<usize>().ok());
    let all: Vec<&String> = repo
        .tags
        .keys()
        .filter(|t| last.as_ref().is_none_or(|l| t.as_str() > l.as_str()))
        .collect();
    let take = n.unwrap_or(all.len());
    let page: Vec<&String> = all.iter().take(take).copied().collect();
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"name": name, "tags": page}).to_string(),
    )
        .into_response();
    if all.len() > take
        && let Some(last_tag) = page.last()
    {
        let link = format!("</v2/{name}/tags/list?n={take}&last={last_tag}>; rel=\"next\"");
        set_header(&mut resp, "Link", &link);
    }
    resp
}

fn get_blob(shared: &Shared, name: &str, digest: &str, is_head: bool) -> Response {
    if !valid_digest(digest) {
        return error(StatusCode::BAD_REQUEST, "DIGEST_INVALID", "invalid digest");
    }
    let store = lock(&shared.store);
    let Some(repo) = store.repos.get(name) else {
        return error(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "repository name not known to registry",
        );
    };
    let Some(data) = repo.blobs.get(digest) else {
        return error(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            "blob unknown to registry",
        );
    };
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/octet-stream")],
        if is_head { Bytes::new() } else { data.clone() },
    )
        .into_response();
    set_header(&mut resp, "Docker-Content-Digest", digest);
    set_header(&mut resp, "Content-Length", &data.len().to_string());
    resp
}

fn upload_location(name: &str, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

fn blob_created(name: &str, digest: &str) -> Response {
    let mut resp = StatusCode::CREATED.into_response();
    set_header(&mut resp, "Location", &format!("/v2/{name}/blobs/{digest}"));
    set_header(&mut resp, "Docker-Content-Digest", digest);
    resp
}

fn store_blob(store: &mut Store, name: &str, digest: &str, data: Bytes) {
    store
        .repos
        .entry(name.to_string())
        .or_default()
        .blobs
        .insert(digest.to_string(), data);
}

/// `Some(error response)` when `expected` is malformed or does not match.
fn digest_mismatch(expected: &str, data: &[u8]) -> Option<Response> {
    if !valid_digest(expected) {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "invalid digest",
        ));
    }
    let alg = expected.split_once(':').map(|(a, _)| a).unwrap_or("sha256");
    if compute_digest(alg, data) != expected {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "provided digest did not match uploaded content",
        ));
    }
    None
}

fn start_upload(
    shared: &Shared,
    quirks: &Quirks,
    name: &str,
    q: &[(String, String)],
    body: Bytes,
) -> Response {
    let mut store = lock(&shared.store);
    // Cross-repository mount.
    if let (Some(mount), Some(from)) = (query_get(q, "mount"), query_get(q, "from"))
        && quirks.mount_supported
        && valid_digest(&mount)
    {
        let found = store
            .repos
            .get(&from)
            .and_then(|r| r.blobs.get(&mount))
            .cloned();
        if let Some(data) = found {
            store_blob(&mut store, name, &mount, data);
            return blob_created(name, &mount);
        }
    }
    // Monolithic single POST.
    if let Some(digest) = query_get(q, "digest") {
        if let Some(r) = digest_mismatch(&digest, &body) {
            return r;
        }
        store_blob(&mut store, name, &digest, body);
        return blob_created(name, &digest);
    }
    store.next_upload += 1;
    let id = format!(
        "upload-{:08}-{}",
        store.next_upload,
        hex::encode(rand::random::<[u8; 8]>())
    );
    store.uploads.insert(
        id.clone(),
        Upload {
            repo: name.to_string(),
            data: Vec::new(),
        },
    );
    let mut resp = StatusCode::ACCEPTED.into_response();
    set_header(&mut resp, "Location", &upload_location(name, &id));
    set_header(&mut resp, "Docker-Upload-UUID", &id);
    set_header(&mut resp, "Range", "0-0");
    resp
}

#[allow(clippy::too_many_arguments)]
fn upload(
    shared: &Shared,
    quirks: &Quirks,
    method: &Method,
    name: &str,
    id: &str,
    q: &[(String, String)],
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let mut store = lock(&shared.store);
    let known = store.uploads.get(id).is_some_and(|u| u.repo == name);
    if !known {
        return error(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            "blob upload unknown to registry",
        );
    }
    let progress = |resp: &mut Response, len: usize| {
        set_header(resp, "Location", &upload_location(name, id));
        set_header(resp, "Docker-Upload-UUID", id);
        set_header(resp, "Range", &format!("0-{}", len.saturating_sub(1)));
    };
    match *method {
        Method::GET => {
            let len = store.uploads.get(id).map(|u| u.data.len()).unwrap_or(0);
            let mut resp = StatusCode::NO_CONTENT.into_response();
            progress(&mut resp, len);
            resp
        }
        Method::PATCH => {
            if !quirks.chunked_upload_supported {
                return unsupported();
            }
            let Some(up) = store.uploads.get_mut(id) else {
                return error(
                    StatusCode::NOT_FOUND,
                    "BLOB_UPLOAD_UNKNOWN",
                    "blob upload unknown",
                );
            };
            if let Some(range) = headers
                .get(header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
            {
                let start = range
                    .split_once('-')
                    .and_then(|(s, _)| s.trim().parse::<usize>().ok());
                if start != Some(up.data.len()) {
                    let mut resp = error(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        "BLOB_UPLOAD_INVALID",
                        "chunk out of order",
                    );
                    progress(&mut resp, up.data.len());
                    return resp;
                }
            }
            up.data.extend_from_slice(&body);
            let len = up.data.len();
            let mut resp = StatusCode::ACCEPTED.into_response();
            progress(&mut resp, len);
            resp
        }
        Method::PUT => {
            let Some(digest) = query_get(q, "digest") else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "DIGEST_INVALID",
                    "digest parameter missing",
                );
            };
            let Some(mut up) = store.uploads.remove(id) else {
                return error(
                    StatusCode::NOT_FOUND,
                    "BLOB_UPLOAD_UNKNOWN",
                    "blob upload unknown",
                );
            };
            up.data.extend_from_slice(&body);
            if let Some(r) = digest_mismatch(&digest, &up.data) {
                return r;
            }
            store_blob(&mut store, name, &digest, Bytes::from(up.data));
            blob_created(name, &digest)
        }
        Method::DELETE => {
            store.uploads.remove(id);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => unsupported(),
    }
}

fn resolve<'a>(
    repo: &'a Repo,
    quirks: &Quirks,
    reference: &str,
) -> Option<(String, &'a StoredManifest)> {
    let digest = if looks_like_digest(reference) {
        reference.to_string()
    } else if let Some(d) = repo.tags.get(reference) {
        d.clone()
    } else if quirks.dash_tag_resolves_digest {
        let (alg, enc) = reference.split_once('-')?;
        format!("{alg}:{enc}")
    } else {
        return None;
    };
    repo.manifests.get(&digest).map(|m| (digest, m))
}

fn get_manifest(
    shared: &Shared,
    quirks: &Quirks,
    name: &str,
    reference: &str,
    is_head: bool,
) -> Response {
    if looks_like_digest(reference) && !valid_digest(reference) {
        return error(StatusCode::BAD_REQUEST, "DIGEST_INVALID", "invalid digest");
    }
    if !looks_like_digest(reference) && !valid_tag(reference) {
        return error(StatusCode::BAD_REQUEST, "TAG_INVALID", "invalid tag");
    }
    let store = lock(&shared.store);
    let Some(repo) = store.repos.get(name) else {
        return error(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "repository name not known to registry",
        );
    };
    let Some((digest, m)) = resolve(repo, quirks, reference) else {
        return error(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            "manifest unknown to registry",
        );
    };
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, m.media_type.clone())],
        if is_head {
            Bytes::new()
        } else {
            m.bytes.clone()
        },
    )
        .into_response();
    set_header(&mut resp, "Docker-Content-Digest", &digest);
    set_header(&mut resp, "Content-Length", &m.bytes.len().to_string());
    set_header(&mut resp, "ETag", &format!("\"{digest}\""));
    resp
}

fn put_manifest(
    shared: &Shared,
    quirks: &Quirks,
    name: &str,
    reference: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let is_digest_ref = looks_like_digest(reference);
    if is_digest_ref && !valid_digest(reference) {
        return error(StatusCode::BAD_REQUEST, "DIGEST_INVALID", "invalid digest");
    }
    if !is_digest_ref && !valid_tag(reference) {
        return error(StatusCode::BAD_REQUEST, "TAG_INVALID", "invalid tag");
    }
    let Ok(doc) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "MANIFEST_INVALID",
            "manifest is not JSON",
        );
    };
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or(s).trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| {
            doc.get("mediaType")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    let Some(media_type) = media_type else {
        return error(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", "no media type");
    };
    if let Some(body_mt) = doc.get("mediaType").and_then(Value::as_str)
        && body_mt != media_type
    {
        return error(
            StatusCode::BAD_REQUEST,
            "MANIFEST_INVALID",
            "mediaType in body does not match Content-Type",
        );
    }
    let is_index = doc.get("manifests").is_some();
    let alg = if is_digest_ref {
        reference
            .split_once(':')
            .map(|(a, _)| a)
            .unwrap_or("sha256")
    } else {
        "sha256"
    };
    let digest = compute_digest(alg, &body);
    if is_digest_ref && digest != reference {
        return error(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "manifest digest does not match reference",
        );
    }
    let mut store = lock(&shared.store);
    // Referenced blobs must exist in this repository (image manifests).
    if !is_index {
        let mut needed: Vec<&str> = Vec::new();
        if let Some(d) = doc.pointer("/config/digest").and_then(Value::as_str) {
            needed.push(d);
        }
        if let Some(layers) = doc.get("layers").and_then(Value::as_array) {
            needed.extend(
                layers
                    .iter()
                    .filter_map(|l| l.get("digest").and_then(Value::as_str)),
            );
        }
        let repo = store.repos.get(name);
        if let Some(missing) = needed
            .iter()
            .find(|d| !repo.is_some_and(|r| r.blobs.contains_key(**d)))
        {
            return error(
                StatusCode::BAD_REQUEST,
                "MANIFEST_BLOB_UNKNOWN",
                &format!("blob unknown to registry: {missing}"),
            );
        }
    }
    let subject = doc
        .pointer("/subject/digest")
        .and_then(Value::as_str)
        .map(str::to_string);
    let stored = StoredManifest {
        media_type,
        bytes: body,
        subject: subject.clone(),
        artifact_type: doc
            .get("artifactType")
            .and_then(Value::as_str)
            .map(str::to_string),
        config_media_type: doc
            .pointer("/config/mediaType")
            .and_then(Value::as_str)
            .map(str::to_string),
        annotations: doc.get("annotations").filter(|a| a.is_object()).cloned(),
        is_index,
    };
    let repo = store.repos.entry(name.to_string()).or_default();
    repo.manifests.insert(digest.clone(), stored);
    if !is_digest_ref {
        repo.tags.insert(reference.to_string(), digest.clone());
    }
    let mut resp = StatusCode::CREATED.into_response();
    set_header(
        &mut resp,
        "Location",
        &format!("/v2/{name}/manifests/{digest}"),
    );
    set_header(&mut resp, "Docker-Content-Digest", &digest);
    if let Some(s) = subject
        && quirks.oci_subject_header
        && matches!(
            quirks.referrers,
            ReferrersMode::Native | ReferrersMode::UnknownSubject400
        )
    {
        set_header(&mut resp, "OCI-Subject", &s);
    }
    resp
}

fn delete_manifest(shared: &Shared, quirks: &Quirks, name: &str, reference: &str) -> Response {
    if !quirks.delete_enabled {
        return unsupported();
    }
    let mut store = lock(&shared.store);
    let Some(repo) = store.repos.get_mut(name) else {
        return error(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "repository name not known to registry",
        );
    };
    if looks_like_digest(reference) {
        if !valid_digest(reference) {
            return error(StatusCode::BAD_REQUEST, "DIGEST_INVALID", "invalid digest");
        }
        if repo.manifests.remove(reference).is_none() {
            return error(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                "manifest unknown to registry",
            );
        }
        repo.tags.retain(|_, d| d != reference);
    } else if repo.tags.remove(reference).is_none() {
        return error(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            "manifest unknown to registry",
        );
    }
    StatusCode::ACCEPTED.into_response()
}

fn index_response(status: StatusCode, content_type: &str, descriptors: &[Value]) -> Response {
    let body = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": descriptors,
    });
    (
        status,
        [(header::CONTENT_TYPE, content_type.to_string())],
        body.to_string(),
    )
        .into_response()
}

const LOGIN_PAGE: &str = "<!DOCTYPE html><html><head><title>Sign in</title></head>\
<body><form action=\"/signin\" method=\"post\"><input name=\"user\"><input type=\"password\" name=\"password\">\
</form></body></html>";

fn referrers(
    shared: &Shared,
    quirks: &Quirks,
    name: &str,
    digest: &str,
    q: &[(String, String)],
    uri: &Uri,
) -> Response {
    match quirks.referrers {
        ReferrersMode::NotFoundPlain => {
            return error(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                "manifest unknown",
            );
        }
        ReferrersMode::NotFoundHtml => {
            return (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                "<!DOCTYPE html><html><head><title>The page you're looking for could not be found (404)</title></head><body><h1>404</h1></body></html>",
            )
                .into_response();
        }
        ReferrersMode::NotFoundTextPlain => {
            return (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "404 page not found\n",
            )
                .into_response();
        }
        ReferrersMode::HtmlLoginPage200 => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                LOGIN_PAGE,
            )
                .into_response();
        }
        ReferrersMode::NotAcceptable406 => {
            return (
                StatusCode::NOT_ACCEPTABLE,
                [(header::CONTENT_TYPE, "application/json")],
                json!({"errors": [{"status": 406, "message": "Not Acceptable"}]}).to_string(),
            )
                .into_response();
        }
        ReferrersMode::MethodNotAllowed405 => return unsupported(),
        ReferrersMode::AlwaysEmptyIndex => {
            return index_response(StatusCode::OK, media::OCI_INDEX, &[]);
        }
        ReferrersMode::RedirectElsewhere => {
            let base = quirks
                .redirect_elsewhere
                .clone()
                .unwrap_or_else(|| "http://127.0.0.1:9".to_string());
            let cut = digest.split(':').next().unwrap_or_default();
            let mut r = StatusCode::SEE_OTHER.into_response();
            set_header(
                &mut r,
                "Location",
                &format!("{base}/-/v2/packages/container/package/{name}/referrers/{cut}"),
            );
            return r;
        }
        ReferrersMode::Native
        | ReferrersMode::WrongContentTypeJson
        | ReferrersMode::NotFoundWithEmptyIndex
        | ReferrersMode::UnknownSubject400 => {}
    }
    if !valid_digest(digest) {
        return error(StatusCode::BAD_REQUEST, "DIGEST_INVALID", "invalid digest");
    }
    let store = lock(&shared.store);
    let Some(repo) = store.repos.get(name) else {
        return error(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "repository name not known to registry",
        );
    };
    if quirks.referrers == ReferrersMode::UnknownSubject400 && !repo.manifests.contains_key(digest)
    {
        return error(
            StatusCode::BAD_REQUEST,
            "MANIFEST_INVALID",
            "manifest invalid",
        );
    }
    let filters: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "artifactType")
        .map(|(_, v)| v.clone())
        .collect();
    let apply_filter = !filters.is_empty() && quirks.filters_applied_header;
    let all: Vec<Value> = repo
        .manifests
        .iter()
        .filter(|(_, m)| m.subject.as_deref() == Some(digest))
        .filter_map(|(d, m)| {
            let artifact_type = m
                .artifact_type
                .clone()
                .or_else(|| (!m.is_index).then(|| m.config_media_type.clone()).flatten());
            if apply_filter
                && !artifact_type
                    .as_ref()
                    .is_some_and(|at| filters.iter().any(|f| f == at))
            {
                return None;
            }
            let mut desc = json!({"mediaType": m.media_type, "digest": d, "size": m.bytes.len()});
            match quirks.descriptor_artifact_type {
                DescriptorTyping::Spec => {
                    if let Some(at) = artifact_type {
                        desc["artifactType"] = json!(at);
                    }
                }
                DescriptorTyping::Omitted => {}
                DescriptorTyping::OciEmpty => desc["artifactType"] = json!(media::OCI_EMPTY),
            }
            if let Some(a) = &m.annotations {
                desc["annotations"] = a.clone();
            }
            Some(desc)
        })
        .collect();
    // Opaque cursor: the offset into the (digest-sorted) list.
    let offset = query_get(q, "_cursor")
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(0)
        .min(all.len());
    let page_size = quirks.page_size.max(1);
    let end = (offset + page_size).min(all.len());
    let page = &all[offset..end];
    let (status, content_type) = match quirks.referrers {
        ReferrersMode::WrongContentTypeJson => (StatusCode::OK, "application/json; charset=utf-8"),
        ReferrersMode::NotFoundWithEmptyIndex => (StatusCode::NOT_FOUND, media::OCI_INDEX),
        _ => (StatusCode::OK, media::OCI_INDEX),
    };
    let mut resp = index_response(status, content_type, page);
    if apply_filter {
        set_header(&mut resp, "OCI-Filters-Applied", "artifactType");
    }
    if end < all.len() {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for f in &filters {
            ser.append_pair("artifactType", f);
        }
        ser.append_pair("_cursor", &end.to_string());
        let link = format!("<{}?{}>; rel=\"next\"", uri.path(), ser.finish());
        set_header(&mut resp, "Link", &link);
    }
    resp
}
