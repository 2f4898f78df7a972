//! Connection, auth and TLS flags shared by every command that talks to a registry.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use secrecy::SecretString;

use crate::registry::{Credentials, DockerConfig, RegistryClientConfig};

/// Registry connection flags.
#[derive(Args, Debug, Clone, Default)]
pub struct RegistryArgs {
    /// Username for Basic auth or the token flow (the password is read from stdin).
    #[arg(long, requires = "password_stdin", conflicts_with = "docker_config")]
    pub username: Option<String>,
    /// Read the password (or token) from standard input.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// A Docker config file (`~/.docker/config.json` or a dockerconfigjson Secret's content) to take credentials from.
    #[arg(long, value_name = "FILE")]
    pub docker_config: Option<PathBuf>,
    /// Extra CA certificates (PEM) to trust.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Talk plain HTTP (the URL must be http://).
    #[arg(long)]
    pub plain_http: bool,
    /// Do not verify the registry's TLS certificate (dangerous).
    #[arg(long)]
    pub insecure_skip_tls_verify: bool,
    /// Timeout of one request, in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub timeout_seconds: u64,
    /// The password read from stdin, kept so several registries (`evaluate`) read it once.
    #[arg(skip)]
    stdin_password: std::sync::Arc<std::sync::OnceLock<SecretString>>,
}

impl RegistryArgs {
    /// Builds the client configuration for `registry_url`. Errors name the flag at fault.
    pub fn client_config(&self, registry_url: &str) -> Result<RegistryClientConfig, String> {
        let mut cfg =
            RegistryClientConfig::new(registry_url, self.plain_http).map_err(|e| e.to_string())?;
        cfg.insecure_skip_tls_verify = self.insecure_skip_tls_verify;
        cfg.timeout = Duration::from_secs(self.timeout_seconds);
        if let Some(path) = &self.ca_file {
            let pem =
                std::fs::read(path).map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
            cfg.ca_bundle_pem = Some(pem);
        }
        cfg.credentials = self.credentials(&cfg)?;
        Ok(cfg)
    }

    /// Builds a registry client for `registry_url`. Errors name the flag at fault.
    pub fn client(&self, registry_url: &str) -> Result<crate::registry::RegistryClient, String> {
        let cfg = self.client_config(registry_url)?;
        crate::registry::RegistryClient::new(cfg).map_err(|e| e.to_string())
    }

    fn credentials(&self, cfg: &RegistryClientConfig) -> Result<Credentials, String> {
        if let Some(username) = &self.username {
            let password = match self.stdin_password.get() {
                Some(p) => p.clone(),
                None => {
                    let mut password = String::new();
                    std::io::stdin()
                        .read_to_string(&mut password)
                        .map_err(|e| {
                            format!("--password-stdin: cannot read standard input: {e}")
                        })?;
                    let password = password.trim_end_matches(['\r', '\n']).to_string();
                    if password.is_empty() {
                        return Err("--password-stdin: standard input was empty".into());
                    }
                    self.stdin_password
                        .get_or_init(|| SecretString::from(password))
                        .clone()
                }
            };
            return Ok(Credentials::Basic {
                username: username.clone(),
                password,
            });
        }
        if let Some(path) = &self.docker_config {
            let bytes = std::fs::read(path)
                .map_err(|e| format!("--docker-config {}: {e}", path.display()))?;
            let config = DockerConfig::parse(&bytes)
                .map_err(|e| format!("--docker-config {}: {e}", path.display()))?;
            let host = cfg.registry_url.host_str().unwrap_or_default();
            let host = match cfg.registry_url.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.to_string(),
            };
            return Ok(config.credentials_for(&host));
        }
        Ok(Credentials::Anonymous)
    }
}
