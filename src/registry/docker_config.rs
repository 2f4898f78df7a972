//! `kubernetes.io/dockerconfigjson` documents:
//! `{"auths": {"<host>": {"auth": base64(user:pass)} | {"username","password"} | {"identitytoken"}}}`,
//! and the Docker CLI's own `config.json`, which may also name credential helpers
//! (`credHelpers: {"<host>": "<name>"}`, `credsStore: "<name>"`): those are kept as names
//! here and run only by the CLI ([`super::credential_helper`]).

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use secrecy::SecretString;

use super::auth::Credentials;

/// A parsed docker config: credentials by normalised registry host.
#[derive(Clone, Default)]
pub struct DockerConfig {
    /// normalised host (`docker.io`, `ghcr.io`, `localhost:5000`) → credentials.
    entries: BTreeMap<String, Credentials>,
    /// `credHelpers`: normalised host → helper name.
    helpers: BTreeMap<String, String>,
    /// `credsStore`: the helper for every other host.
    store: Option<String>,
}

/// A dockerconfigjson document that cannot be used; names the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct DockerConfigError {
    /// e.g. `auths."ghcr.io".auth`
    pub field: String,
    /// What is wrong (never the secret value).
    pub reason: String,
}

fn err(field: impl Into<String>, reason: impl Into<String>) -> DockerConfigError {
    DockerConfigError {
        field: field.into(),
        reason: reason.into(),
    }
}

impl DockerConfig {
    /// Parses a `kubernetes.io/dockerconfigjson` document (`auths` required). Error messages
    /// never echo secret values.
    pub fn parse(json: &[u8]) -> Result<Self, DockerConfigError> {
        Self::parse_with(json, false)
    }

    /// Parses the Docker CLI's `config.json`: `auths` may be absent (`docker login` with a
    /// credential store writes none), `credHelpers` and `credsStore` are read; the file's
    /// other settings (`proxies`, `psFormat`, …) are Docker's and left alone.
    pub fn parse_cli_config(json: &[u8]) -> Result<Self, DockerConfigError> {
        Self::parse_with(json, true)
    }

    fn parse_with(json: &[u8], cli: bool) -> Result<Self, DockerConfigError> {
        // Parse into a Value first: serde_json syntax errors carry only positions,
        // whereas typed deserialisation errors may quote values.
        let doc: serde_json::Value = serde_json::from_slice(json).map_err(|e| {
            err(
                "dockerconfigjson",
                format!("not valid JSON (line {}, column {})", e.line(), e.column()),
            )
        })?;
        let obj = doc
            .as_object()
            .ok_or_else(|| err("dockerconfigjson", "must be a JSON object"))?;
        let empty = serde_json::Map::new();
        let auths = match obj.get("auths") {
            None if cli => &empty,
            None => return Err(err("auths", "missing")),
            Some(a) => a
                .as_object()
                .ok_or_else(|| err("auths", "must be an object"))?,
        };
        let (helpers, store) = if cli {
            parse_helpers(obj)?
        } else {
            (BTreeMap::new(), None)
        };
        let mut entries = BTreeMap::new();
        // Exact host keys win over URL-style keys for the same host.
        let mut keys: Vec<&String> = auths.keys().collect();
        keys.sort_by_key(|k| (k.contains("://") || k.contains('/'), k.as_str()));
        for key in keys {
            let field = format!("auths.{key:?}");
            let entry = auths[key]
                .as_object()
                .ok_or_else(|| err(&field, "must be an object"))?;
            let host = normalise_host(key);
            if host.is_empty() {
                return Err(err(&field, "registry key has no host"));
            }
            let creds = parse_entry(&field, entry)?;
            entries.entry(host).or_insert(creds);
        }
        Ok(DockerConfig {
            entries,
            helpers,
            store,
        })
    }

    /// The credential helper for a registry host: its `credHelpers` entry, else `credsStore`.
    pub fn helper_for(&self, registry_host: &str) -> Option<&str> {
        let host = normalise_host(registry_host);
        let alt = match host.strip_suffix(":443") {
            Some(h) => h.to_string(),
            None => format!("{host}:443"),
        };
        self.helpers
            .get(&host)
            .or_else(|| self.helpers.get(&alt))
            .or(self.store.as_ref())
            .map(String::as_str)
    }

    /// Credentials for a registry host (`ghcr.io`, `localhost:5000`,
    /// `registry-1.docker.io`, …); `Anonymous` when there is no entry.
    pub fn credentials_for(&self, registry_host: &str) -> Credentials {
        let host = normalise_host(registry_host);
        if let Some(c) = self.entries.get(&host) {
            return c.clone();
        }
        // "host:443" and "host" are the same registry for https.
        let alt = match host.strip_suffix(":443") {
            Some(h) => h.to_string(),
            None => format!("{host}:443"),
        };
        self.entries
            .get(&alt)
            .cloned()
            .unwrap_or(Credentials::Anonymous)
    }

    /// Normalised hosts that have an entry.
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }
}

impl fmt::Debug for DockerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Credentials' Debug already redacts secrets.
        f.debug_struct("DockerConfig")
            .field("entries", &self.entries)
            .field("helpers", &self.helpers)
            .field("store", &self.store)
            .finish()
    }
}

fn parse_helpers(
    obj: &serde_json::Map<String, serde_json::Value>,
) -> Result<(BTreeMap<String, String>, Option<String>), DockerConfigError> {
    let name = |field: String, v: &serde_json::Value| -> Result<String, DockerConfigError> {
        let n = v.as_str().ok_or_else(|| err(&field, "must be a string"))?;
        if !super::credential_helper::valid_name(n) {
            return Err(err(
                &field,
                format!("{n:?} is not a credential helper name"),
            ));
        }
        Ok(n.to_string())
    };
    let mut helpers = BTreeMap::new();
    match obj.get("credHelpers") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(m)) => {
            for (host, v) in m {
                let field = format!("credHelpers.{host:?}");
                helpers.insert(normalise_host(host), name(field, v)?);
            }
        }
        Some(_) => return Err(err("credHelpers", "must be an object")),
    }
    let store = match obj.get("credsStore") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) if s.is_empty() => None,
        Some(v) => Some(name("credsStore".into(), v)?),
    };
    Ok((helpers, store))
}

fn str_field<'a>(
    field: &str,
    entry: &'a serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<Option<&'a str>, DockerConfigError> {
    match entry.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if s.is_empty() => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(err(format!("{field}.{name}"), "must be a string")),
    }
}

fn parse_entry(
    field: &str,
    entry: &serde_json::Map<String, serde_json::Value>,
) -> Result<Credentials, DockerConfigError> {
    let auth = str_field(field, entry, "auth")?;
    let username = str_field(field, entry, "username")?;
    let password = str_field(field, entry, "password")?;
    let identity = str_field(field, entry, "identitytoken")?;
    if let Some(tok) = identity {
        return Ok(Credentials::IdentityToken(SecretString::from(
            tok.to_string(),
        )));
    }
    if let Some(auth) = auth {
        let f = format!("{field}.auth");
        let cleaned: String = auth.chars().filter(|c| !c.is_whitespace()).collect();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&cleaned)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(&cleaned))
            .map_err(|_| err(&f, "not valid base64"))?;
        let decoded =
            String::from_utf8(decoded).map_err(|_| err(&f, "decoded value is not UTF-8"))?;
        let (user, pass) = decoded
            .split_once(':')
            .ok_or_else(|| err(&f, "decoded value is not \"username:password\""))?;
        if user.is_empty() {
            return Err(err(&f, "decoded username is empty"));
        }
        return Ok(Credentials::Basic {
            username: user.to_string(),
            password: SecretString::from(pass.to_string()),
        });
    }
    match (username, password) {
        (Some(u), Some(p)) => Ok(Credentials::Basic {
            username: u.to_string(),
            password: SecretString::from(p.to_string()),
        }),
        (Some(_), None) => Err(err(
            format!("{field}.password"),
            "missing (username is set)",
        )),
        (None, Some(_)) => Err(err(
            format!("{field}.username"),
            "missing (password is set)",
        )),
        (None, None) => Ok(Credentials::Anonymous),
    }
}

/// `https://index.docker.io/v1/` → `docker.io`; `HTTP://Host:5000/x` → `host:5000`.
fn normalise_host(key: &str) -> String {
    let k = key.trim();
    let lower = k.to_ascii_lowercase();
    let no_scheme = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .unwrap_or(&lower);
    let host = no_scheme.split('/').next().unwrap_or_default();
    if super::reference::is_docker_hub(host) {
        "docker.io".to_string()
    } else {
        host.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn basic(c: &Credentials) -> (String, String) {
        match c {
            Credentials::Basic { username, password } => {
                (username.clone(), password.expose_secret().to_string())
            }
            other => panic!("expected Basic, got {other:?}"),
        }
    }

    #[test]
    fn auth_username_password_identitytoken() {
        let doc = format!(
            r#"{{"auths":{{
                "ghcr.io":{{"auth":"{}"}},
                "quay.io":{{"username":"bob","password":"pw:with:colons"}},
                "myacr.azurecr.io":{{"auth":"{}","identitytoken":"refresh-tok"}},
                "empty.example.com":{{}}
            }}}}"#,
            b64("alice:s3cr3t-pass"),
            b64("00000000-0000-0000-0000-000000000000:")
        );
        let cfg = DockerConfig::parse(doc.as_bytes()).unwrap();
        assert_eq!(
            basic(&cfg.credentials_for("ghcr.io")),
            ("alice".into(), "s3cr3t-pass".into())
        );
        assert_eq!(
            basic(&cfg.credentials_for("quay.io")),
            ("bob".into(), "pw:with:colons".into())
        );
        match cfg.credentials_for("myacr.azurecr.io") {
            Credentials::IdentityToken(t) => assert_eq!(t.expose_secret(), "refresh-tok"),
            other => panic!("{other:?}"),
        }
        assert!(cfg.credentials_for("empty.example.com").is_anonymous());
        assert!(cfg.credentials_for("unknown.io").is_anonymous());
        let dbg = format!("{cfg:?}");
        assert!(
            !dbg.contains("s3cr3t-pass")
                && !dbg.contains("refresh-tok")
                && !dbg.contains("pw:with")
        );
        assert!(dbg.contains("alice"));
    }

    #[test]
    fn host_key_variants() {
        let doc = format!(
            r#"{{"auths":{{
                "https://index.docker.io/v1/":{{"auth":"{}"}},
                "http://localhost:5000/v1/":{{"auth":"{}"}},
                "https://Registry.Example.com":{{"auth":"{}"}},
                "registry.example.com":{{"auth":"{}"}}
            }}}}"#,
            b64("hub:a"),
            b64("local:b"),
            b64("url:c"),
            b64("exact:d"),
        );
        let cfg = DockerConfig::parse(doc.as_bytes()).unwrap();
        for host in ["docker.io", "registry-1.docker.io", "index.docker.io"] {
            assert_eq!(basic(&cfg.credentials_for(host)).0, "hub", "{host}");
        }
        assert_eq!(basic(&cfg.credentials_for("localhost:5000")).0, "local");
        assert!(cfg.credentials_for("localhost:5001").is_anonymous());
        assert!(cfg.credentials_for("localhost").is_anonymous());
        // exact key wins over URL-style key
        assert_eq!(
            basic(&cfg.credentials_for("registry.example.com")).0,
            "exact"
        );
        assert_eq!(
            basic(&cfg.credentials_for("registry.example.com:443")).0,
            "exact"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let e =
            DockerConfig::parse(br#"{"auths":{"ghcr.io":{"auth":"%%%not-base64"}}}"#).unwrap_err();
        assert_eq!(e.to_string(), r#"auths."ghcr.io".auth: not valid base64"#);
        let e = DockerConfig::parse(
            format!(
                r#"{{"auths":{{"ghcr.io":{{"auth":"{}"}}}}}}"#,
                b64("nocolon")
            )
            .as_bytes(),
        )
        .unwrap_err();
        assert_eq!(e.field, r#"auths."ghcr.io".auth"#);
        assert!(!e.to_string().contains("nocolon"));
        let e = DockerConfig::parse(br#"{}"#).unwrap_err();
        assert_eq!(e.to_string(), "auths: missing");
        let e = DockerConfig::parse(br#"{"auths":[]}"#).unwrap_err();
        assert_eq!(e.field, "auths");
        let e = DockerConfig::parse(br#"{"auths":{"x.io":"str"}}"#).unwrap_err();
        assert_eq!(e.field, r#"auths."x.io""#);
        let e = DockerConfig::parse(br#"{"auths":{"x.io":{"password":"topsecret"}}}"#).unwrap_err();
        assert_eq!(e.field, r#"auths."x.io".username"#);
        assert!(!e.to_string().contains("topsecret"));
        let e = DockerConfig::parse(br#"{"auths":{"x.io":{"username":"u","password":5}}}"#)
            .unwrap_err();
        assert_eq!(e.field, r#"auths."x.io".password"#);
        let e = DockerConfig::parse(br#"{"auths":{"x.io":{"auth":"c2VjcmV0"#).unwrap_err();
        assert_eq!(e.field, "dockerconfigjson");
        assert!(!e.to_string().contains("c2VjcmV0"));
        assert!(DockerConfig::parse(b"").is_err());
        assert!(DockerConfig::parse(b"[]").is_err());
    }

    #[test]
    fn cli_config_names_helpers_and_may_lack_auths() {
        let cfg = DockerConfig::parse_cli_config(
            br#"{"credsStore":"desktop","credHelpers":{"123.dkr.ecr.us-east-1.amazonaws.com":"ecr-login"},"psFormat":"x"}"#,
        )
        .unwrap();
        assert_eq!(
            cfg.helper_for("123.dkr.ecr.us-east-1.amazonaws.com"),
            Some("ecr-login")
        );
        assert_eq!(cfg.helper_for("ghcr.io"), Some("desktop"));
        assert!(cfg.credentials_for("ghcr.io").is_anonymous());
        // A Secret's document never names a program to run.
        let secret = DockerConfig::parse(br#"{"auths":{},"credsStore":"desktop"}"#).unwrap();
        assert_eq!(secret.helper_for("ghcr.io"), None);
        assert!(DockerConfig::parse_cli_config(b"{}").is_ok());
        let e = DockerConfig::parse_cli_config(br#"{"credsStore":"../../bin/sh"}"#).unwrap_err();
        assert_eq!(e.field, "credsStore");
        let e = DockerConfig::parse_cli_config(br#"{"credHelpers":{"x.io":5}}"#).unwrap_err();
        assert_eq!(e.field, r#"credHelpers."x.io""#);
    }
}
