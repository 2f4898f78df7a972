//! The Kubernetes API emulator (`e2e/emulator/kube_emulator.py`) as a child process, an admin
//! client for it, and the real `refwarden controller` binary as a child process talking to it.
//!
//! - [`availability`]: whether the emulator tier can run (python3 + PyYAML), failing under
//!   `CI=true` instead of skipping.
//! - [`Emulator`]: starts the emulator on an ephemeral port (`--port 0 --port-file`), with the
//!   admin token, a ServiceAccount token for `refwarden-system:refwarden` and a short
//!   `--pod-grace-period`; killed on Drop. Helpers: server-side apply as admin, get/list/
//!   delete/merge patch, the control API (request and authorization logs, faults, compaction,
//!   restart, tokens), refwarden's CRDs, RBAC and namespace, running pods, Events.
//! - [`Controller`]: `refwarden controller` with `KUBECONFIG` pointing at a ServiceAccount
//!   kubeconfig (so RBAC applies), logs captured to a file, `/metrics` and `/readyz`, SIGKILL
//!   and graceful stop; killed on Drop.
//! - [`RecordingProxy`]: an HTTP proxy between a controller and the emulator that records the
//!   bodies of every write (what the controller sent, before the API server pruned anything).
//! - [`WatchRecorder`]: a watch stream as admin, keeping every object version it sees.
//!
//! Every wait is bounded ([`wait_until`]). Traffic goes to 127.0.0.1 only. On a panic, the
//! emulator and the controllers print their log tails and the emulator's request log tail.

use super::{Result, http_client};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The admin bearer token (user `admin`, group `system:masters`).
pub const ADMIN_TOKEN: &str = "admin";
/// The controller's ServiceAccount.
pub const SA_NAMESPACE: &str = "refwarden-system";
pub const SA_NAME: &str = "refwarden";
/// The token the emulator is started with for the ServiceAccount.
pub const SA_TOKEN: &str = "refwarden-sa-token";
/// `system:serviceaccount:refwarden-system:refwarden`
pub const SA_USER: &str = "system:serviceaccount:refwarden-system:refwarden";
/// Groups of a ServiceAccount token.
pub const SA_GROUPS: [&str; 3] = [
    "system:serviceaccounts",
    "system:serviceaccounts:refwarden-system",
    "system:authenticated",
];
/// Grace period the emulator gives pods on delete (`--pod-grace-period`).
pub const POD_GRACE_SECONDS: u64 = 1;

/// The repository root.
pub use super::repo_root as root;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Whether the tier runs

/// What is installed for the emulator tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prerequisites {
    pub python3: bool,
    pub pyyaml: bool,
}

/// Run (`Ok(true)`), skip (`Ok(false)`), or fail (`Err`) — like tests/e2e.rs's `decide`: the
/// tier needs python3 and PyYAML; without them it is skipped, except under CI where it must run.
pub fn decide(pre: Prerequisites, ci: bool) -> std::result::Result<bool, String> {
    let missing: Vec<&str> = [("python3", pre.python3), ("PyYAML", pre.pyyaml)]
        .into_iter()
        .filter(|(_, ok)| !ok)
        .map(|(n, _)| n)
        .collect();
    match (missing.is_empty(), ci) {
        (true, _) => Ok(true),
        (false, true) => Err(format!(
            "CI=true but the Kubernetes API emulator cannot run: {} missing \
             (apt-get install python3 python3-yaml, or `make deps`)",
            missing.join(" and ")
        )),
        (false, false) => Ok(false),
    }
}

/// Whether `CI` says this is a CI run (`true`/`1`, any case).
pub fn is_ci() -> bool {
    std::env::var("CI")
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
        .unwrap_or(false)
}

/// Probes python3 and PyYAML.
pub fn prerequisites() -> Prerequisites {
    let ok = |args: &[&str]| {
        Command::new("python3")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    let python3 = ok(&[
        "-c",
        "import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)",
    ]);
    let pyyaml = python3 && ok(&["-c", "import yaml"]);
    Prerequisites { python3, pyyaml }
}

/// `true` to run the tier; `false` (after a message) to skip; panics under CI when it cannot run.
pub fn availability() -> bool {
    static DECISION: std::sync::OnceLock<std::result::Result<bool, String>> =
        std::sync::OnceLock::new();
    let d = DECISION.get_or_init(|| decide(prerequisites(), is_ci()));
    match d {
        Ok(true) => true,
        Ok(false) => {
            eprintln!(
                "skipping the emulator tier: python3 with PyYAML is needed \
                 (apt-get install python3 python3-yaml); under CI=true this fails instead"
            );
            false
        }
        Err(e) => panic!("{e}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Bounded waits

/// Polls `probe` every 100 ms until it returns `Ok` or `timeout` passes. `Err(observed)` means
/// "not yet" and carries what was seen; the timeout error names `what` and the last observation.
pub async fn wait_until<T, F, Fut>(
    timeout: Duration,
    what: &str,
    mut probe: F,
) -> std::result::Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, String>>,
{
    let start = Instant::now();
    loop {
        let last = match probe().await {
            Ok(v) => return Ok(v),
            Err(seen) => seen,
        };
        if start.elapsed() >= timeout {
            return Err(format!(
                "timed out after {:.1}s waiting for {what}; last observed: {last}",
                timeout.as_secs_f64()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// [`wait_until`] that panics on timeout (the Drop impls then print the logs).
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, String>>,
{
    match wait_until(timeout, what, probe).await {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Files

/// Every non-empty YAML document of a file, as JSON.
pub fn load_yaml_docs(path: &Path) -> Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    parse_yaml_docs(&text).map_err(|e| format!("{}: {e}", path.display()).into())
}

/// Every non-empty document of a multi-document YAML text, as JSON.
pub fn parse_yaml_docs(text: &str) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let v = Value::deserialize(doc)?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

/// The `*.yaml` files of a directory, sorted, without `kustomization.yaml`.
pub fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "yaml" || x == "yml")
                && p.file_name().is_some_and(|n| n != "kustomization.yaml")
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The last `n` lines, each cut at 400 bytes.
fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| {
            if l.len() <= 400 {
                l.to_string()
            } else {
                let mut cut = 400;
                while !l.is_char_boundary(cut) {
                    cut -= 1;
                }
                format!("{}…", &l[..cut])
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn kubeconfig_text(server: &str, user: &str, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kubeemu\n  cluster:\n    server: {server}\n\
         contexts:\n- name: kubeemu\n  context:\n    cluster: kubeemu\n    user: {user}\n\
         current-context: kubeemu\nusers:\n- name: {user}\n  user:\n    token: {token}\n"
    )
}

// ---------------------------------------------------------------------------------------------
// Paths of objects

/// `(path prefix, plural, namespaced)` of the kinds the tests write.
fn kind_info(api_version: &str, kind: &str) -> Option<(String, &'static str, bool)> {
    let prefix = if api_version == "v1" {
        "/api/v1".to_string()
    } else {
        format!("/apis/{api_version}")
    };
    let (plural, namespaced) = match kind {
        "Namespace" => ("namespaces", false),
        "Pod" => ("pods", true),
        "ServiceAccount" => ("serviceaccounts", true),
        "Secret" => ("secrets", true),
        "ConfigMap" => ("configmaps", true),
        "Role" => ("roles", true),
        "RoleBinding" => ("rolebindings", true),
        "ClusterRole" => ("clusterroles", false),
        "ClusterRoleBinding" => ("clusterrolebindings", false),
        "CustomResourceDefinition" => ("customresourcedefinitions", false),
        "RegistryProfile" => ("registryprofiles", false),
        "ReferrerPolicy" => ("referrerpolicies", false),
        "Lease" => ("leases", true),
        "Event" => ("events", true),
        "Deployment" => ("deployments", true),
        "ReplicaSet" => ("replicasets", true),
        _ => return None,
    };
    Some((prefix, plural, namespaced))
}

/// The REST path of an object (`/apis/g/v/[namespaces/ns/]plural/name`).
pub fn object_path(obj: &Value) -> Result<String> {
    let api = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    let name = obj["metadata"]["name"]
        .as_str()
        .ok_or_else(|| format!("{kind} without metadata.name: {obj}"))?;
    let (prefix, plural, namespaced) =
        kind_info(api, kind).ok_or_else(|| format!("no REST path known for {api} {kind}"))?;
    Ok(if namespaced {
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or("default");
        format!("{prefix}/namespaces/{ns}/{plural}/{name}")
    } else {
        format!("{prefix}/{plural}/{name}")
    })
}

/// `/apis/refwarden.dev/v1alpha1/referrerpolicies/<name>`
pub fn policy_path(name: &str) -> String {
    format!("/apis/refwarden.dev/v1alpha1/referrerpolicies/{name}")
}

/// `/apis/refwarden.dev/v1alpha1/registryprofiles/<name>`
pub fn profile_path(name: &str) -> String {
    format!("/apis/refwarden.dev/v1alpha1/registryprofiles/{name}")
}

/// `/api/v1/namespaces/<ns>/pods/<name>`
pub fn pod_path(ns: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{ns}/pods/{name}")
}

// ---------------------------------------------------------------------------------------------
// Control API records

/// One entry of `GET /_emulator/requests`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RequestEntry {
    pub seq: u64,
    pub time: Value,
    pub method: String,
    pub path: String,
    pub user: String,
    pub status: u16,
    pub user_agent: String,
    pub verb: String,
    pub api_group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub watch: bool,
}

impl RequestEntry {
    /// A write of a `/status` subresource of `resource` (any name when `name` is empty).
    pub fn is_status_patch(&self, resource: &str, name: &str) -> bool {
        self.method == "PATCH"
            && self.resource == resource
            && self.subresource == "status"
            && (name.is_empty() || self.name == name)
    }

    pub fn line(&self) -> String {
        format!(
            "#{} {} {} -> {} ({} {}{}{} user={})",
            self.seq,
            self.method,
            self.path,
            self.status,
            self.verb,
            self.resource,
            if self.subresource.is_empty() { "" } else { "/" },
            self.subresource,
            self.user
        )
    }
}

/// One entry of `GET /_emulator/authz`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AuthzEntry {
    pub seq: u64,
    pub user: String,
    pub groups: Vec<String>,
    pub verb: String,
    pub resource_request: bool,
    pub api_group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub path: String,
    pub allowed: bool,
    pub reason: String,
}

impl AuthzEntry {
    pub fn line(&self) -> String {
        if self.resource_request {
            format!(
                "{} {} {}/{}{}{} ns={:?} name={:?} allowed={} ({})",
                self.user,
                self.verb,
                self.api_group,
                self.resource,
                if self.subresource.is_empty() { "" } else { "/" },
                self.subresource,
                self.namespace,
                self.name,
                self.allowed,
                self.reason
            )
        } else {
            format!(
                "{} {} {} allowed={} ({})",
                self.user, self.verb, self.path, self.allowed, self.reason
            )
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The emulator

/// Options of [`Emulator::start`].
#[derive(Clone, Debug)]
pub struct EmulatorOptions {
    pub pod_grace_seconds: u64,
    pub bookmark_interval: f64,
    /// `--state-dir`: objects loaded from `DIR/state.json` at start (and saved there at stop or
    /// on `POST /_emulator/save`).
    pub state_dir: Option<PathBuf>,
}

impl Default for EmulatorOptions {
    fn default() -> Self {
        Self {
            pod_grace_seconds: POD_GRACE_SECONDS,
            bookmark_interval: 1.0,
            state_dir: None,
        }
    }
}

/// The emulator process on `127.0.0.1:<ephemeral>`; killed on Drop.
pub struct Emulator {
    child: Child,
    port: u16,
    client: reqwest::Client,
    stream_client: reqwest::Client,
    log_path: PathBuf,
    sa_kubeconfig: PathBuf,
    admin_kubeconfig: PathBuf,
    dir: tempfile::TempDir,
}

impl Emulator {
    /// Starts the emulator and waits (bounded) until `/_emulator/healthz` answers.
    pub async fn start(opts: EmulatorOptions) -> Result<Emulator> {
        let dir = tempfile::Builder::new().prefix("kubeemu-rs-").tempdir()?;
        let port_file = dir.path().join("port");
        let log_path = dir.path().join("emulator.log");
        let sa_kubeconfig = dir.path().join("sa.kubeconfig");
        let admin_kubeconfig = dir.path().join("admin.kubeconfig");
        let log = std::fs::File::create(&log_path)?;
        let script = root().join("e2e/emulator/kube_emulator.py");
        let mut cmd = Command::new("python3");
        if let Some(d) = &opts.state_dir {
            cmd.arg(&script).arg("--state-dir").arg(d);
        } else {
            cmd.arg(&script);
        }
        let child = cmd
            .args(["--host", "127.0.0.1", "--port", "0", "--port-file"])
            .arg(&port_file)
            .args(["--token", ADMIN_TOKEN, "--sa-token"])
            .arg(format!("{SA_NAMESPACE}:{SA_NAME}:{SA_TOKEN}"))
            .arg("--kubeconfig-out")
            .arg(&admin_kubeconfig)
            .arg("--sa-kubeconfig-out")
            .arg(&sa_kubeconfig)
            .args(["--pod-grace-period", &opts.pod_grace_seconds.to_string()])
            .args(["--bookmark-interval", &opts.bookmark_interval.to_string()])
            .current_dir(root())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start python3 {}: {e}", script.display()))?;
        let client = http_client()?;
        let stream_client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let mut emu = Emulator {
            child,
            port: 0,
            client,
            stream_client,
            log_path,
            sa_kubeconfig,
            admin_kubeconfig,
            dir,
        };
        let start = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && let Ok(p) = text.trim().parse::<u16>()
            {
                emu.port = p;
                break;
            }
            if let Some(status) = emu.child.try_wait()? {
                return Err(format!(
                    "the emulator exited ({status}) before listening:\n{}",
                    emu.log_tail(40)
                )
                .into());
            }
            if start.elapsed() > Duration::from_secs(20) {
                return Err(format!(
                    "the emulator wrote no port file within 20 s:\n{}",
                    emu.log_tail(40)
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let health = wait_until(Duration::from_secs(10), "emulator healthz", || async {
            match emu.control(Method::GET, "/healthz", None).await {
                Ok(v) if v["ok"] == true => Ok(()),
                Ok(v) => Err(v.to_string()),
                Err(e) => Err(e.to_string()),
            }
        })
        .await;
        health.map_err(|e| format!("{e}\n{}", emu.log_tail(40)))?;
        Ok(emu)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The kubeconfig of the ServiceAccount token the emulator was started with.
    pub fn sa_kubeconfig(&self) -> &Path {
        &self.sa_kubeconfig
    }

    pub fn admin_kubeconfig(&self) -> &Path {
        &self.admin_kubeconfig
    }

    /// The emulator's work directory (kubeconfigs, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a kubeconfig for `token` against `server` (default: the emulator) into the
    /// emulator's directory.
    pub fn write_kubeconfig(
        &self,
        file: &str,
        server: Option<&str>,
        token: &str,
    ) -> Result<PathBuf> {
        let path = self.dir.path().join(file);
        let server = server.map(str::to_string).unwrap_or_else(|| self.url());
        std::fs::write(
            &path,
            kubeconfig_text(&server, &format!("{SA_NAMESPACE}-{SA_NAME}"), token),
        )?;
        Ok(path)
    }

    /// The last `n` lines of the emulator's stderr.
    pub fn log_tail(&self, n: usize) -> String {
        tail_lines(
            &std::fs::read_to_string(&self.log_path).unwrap_or_default(),
            n,
        )
    }

    // -- raw requests -------------------------------------------------------------------------

    /// An admin request; returns the status and the body (JSON, or a JSON string).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        content_type: &str,
    ) -> Result<(StatusCode, Value)> {
        let mut rb = self
            .client
            .request(method.clone(), format!("{}{path}", self.url()))
            .bearer_auth(ADMIN_TOKEN)
            .header("Accept", "application/json");
        if let Some(b) = body {
            rb = rb
                .header("Content-Type", content_type)
                .body(serde_json::to_vec(b)?);
        }
        let resp = rb
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok((status, v))
    }

    async fn ok(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        content_type: &str,
    ) -> Result<Value> {
        let (status, v) = self
            .request(method.clone(), path, body, content_type)
            .await?;
        if !status.is_success() {
            return Err(format!("{method} {path} -> {status}: {v}").into());
        }
        Ok(v)
    }

    /// Server-side apply of `obj` as admin (field manager `manager`, forced) at its own path.
    pub async fn apply_as(&self, manager: &str, obj: &Value) -> Result<Value> {
        let path = object_path(obj)?;
        self.apply_path(&path, manager, obj).await
    }

    /// Server-side apply of `obj` as admin (field manager `emulator-test`).
    pub async fn apply(&self, obj: &Value) -> Result<Value> {
        self.apply_as("emulator-test", obj).await
    }

    /// Server-side apply at an explicit path (e.g. `.../status`).
    pub async fn apply_path(&self, path: &str, manager: &str, obj: &Value) -> Result<Value> {
        self.ok(
            Method::PATCH,
            &format!("{path}?fieldManager={manager}&force=true"),
            Some(obj),
            "application/apply-patch+yaml",
        )
        .await
    }

    /// JSON merge patch as admin.
    pub async fn merge_patch(&self, path: &str, patch: &Value) -> Result<Value> {
        self.ok(
            Method::PATCH,
            &format!("{path}?fieldManager=emulator-test"),
            Some(patch),
            "application/merge-patch+json",
        )
        .await
    }

    /// `GET path`; `None` on 404.
    pub async fn get(&self, path: &str) -> Result<Option<Value>> {
        let (status, v) = self.request(Method::GET, path, None, "").await?;
        match status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(v)),
            s => Err(format!("GET {path} -> {s}: {v}").into()),
        }
    }

    /// `GET path` that must exist.
    pub async fn get_ok(&self, path: &str) -> Result<Value> {
        self.get(path)
            .await?
            .ok_or_else(|| format!("GET {path}: 404").into())
    }

    /// The items of a list.
    pub async fn list(&self, path: &str) -> Result<Vec<Value>> {
        let v = self.ok(Method::GET, path, None, "").await?;
        Ok(v["items"].as_array().cloned().unwrap_or_default())
    }

    /// `DELETE path` (default grace).
    pub async fn delete(&self, path: &str) -> Result<Value> {
        self.ok(Method::DELETE, path, None, "").await
    }

    // -- control API --------------------------------------------------------------------------

    /// A `/_emulator{path}` request as admin; non-2xx is an error.
    pub async fn control(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        self.ok(
            method,
            &format!("/_emulator{path}"),
            body.as_ref(),
            "application/json",
        )
        .await
    }

    /// Request log entries after `since` (0: all).
    pub async fn requests(&self, since: u64) -> Result<Vec<RequestEntry>> {
        let v = self
            .control(Method::GET, &format!("/requests?since={since}"), None)
            .await?;
        Ok(serde_json::from_value(v["items"].clone())?)
    }

    /// The highest request log sequence number so far (0 when empty).
    pub async fn request_seq(&self) -> Result<u64> {
        Ok(self
            .requests(0)
            .await?
            .last()
            .map(|e| e.seq)
            .unwrap_or_default())
    }

    /// Authorization decisions after `since` (0: all).
    pub async fn authz(&self, since: u64) -> Result<Vec<AuthzEntry>> {
        let v = self
            .control(Method::GET, &format!("/authz?since={since}"), None)
            .await?;
        Ok(serde_json::from_value(v["items"].clone())?)
    }

    /// Adds a fault rule (see the emulator README); returns it with its `id`.
    pub async fn add_fault(&self, rule: Value) -> Result<Value> {
        self.control(Method::POST, "/faults", Some(rule)).await
    }

    /// The fault rules that still have hits left.
    pub async fn faults(&self) -> Result<Vec<Value>> {
        let v = self.control(Method::GET, "/faults", None).await?;
        Ok(v["items"].as_array().cloned().unwrap_or_default())
    }

    pub async fn clear_faults(&self) -> Result<()> {
        self.control(Method::DELETE, "/faults", None).await?;
        Ok(())
    }

    /// Drops the watch history (older resourceVersions answer 410).
    pub async fn compact(&self) -> Result<Value> {
        self.control(Method::POST, "/compact", None).await
    }

    /// Ends every watch and connection, compacts; objects are kept.
    pub async fn restart(&self) -> Result<Value> {
        self.control(
            Method::POST,
            "/restart",
            Some(json!({"closeConnections": true})),
        )
        .await
    }

    /// `GET /_emulator/state`
    pub async fn state(&self) -> Result<Value> {
        self.control(Method::GET, "/state", None).await
    }

    /// Registers a bearer token for `username` with `groups`.
    pub async fn add_token(&self, token: &str, username: &str, groups: &[&str]) -> Result<()> {
        self.control(
            Method::POST,
            "/tokens",
            Some(json!({"token": token, "username": username, "groups": groups})),
        )
        .await?;
        Ok(())
    }

    /// A token for the controller's ServiceAccount (same user and groups as a real SA token)
    /// plus one marker group `refwarden.test/replica:<replica>` that no binding names, so the
    /// authorization log tells replicas apart. Returns a kubeconfig using it.
    pub async fn replica_kubeconfig(&self, replica: &str, server: Option<&str>) -> Result<PathBuf> {
        let token = format!("sa-token-{replica}");
        let marker = replica_marker(replica);
        let mut groups: Vec<&str> = SA_GROUPS.to_vec();
        groups.push(&marker);
        self.add_token(&token, SA_USER, &groups).await?;
        self.write_kubeconfig(&format!("{replica}.kubeconfig"), server, &token)
    }

    // -- refwarden's objects ------------------------------------------------------------------

    /// Applies the CRDs in `crds/` and waits until both are Established.
    pub async fn install_crds(&self) -> Result<()> {
        let mut names = Vec::new();
        for f in yaml_files(&root().join("crds"))? {
            for doc in load_yaml_docs(&f)? {
                names.push(
                    doc["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
                self.apply(&doc).await?;
            }
        }
        for n in names {
            let path = format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{n}");
            wait_until(
                Duration::from_secs(10),
                &format!("CRD {n} Established"),
                || {
                    let path = path.clone();
                    async move {
                        let crd = self.get(&path).await.map_err(|e| e.to_string())?;
                        let established = crd.as_ref().is_some_and(|c| {
                            c["status"]["conditions"].as_array().is_some_and(|cs| {
                                cs.iter()
                                    .any(|c| c["type"] == "Established" && c["status"] == "True")
                            })
                        });
                        if established {
                            Ok(())
                        } else {
                            Err(format!("{crd:?}"))
                        }
                    }
                },
            )
            .await?;
        }
        Ok(())
    }

    /// The namespace `refwarden-system`.
    pub async fn install_namespace(&self) -> Result<()> {
        self.apply(&json!({"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": SA_NAMESPACE}}))
            .await?;
        Ok(())
    }

    /// Applies objects (e.g. RBAC) in order.
    pub async fn apply_all(&self, objs: &[Value]) -> Result<()> {
        for o in objs {
            self.apply(o)
                .await
                .map_err(|e| format!("applying {}: {e}", object_path(o).unwrap_or_default()))?;
        }
        Ok(())
    }

    /// CRDs, the namespace `refwarden-system` and `rbac` (ServiceAccount, Roles, Bindings).
    pub async fn install_refwarden(&self, rbac: &[Value]) -> Result<()> {
        self.install_crds().await?;
        self.install_namespace().await?;
        self.apply_all(rbac).await
    }

    /// Events (events.k8s.io/v1) of every namespace.
    pub async fn events(&self) -> Result<Vec<Value>> {
        self.list("/apis/events.k8s.io/v1/events").await
    }

    /// The leader Lease's `spec.holderIdentity` (`None` without a Lease or holder).
    pub async fn lease_holder(&self, name: &str) -> Result<Option<String>> {
        let path = format!("/apis/coordination.k8s.io/v1/namespaces/{SA_NAMESPACE}/leases/{name}");
        Ok(self
            .get(&path)
            .await?
            .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_string)))
    }

    /// A scheduled, Running pod: created (the emulator resets status on create, as the real pod
    /// strategy does) and then given its kubelet status through `/status` as admin.
    pub async fn create_running_pod(&self, pod: &RunningPod) -> Result<Value> {
        let containers: Vec<Value> = pod
            .containers
            .iter()
            .map(|c| json!({"name": c.name, "image": c.image}))
            .collect();
        let mut meta = json!({"name": pod.name, "namespace": pod.namespace});
        if !pod.labels.is_empty() {
            meta["labels"] = json!(pod.labels);
        }
        if let Some((kind, name)) = &pod.owner {
            meta["ownerReferences"] = json!([{
                "apiVersion": "apps/v1", "kind": kind, "name": name,
                "uid": format!("uid-{name}"), "controller": true,
            }]);
        }
        let obj = json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"nodeName": "node-1", "containers": containers},
        });
        self.apply(&obj).await?;
        let statuses: Vec<Value> = pod
            .containers
            .iter()
            .map(|c| {
                json!({
                    "name": c.name, "image": c.image, "imageID": c.image_id,
                    "ready": true, "started": true, "restartCount": 0,
                    "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
                })
            })
            .collect();
        let status = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod.name, "namespace": pod.namespace},
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": statuses,
            },
        });
        let path = pod_path(&pod.namespace, &pod.name);
        self.apply_path(&format!("{path}/status"), "kubelet", &status)
            .await
    }

    /// Starts recording a watch (as admin) of `path` (a list path, e.g. with a field selector).
    pub async fn watch(&self, path: &str) -> Result<WatchRecorder> {
        let list = self.ok(Method::GET, path, None, "").await?;
        let rv = list["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("0")
            .to_string();
        let initial = list["items"].as_array().cloned().unwrap_or_default();
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = format!(
            "{}{path}{sep}watch=true&resourceVersion={rv}&timeoutSeconds=600",
            self.url()
        );
        let seen = Arc::new(Mutex::new(
            initial
                .into_iter()
                .map(|o| ("INITIAL".to_string(), o))
                .collect::<Vec<_>>(),
        ));
        let error = Arc::new(Mutex::new(None));
        let resp = self
            .stream_client
            .get(&url)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err(format!("watch {path} -> {}", resp.status()).into());
        }
        let (seen2, error2) = (seen.clone(), error.clone());
        let task = tokio::spawn(async move {
            let mut stream = resp.bytes_stream();
            let mut buf: Vec<u8> = Vec::new();
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(bytes) => {
                        buf.extend_from_slice(&bytes);
                        while let Some(i) = buf.iter().position(|b| *b == b'\n') {
                            let line: Vec<u8> = buf.drain(..=i).collect();
                            if let Ok(ev) = serde_json::from_slice::<Value>(&line) {
                                let t = ev["type"].as_str().unwrap_or_default().to_string();
                                if t != "BOOKMARK" {
                                    lock(&seen2).push((t, ev["object"].clone()));
                                }
                            }
                        }
                    }
                    Err(e) => {
                        *lock(&error2) = Some(e.to_string());
                        break;
                    }
                }
            }
            lock(&error2).get_or_insert_with(|| "watch ended".to_string());
        });
        Ok(WatchRecorder {
            seen,
            error,
            task: Some(task),
        })
    }

    /// A formatted tail of the request log (for failure messages).
    pub async fn request_log_tail(&self, n: usize) -> String {
        match self.requests(0).await {
            Ok(items) => items[items.len().saturating_sub(n)..]
                .iter()
                .map(RequestEntry::line)
                .collect::<Vec<_>>()
                .join("\n"),
            Err(e) => format!("(request log unavailable: {e})"),
        }
    }

    /// The request log tail read with a blocking socket (usable from Drop).
    fn request_log_tail_blocking(&self, n: usize) -> String {
        let text = match blocking_get(self.port, "/_emulator/requests", ADMIN_TOKEN) {
            Ok(t) => t,
            Err(e) => return format!("(request log unavailable: {e})"),
        };
        let items: Vec<RequestEntry> = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| serde_json::from_value(v["items"].clone()).ok())
            .unwrap_or_default();
        items[items.len().saturating_sub(n)..]
            .iter()
            .map(RequestEntry::line)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- emulator request log (last 60) ----\n{}\n---- emulator stderr (last 30) ----\n{}\n----",
                self.request_log_tail_blocking(60),
                self.log_tail(30)
            );
        }
        // SIGTERM first (it stops in <= 5 s and closes watches), SIGKILL after 3 s.
        if let Ok(None) = self.child.try_wait() {
            terminate(&mut self.child, Duration::from_secs(3));
        }
    }
}

/// The marker group of a replica's token ([`Emulator::replica_kubeconfig`]).
pub fn replica_marker(replica: &str) -> String {
    format!("refwarden.test/replica:{replica}")
}

/// SIGTERM, wait up to `grace`, then SIGKILL; always reaps.
fn terminate(child: &mut Child, grace: Duration) -> Option<std::process::ExitStatus> {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    let start = Instant::now();
    while start.elapsed() < grace {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait().ok()
}

/// A minimal blocking HTTP/1.1 GET on 127.0.0.1 (for Drop, outside any runtime).
fn blocking_get(port: u16, path: &str, token: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\
         Accept: application/json\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        // De-chunk.
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || after.len() < n {
                break;
            }
            out.push_str(&after[..n]);
            rest = after[n..].trim_start_matches("\r\n");
        }
        return Ok(out);
    }
    Ok(body.to_string())
}

/// One container of a [`RunningPod`].
#[derive(Clone, Debug)]
pub struct PodContainer {
    pub name: String,
    /// `127.0.0.1:PORT/repo:tag`
    pub image: String,
    /// `127.0.0.1:PORT/repo@sha256:…`
    pub image_id: String,
}

/// A pod as a kubelet would report it: scheduled (`spec.nodeName`), Running, with imageIDs.
#[derive(Clone, Debug)]
pub struct RunningPod {
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// `(kind, name)` of a controlling owner (e.g. `ReplicaSet`), none for a bare pod.
    pub owner: Option<(String, String)>,
    pub containers: Vec<PodContainer>,
}

impl RunningPod {
    /// A bare pod in `namespace` with one container `app`.
    pub fn new(namespace: &str, name: &str, image: &str, image_id: &str) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            labels: BTreeMap::new(),
            owner: None,
            containers: vec![PodContainer {
                name: "app".into(),
                image: image.into(),
                image_id: image_id.into(),
            }],
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Watch recorder

/// Every object version a watch delivered (plus the list it started from, as `INITIAL`).
pub struct WatchRecorder {
    seen: Arc<Mutex<Vec<(String, Value)>>>,
    error: Arc<Mutex<Option<String>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl WatchRecorder {
    /// `(event type, object)` so far.
    pub fn events(&self) -> Vec<(String, Value)> {
        lock(&self.seen).clone()
    }

    /// Why the stream ended, if it did.
    pub fn ended(&self) -> Option<String> {
        lock(&self.error).clone()
    }
}

impl Drop for WatchRecorder {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Recording proxy

/// A write a controller sent through a [`RecordingProxy`].
#[derive(Clone, Debug)]
pub struct RecordedWrite {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub content_type: String,
    /// The body (JSON when it parses, else a JSON string).
    pub body: Value,
    /// The API's answer (0 when the upstream request failed).
    pub status: u16,
}

struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    writes: Mutex<Vec<RecordedWrite>>,
}

/// An HTTP proxy on 127.0.0.1 in front of the emulator that records every request body that is
/// not a GET; responses (watch streams included) are streamed back unchanged.
pub struct RecordingProxy {
    server: super::ServerHandle,
    state: Arc<ProxyState>,
}

fn hop_by_hop(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

async fn proxy_handler(
    axum::extract::State(st): axum::extract::State<Arc<ProxyState>>,
    req: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => {
            return (axum::http::StatusCode::BAD_REQUEST, format!("proxy: {e}")).into_response();
        }
    };
    let pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let mut rb = st
        .client
        .request(parts.method.clone(), format!("{}{pq}", st.upstream));
    for (k, v) in &parts.headers {
        if !hop_by_hop(k.as_str()) {
            rb = rb.header(k, v);
        }
    }
    let index = if parts.method != axum::http::Method::GET {
        let ct = parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        let mut w = lock(&st.writes);
        w.push(RecordedWrite {
            method: parts.method.to_string(),
            path: pq.clone(),
            content_type: ct,
            body,
            status: 0,
        });
        Some(w.len() - 1)
    } else {
        None
    };
    let resp = match rb.body(bytes).send().await {
        Ok(r) => r,
        Err(e) => {
            return (axum::http::StatusCode::BAD_GATEWAY, format!("proxy: {e}")).into_response();
        }
    };
    if let Some(i) = index {
        lock(&st.writes)[i].status = resp.status().as_u16();
    }
    let mut out = axum::response::Response::builder().status(resp.status().as_u16());
    for (k, v) in resp.headers() {
        if !hop_by_hop(k.as_str()) {
            out = out.header(k, v);
        }
    }
    out.body(axum::body::Body::from_stream(resp.bytes_stream()))
        .unwrap_or_else(|e| {
            (axum::http::StatusCode::BAD_GATEWAY, format!("proxy: {e}")).into_response()
        })
}

impl RecordingProxy {
    /// A proxy to the emulator.
    pub fn start(emulator: &Emulator) -> Result<RecordingProxy> {
        let _ = http_client()?; // installs the rustls provider reqwest needs
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .http1_only()
            .build()?;
        let state = Arc::new(ProxyState {
            upstream: emulator.url(),
            client,
            writes: Mutex::new(Vec::new()),
        });
        let router = axum::Router::new()
            .fallback(proxy_handler)
            .with_state(state.clone());
        let server = super::ServerHandle::spawn("kube-recording-proxy", router)?;
        Ok(RecordingProxy { server, state })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Every write so far.
    pub fn writes(&self) -> Vec<RecordedWrite> {
        lock(&self.state.writes).clone()
    }
}

// ---------------------------------------------------------------------------------------------
// The controller

/// Options of [`Controller::start`].
#[derive(Clone, Debug)]
pub struct ControllerOptions {
    /// The `refwarden` binary (a test's or bench's `env!("CARGO_BIN_EXE_refwarden")`: only
    /// those targets know where Cargo built it).
    pub binary: PathBuf,
    /// `--identity` (Lease holder, `reportingInstance` of Events).
    pub identity: String,
    pub leader_election: bool,
    /// `KUBECONFIG`
    pub kubeconfig: PathBuf,
    /// `--log`
    pub log_filter: String,
    /// `--insecure-registry` (registries without a RegistryProfile reached over plain HTTP).
    pub insecure_registries: Vec<String>,
    /// More flags of `refwarden controller` (e.g. `--reports=openreports`).
    pub extra_args: Vec<String>,
}

impl ControllerOptions {
    pub fn new(binary: impl Into<PathBuf>, identity: &str, kubeconfig: &Path) -> Self {
        Self {
            binary: binary.into(),
            identity: identity.into(),
            leader_election: false,
            kubeconfig: kubeconfig.to_path_buf(),
            log_filter: "info,refwarden=debug".into(),
            insecure_registries: Vec::new(),
            extra_args: Vec::new(),
        }
    }

    /// Adds a flag of `refwarden controller`.
    pub fn arg(mut self, arg: &str) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// Adds `--insecure-registry host`.
    pub fn insecure_registry(mut self, host: &str) -> Self {
        self.insecure_registries.push(host.into());
        self
    }

    pub fn leader_election(mut self, on: bool) -> Self {
        self.leader_election = on;
        self
    }
}

/// `refwarden controller` as a child process; killed on Drop.
pub struct Controller {
    child: Child,
    identity: String,
    addr: SocketAddr,
    log_path: PathBuf,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Controller {
    /// Starts the binary; does not wait for readiness (see [`Controller::wait_ready`]).
    pub fn start(opts: ControllerOptions) -> Result<Controller> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("refwarden-ctl-{}-", opts.identity))
            .tempdir()?;
        let log_path = dir.path().join("controller.log");
        let log = std::fs::File::create(&log_path)?;
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut cmd = Command::new(&opts.binary);
        cmd.arg("controller")
            .arg("--listen-addr")
            .arg(addr.to_string())
            .arg(format!("--leader-election={}", opts.leader_election))
            .args(["--lease-namespace", SA_NAMESPACE])
            .args(["--identity", &opts.identity])
            .args(["--log-format", "json", "--log", &opts.log_filter])
            .args(
                opts.insecure_registries
                    .iter()
                    .flat_map(|h| ["--insecure-registry", h.as_str()]),
            )
            .args(&opts.extra_args)
            .env("KUBECONFIG", &opts.kubeconfig)
            .env("NO_PROXY", "*")
            .env_remove("POD_NAMESPACE")
            .env_remove("POD_NAME")
            .env_remove("REFWARDEN_LOG")
            .env_remove("REFWARDEN_LOG_FORMAT")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for v in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            cmd.env_remove(v);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", opts.binary.display()))?;
        Ok(Controller {
            child,
            identity: opts.identity,
            addr,
            log_path,
            http: http_client()?,
            _dir: dir,
        })
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// `http://127.0.0.1:PORT` of `/metrics`, `/readyz`, `/healthz`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    async fn get_text(&self, path: &str) -> Result<(u16, String)> {
        let resp = self
            .http
            .get(format!("{}{path}", self.url()))
            .timeout(Duration::from_secs(5))
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await?))
    }

    /// `/metrics` text.
    pub async fn metrics(&self) -> Result<String> {
        let (status, text) = self.get_text("/metrics").await?;
        if status != 200 {
            return Err(format!("/metrics -> {status}: {text}").into());
        }
        Ok(text)
    }

    /// `/metrics`, parsed.
    pub async fn samples(&self) -> Result<Metrics> {
        Ok(Metrics::parse(&self.metrics().await?))
    }

    /// `/readyz` status code.
    pub async fn readyz(&self) -> Result<u16> {
        Ok(self.get_text("/readyz").await?.0)
    }

    /// Waits (bounded) until `/readyz` answers 200; fails early when the process exits.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "controller {} exited ({status}) before ready:\n{}",
                    self.identity,
                    self.log_tail(40)
                )
                .into());
            }
            match self.readyz().await {
                Ok(200) => return Ok(()),
                Ok(s) => last = format!("/readyz {s}"),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "controller {} not ready within {timeout:?} (last: {last}):\n{}",
            self.identity,
            self.log_tail(40)
        )
        .into())
    }

    /// SIGKILL (no Lease release, no cleanup).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then SIGKILL after `grace`; returns the exit status.
    pub fn stop(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        if let Ok(Some(s)) = self.child.try_wait() {
            return Some(s);
        }
        terminate(&mut self.child, grace)
    }

    /// The whole log (JSON lines).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The last `n` log lines.
    pub fn log_tail(&self, n: usize) -> String {
        tail_lines(&self.log(), n)
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- controller {} log (last 50 lines) ----\n{}\n----",
                self.identity,
                self.log_tail(50)
            );
        }
        self.kill();
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics

/// One sample of the OpenMetrics text.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed `/metrics` page.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub samples: Vec<Sample>,
    pub text: String,
}

impl Metrics {
    /// Parses `name{l="v",…} value` lines (comments skipped).
    pub fn parse(text: &str) -> Metrics {
        let mut samples = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (series, value) = match line.rsplit_once(' ') {
                Some(x) => x,
                None => continue,
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n.to_string(), parse_labels(rest.trim_end_matches('}'))),
                None => (series.to_string(), BTreeMap::new()),
            };
            samples.push(Sample {
                name,
                labels,
                value,
            });
        }
        Metrics {
            samples,
            text: text.to_string(),
        }
    }

    /// Samples of `name` whose labels include every `(key, value)` of `labels`.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The value of the one sample of `name` with exactly-matching `labels` (subset match).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.find(name, labels).first().map(|s| s.value)
    }

    /// Every sample whose name starts with `prefix` and that has label `key` = `value`.
    pub fn with_label(&self, prefix: &str, key: &str, value: &str) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.name.starts_with(prefix) && s.labels.get(key).map(String::as_str) == Some(value)
            })
            .collect()
    }

    /// The `refwarden_*` lines of the page (for failure messages).
    pub fn refwarden_lines(&self) -> String {
        self.text
            .lines()
            .filter(|l| l.starts_with("refwarden_") && !l.contains("_bucket{"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s;
    while let Some((k, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(match n {
                            'n' => '\n',
                            other => other,
                        });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.insert(k.trim_start_matches(',').trim().to_string(), value);
        rest = after[end..].trim_start_matches(',');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// CRD schema walk

/// Paths of `value` that the structural schema `schema` does not declare (what the API server
/// would prune). Paths look like `.status.violations[0].workloads[0].kind`.
/// `value` is a whole object or a patch body: `apiVersion`, `kind` and `metadata` at its root
/// are the API server's own (never pruned by the CRD schema).
pub fn undeclared_fields(schema: &Value, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match value {
        Value::Object(map) => {
            let body: serde_json::Map<String, Value> = map
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "apiVersion" | "kind" | "metadata"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            walk_schema(schema, &Value::Object(body), String::new(), &mut out);
        }
        other => walk_schema(schema, other, String::new(), &mut out),
    }
    out
}

fn walk_schema(schema: &Value, value: &Value, path: String, out: &mut Vec<String>) {
    if schema["x-kubernetes-preserve-unknown-fields"] == true && schema.get("properties").is_none()
    {
        return;
    }
    match value {
        Value::Object(map) => {
            let props = schema["properties"].as_object();
            let additional = schema.get("additionalProperties");
            for (k, v) in map {
                let p = format!("{path}.{k}");
                if let Some(s) = props.and_then(|p| p.get(k)) {
                    walk_schema(s, v, p, out);
                } else if let Some(a) = additional.filter(|a| a.is_object()) {
                    walk_schema(a, v, p, out);
                } else if additional != Some(&Value::Bool(true))
                    && schema["x-kubernetes-preserve-unknown-fields"] != true
                {
                    out.push(p);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk_schema(&schema["items"], v, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// The `openAPIV3Schema` of the storage version of a CRD file in `crds/`.
pub fn crd_schema(file: &str) -> Result<Value> {
    let docs = load_yaml_docs(&root().join("crds").join(file))?;
    let crd = docs
        .first()
        .ok_or_else(|| format!("crds/{file} is empty"))?;
    let versions = crd["spec"]["versions"]
        .as_array()
        .ok_or_else(|| format!("crds/{file}: no versions"))?;
    let v = versions
        .iter()
        .find(|v| v["storage"] == true)
        .unwrap_or(&versions[0]);
    Ok(v["schema"]["openAPIV3Schema"].clone())
}

/// Paths present in `written` that are missing from, or differ in, `stored` (`written ⊆ stored`).
pub fn missing_from(written: &Value, stored: &Value) -> Vec<String> {
    let mut out = Vec::new();
    subset_walk(written, stored, String::new(), &mut out);
    out
}

fn subset_walk(w: &Value, s: &Value, path: String, out: &mut Vec<String>) {
    match (w, s) {
        (Value::Object(wm), Value::Object(sm)) => {
            for (k, wv) in wm {
                let p = format!("{path}.{k}");
                match sm.get(k) {
                    Some(sv) => subset_walk(wv, sv, p, out),
                    None if wv.is_null() => {}
                    None => out.push(format!("{p} (written {wv}, not stored)")),
                }
            }
        }
        (Value::Array(wa), Value::Array(sa)) => {
            if wa.len() != sa.len() {
                out.push(format!(
                    "{path} (written {} items, stored {})",
                    wa.len(),
                    sa.len()
                ));
                return;
            }
            for (i, (wv, sv)) in wa.iter().zip(sa).enumerate() {
                subset_walk(wv, sv, format!("{path}[{i}]"), out);
            }
        }
        (w, s) if w == s => {}
        (w, s) => out.push(format!("{path} (written {w}, stored {s})")),
    }
}
