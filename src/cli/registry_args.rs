//! Connection, auth and TLS flags shared by every command that talks to a registry, and
//! the credentials they lead to (flags, the Docker config and its credential helpers).

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use secrecy::SecretString;

use crate::registry::credential_helper::{self, HELPER_TIMEOUT};
use crate::registry::{
    Credentials, DockerConfig, ImplicitAccess, PlainHttp, RegistryClient, RegistryClientConfig,
};

/// Registry connection flags.
#[derive(Args, Debug, Clone, Default)]
pub struct RegistryArgs {
    /// Username for Basic auth or the token flow (the password is read from stdin). For one
    /// registry only: a run that reads several takes credentials from the Docker config.
    #[arg(long, requires = "password_stdin", conflicts_with = "docker_config")]
    pub username: Option<String>,
    /// Read the password (or token) from standard input.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// The Docker config to take credentials from (its `auths`, `credHelpers` and
    /// `credsStore`, as `docker login` writes them; or a dockerconfigjson Secret's content).
    /// Default: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, when it exists.
    #[arg(long, value_name = "FILE")]
    pub docker_config: Option<PathBuf>,
    /// Extra CA certificates (PEM) to trust.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Talk plain HTTP: to the registry (`probe`, `discover`), or to every registry without a
    /// RegistryProfile (`evaluate`).
    #[arg(long)]
    pub plain_http: bool,
    /// Talk plain HTTP to this registry (`host[:port]` as in image references; repeatable).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,
    /// Do not verify the registry's TLS certificate (dangerous).
    #[arg(long)]
    pub insecure_skip_tls_verify: bool,
    /// Timeout of one request, in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub timeout_seconds: u64,
}

/// Where credentials come from, read once per run: `--username` with the password from
/// stdin, or a Docker config. Never printed (its Debug redacts).
pub struct CredentialSource {
    explicit: Option<(String, SecretString)>,
    config: Option<(String, DockerConfig)>,
}

impl std::fmt::Debug for CredentialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialSource")
            .field("username", &self.explicit.as_ref().map(|(u, _)| u))
            .field("docker_config", &self.config.as_ref().map(|(p, _)| p))
            .finish()
    }
}

/// The Docker CLI's config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn default_docker_config() -> Option<(PathBuf, &'static str)> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some((
            PathBuf::from(dir).join("config.json"),
            "$DOCKER_CONFIG/config.json",
        ));
    }
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| {
        (
            PathBuf::from(h).join(".docker/config.json"),
            "~/.docker/config.json",
        )
    })
}

impl CredentialSource {
    /// No credentials at all.
    pub fn anonymous() -> Self {
        Self {
            explicit: None,
            config: None,
        }
    }

    /// Whether the credentials are `--username`'s (good for one registry only).
    pub fn is_explicit(&self) -> bool {
        self.explicit.is_some()
    }

    /// Where credentials come from, for messages (`--username`, the config file's path).
    pub fn origin(&self) -> String {
        match (&self.explicit, &self.config) {
            (Some(_), _) => "--username".into(),
            (None, Some((p, _))) => p.clone(),
            (None, None) => "none".into(),
        }
    }

    /// The credentials for a registry host (`host[:port]`): `--username`'s, else the
    /// Docker config's credential helper for the host, else its `auths` entry, else none.
    pub async fn for_host(&self, host: &str) -> Result<Credentials, String> {
        if let Some((username, password)) = &self.explicit {
            return Ok(Credentials::Basic {
                username: username.clone(),
                password: password.clone(),
            });
        }
        let Some((path, config)) = &self.config else {
            return Ok(Credentials::Anonymous);
        };
        if let Some(helper) = config.helper_for(host) {
            match credential_helper::get(
                helper,
                &credential_helper::server_url(host),
                HELPER_TIMEOUT,
            )
            .await
            {
                Ok(Some(c)) => return Ok(c),
                Ok(None) => {}
                Err(e) => return Err(format!("{path}: registry {host}: {e}")),
            }
        }
        Ok(config.credentials_for(host))
    }
}

impl RegistryArgs {
    /// Reads what the flags name, once: the password from stdin, the Docker config file.
    pub fn credential_source(&self) -> Result<CredentialSource, String> {
        if let Some(username) = &self.username {
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .map_err(|e| format!("--password-stdin: cannot read standard input: {e}"))?;
            let password = password.trim_end_matches(['\r', '\n']).to_string();
            if password.is_empty() {
                return Err("--password-stdin: standard input was empty".into());
            }
            return Ok(CredentialSource {
                explicit: Some((username.clone(), SecretString::from(password))),
                config: None,
            });
        }
        let (path, shown) = match &self.docker_config {
            Some(p) => (p.clone(), format!("--docker-config {}", p.display())),
            None => match default_docker_config() {
                Some((p, shown)) if p.exists() => (p, shown.to_string()),
                _ => return Ok(CredentialSource::anonymous()),
            },
        };
        let bytes = crate::input::read_bounded(&path).map_err(|e| format!("{shown}: {e}"))?;
        let config = DockerConfig::parse_cli_config(bytes.as_bytes())
            .map_err(|e| format!("{shown}: {e}"))?;
        Ok(CredentialSource {
            explicit: None,
            config: Some((shown, config)),
        })
    }

    /// Whether `host` is talked to over plain HTTP.
    pub fn plain_http_for(&self, host: &str) -> bool {
        self.plain_http_hosts().covers(host)
    }

    fn plain_http_hosts(&self) -> PlainHttp {
        if self.plain_http {
            PlainHttp::All
        } else if self.insecure_registries.is_empty() {
            PlainHttp::Never
        } else {
            PlainHttp::Hosts(self.insecure_registries.iter().cloned().collect())
        }
    }

    fn ca_bundle(&self) -> Result<Option<Vec<u8>>, String> {
        match &self.ca_file {
            None => Ok(None),
            Some(path) => crate::input::read_bounded(path)
                .map(|pem| Some(pem.into_bytes()))
                .map_err(|e| format!("--ca-file {}: {e}", path.display())),
        }
    }

    /// How `evaluate` reaches registries that have no RegistryProfile (credentials are set
    /// per host on the directory).
    pub fn implicit_access(&self) -> Result<ImplicitAccess, String> {
        Ok(ImplicitAccess {
            plain_http: self.plain_http_hosts(),
            ca_bundle_pem: self.ca_bundle()?,
            insecure_skip_tls_verify: self.insecure_skip_tls_verify,
            timeout: Some(Duration::from_secs(self.timeout_seconds)),
            counters: None,
        })
    }

    /// The client configuration for `registry_url` (`scheme://host[:port]`) with `creds`.
    /// Errors name the flag at fault.
    pub async fn client_config(
        &self,
        registry_url: &str,
        creds: &CredentialSource,
    ) -> Result<RegistryClientConfig, String> {
        let url = url::Url::parse(registry_url)
            .map_err(|e| format!("{registry_url}: not a registry URL: {e}"))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err(format!("{registry_url}: the URL has no host")),
        };
        let plain = self.plain_http_for(&host);
        match (url.scheme(), plain) {
            ("http", false) => {
                return Err(format!(
                    "{registry_url}: an http:// registry needs --plain-http (or \
                     --insecure-registry {host}); refwarden never falls back to plain HTTP by itself"
                ));
            }
            ("https", true) => {
                return Err(format!(
                    "{registry_url}: --plain-http / --insecure-registry need an http:// URL"
                ));
            }
            _ => {}
        }
        let mut cfg = RegistryClientConfig::new(registry_url, plain).map_err(|e| e.to_string())?;
        cfg.insecure_skip_tls_verify = self.insecure_skip_tls_verify;
        cfg.timeout = Duration::from_secs(self.timeout_seconds);
        cfg.ca_bundle_pem = self.ca_bundle()?;
        cfg.credentials = creds.for_host(&host_of(&cfg)).await?;
        Ok(cfg)
    }

    /// A client for one registry (`probe`, `discover`), credentials read from the flags.
    pub async fn client(&self, registry_url: &str) -> Result<RegistryClient, String> {
        let creds = self.credential_source()?;
        let cfg = self.client_config(registry_url, &creds).await?;
        RegistryClient::new(cfg).map_err(|e| e.to_string())
    }

    /// `http://host` or `https://host`, as the flags ask for `host`.
    pub fn url_for(&self, host: &str) -> String {
        let scheme = if self.plain_http_for(host) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{host}")
    }
}

/// `host[:port]` of a client configuration's URL.
fn host_of(cfg: &RegistryClientConfig) -> String {
    let host = cfg.registry_url.host_str().unwrap_or_default();
    match cfg.registry_url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}
