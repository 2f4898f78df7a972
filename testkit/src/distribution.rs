//! Debian's `docker-registry` (CNCF distribution 2.8) as a child process on
//! 127.0.0.1 with its own config in a tempdir. Never uses /etc/docker/registry.

use super::Result;
use super::token_server::TokenServer;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Default binary; override with `REFWARDEN_REGISTRY_BIN`.
pub const DEFAULT_REGISTRY_BIN: &str = "/usr/bin/docker-registry";
/// Readiness polling: this many tries, 50 ms apart.
const READY_TRIES: u32 = 200;
const READY_INTERVAL: Duration = Duration::from_millis(50);

/// How the registry authenticates clients.
#[derive(Clone)]
pub enum Auth {
    Anonymous,
    /// `auth: htpasswd` with bcrypt (cost 5) hashes of these `(user, password)`.
    Htpasswd {
        users: Vec<(String, String)>,
    },
    /// `auth: token` against this token server (kept alive by the registry).
    Token(TokenServer),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Anonymous => f.write_str("Anonymous"),
            Auth::Htpasswd { users } => f
                .debug_struct("Htpasswd")
                .field("users", &users.iter().map(|(u, _)| u).collect::<Vec<_>>())
                .finish(),
            Auth::Token(t) => f.debug_tuple("Token").field(&t.realm()).finish(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct DistributionOptions {
    pub auth: Auth,
    /// `storage.delete.enabled`
    pub delete_enabled: bool,
}

impl Default for DistributionOptions {
    fn default() -> Self {
        DistributionOptions {
            auth: Auth::Anonymous,
            delete_enabled: true,
        }
    }
}

/// A running `docker-registry`; killed (and its tempdir removed) on Drop.
pub struct DistributionRegistry {
    child: Child,
    addr: SocketAddr,
    token: Option<TokenServer>,
    stderr_path: PathBuf,
    stdout_path: PathBuf,
    config_path: PathBuf,
    /// Random id sent back by this instance in `X-Refwarden-Instance`.
    instance: String,
    // Dropped last (after the process is killed in Drop::drop).
    dir: tempfile::TempDir,
}

impl DistributionRegistry {
    /// Starts the registry and waits until `GET /v2/` answers (any status).
    /// Fails (never skips) when the binary is missing.
    pub fn start(opts: DistributionOptions) -> Result<DistributionRegistry> {
        let bin = std::env::var("REFWARDEN_REGISTRY_BIN")
            .unwrap_or_else(|_| DEFAULT_REGISTRY_BIN.to_string());
        Self::start_with_binary(opts, &bin)
    }

    /// Like [`start`](Self::start) with an explicit binary path.
    pub fn start_with_binary(opts: DistributionOptions, bin: &str) -> Result<DistributionRegistry> {
        if !Path::new(&bin).is_file() {
            return Err(format!(
                "registry binary {bin} not found: run `apt-get install -y docker-registry` \
                 (Debian's CNCF distribution 2.8) or set REFWARDEN_REGISTRY_BIN"
            )
            .into());
        }
        // The free port is picked by binding :0 and releasing it; retry a
        // few times in case another process grabs it in between.
        let mut last_err = String::new();
        for _ in 0..3 {
            match Self::try_start(bin, &opts) {
                Ok(r) => return Ok(r),
                Err(e) => last_err = e.to_string(),
            }
        }
        Err(last_err.into())
    }

    fn try_start(bin: &str, opts: &DistributionOptions) -> Result<DistributionRegistry> {
        let dir = tempfile::Builder::new()
            .prefix("refwarden-distribution-")
            .tempdir()?;
        let port = free_port()?;
        let instance = hex::encode(rand::random::<[u8; 12]>());
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage)?;

        let auth_yaml = match &opts.auth {
            Auth::Anonymous => String::new(),
            Auth::Htpasswd { users } => {
                let path = dir.path().join("htpasswd");
                let mut content = String::new();
                for (user, pass) in users {
                    let hash = bcrypt::hash_with_result(pass, 5)?
                        .format_for_version(bcrypt::Version::TwoY);
                    content.push_str(&format!("{user}:{hash}\n"));
                }
                std::fs::write(&path, content)?;
                format!(
                    "auth:\n  htpasswd:\n    realm: refwarden-test\n    path: {}\n",
                    yaml_str(&path.display().to_string())
                )
            }
            Auth::Token(t) => format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                yaml_str(&t.realm()),
                yaml_str(t.service()),
                yaml_str(t.issuer()),
                yaml_str(&t.root_cert_path().display().to_string()),
            ),
        };
        let config = format!(
            "version: 0.1\n\
             log:\n  level: warn\n  formatter: text\n\
             storage:\n  filesystem:\n    rootdirectory: {storage}\n  \
             delete:\n    enabled: {delete}\n  \
             redirect:\n    disable: true\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: {addr}\n  secret: refwarden-test-secret\n  \
             headers:\n    X-Content-Type-Options: [nosniff]\n    \
             X-Refwarden-Instance: [{instance}]\n\
             {auth_yaml}",
            storage = yaml_str(&storage.display().to_string()),
            delete = opts.delete_enabled,
        );
        // Readiness checks this header so a port race can never make us talk
        // to someone else's registry.
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, &config)?;

        let stderr_path = dir.path().join("registry.stderr.log");
        let stdout_path = dir.path().join("registry.stdout.log");
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .arg(&config_path)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout_path)?)
            .stderr(std::fs::File::create(&stderr_path)?);
        // REGISTRY_* variables override the config file; keep them out.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("REGISTRY_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting {bin} serve {}: {e}", config_path.display()))?;
        let mut reg = DistributionRegistry {
            child,
            addr,
            token: match &opts.auth {
                Auth::Token(t) => Some(t.clone()),
                _ => None,
            },
            stderr_path,
            stdout_path,
            config_path,
            instance,
            dir,
        };
        reg.wait_ready()?;
        Ok(reg)
    }

    fn wait_ready(&mut self) -> Result<()> {
        for _ in 0..READY_TRIES {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!(
                    "docker-registry exited early with {status}; logs:\n{}",
                    self.logs()
                )
                .into());
            }
            if probe_v2(self.addr, &self.instance).is_some() {
                return Ok(());
            }
            std::thread::sleep(READY_INTERVAL);
        }
        Err(format!(
            "docker-registry did not answer GET /v2/ on {} after {} tries; logs:\n{}",
            self.addr,
            READY_TRIES,
            self.logs()
        )
        .into())
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT` (registry host part of image references).
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The token server when started with [`Auth::Token`].
    pub fn token_server(&self) -> Option<&TokenServer> {
        self.token.as_ref()
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The registry's stderr and stdout so far (for failure messages).
    pub fn logs(&self) -> String {
        let err = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let out = std::fs::read_to_string(&self.stdout_path).unwrap_or_default();
        format!("--- stderr ---\n{err}--- stdout ---\n{out}")
    }
}

impl Drop for DistributionRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn yaml_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// Raw HTTP/1.0 `GET /v2/`; returns the status code when this instance
/// (identified by its `X-Refwarden-Instance` header) answers.
fn probe_v2(addr: SocketAddr, instance: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    s.set_write_timeout(Some(Duration::from_millis(500))).ok()?;
    s.write_all(format!("GET /v2/ HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .ok()?;
    let mut buf = Vec::new();
    // HTTP/1.0: the server closes after the answer; bounded by the timeout
    // and by taking at most 8 KiB.
    let _ = s.take(8192).read_to_end(&mut buf);
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let code = head.strip_prefix("http/1.")?.get(2..5)?.parse().ok()?;
    head.contains(&format!("x-refwarden-instance: {instance}"))
        .then_some(code)
}
