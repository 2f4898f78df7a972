//! From a `RegistryProfile` spec plus the Secret / ConfigMap it references to a
//! [`RegistryClientConfig`]. Pure: the controller reads the objects and hands
//! them in; errors are [`BrokenProfile`]s whose message names the field.
//!
//! Secret values never appear in messages: only object names, key names and
//! what is wrong.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use secrecy::SecretString;

use crate::crd::{RegistryProfileSpec, SecretReference};
use crate::reason::Reason;
use crate::registry::{
    Credentials, DockerConfig, RateLimit, RegistryClientConfig, RequestCounters,
};

/// Secret type of a docker config.
pub const DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
/// Secret type of username/password.
pub const BASIC_AUTH: &str = "kubernetes.io/basic-auth";

/// The object `spec.caBundle` points at, as read from the API (`None`: not found).
#[derive(Clone, Copy, Debug)]
pub enum CaObject<'a> {
    /// `spec.caBundle.configMapRef`
    ConfigMap(Option<&'a ConfigMap>),
    /// `spec.caBundle.secretRef`
    Secret(Option<&'a Secret>),
}

/// Objects referenced by a profile, as read from the API.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProfileObjects<'a> {
    /// The credentials Secret (`None`: not found, or no `credentialsSecretRef`).
    pub credentials: Option<&'a Secret>,
    /// The CA bundle object (`None` when there is no `caBundle`).
    pub ca: Option<CaObject<'a>>,
}

/// A profile that exists but cannot be used (bad spec, Secret or CA bundle, no profile for the
/// registry): the `Ready=False` reason of the RegistryProfile, and the Unknown reason of the
/// images it should have read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenProfile {
    /// Why.
    pub reason: Reason,
    /// Detail naming the field (never a secret value).
    pub message: String,
}

fn broken(reason: Reason, message: impl Into<String>) -> BrokenProfile {
    BrokenProfile {
        reason,
        message: message.into(),
    }
}

/// Whether a broken profile needs a spec change (kstatus `Stalled=True`).
pub fn is_invalid_spec(b: &BrokenProfile) -> bool {
    b.reason == Reason::InvalidSpec
}

/// `host[:port]` of `spec.registryUrl` as images name it (`ghcr.io`, `localhost:5000`).
pub fn registry_host(spec: &RegistryProfileSpec) -> Result<String, BrokenProfile> {
    let url = url::Url::parse(spec.registry_url.trim()).map_err(|e| {
        broken(
            Reason::InvalidSpec,
            format!("spec.registryUrl: not a valid URL: {e}"),
        )
    })?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| broken(Reason::InvalidSpec, "spec.registryUrl: missing host"))?;
    Ok(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    })
}

/// `spec.probe.interval` as a duration (at least 10 s).
pub fn probe_interval(spec: &RegistryProfileSpec) -> Result<Duration, BrokenProfile> {
    let d: kube::core::Duration = spec.probe.interval.parse().map_err(|e| {
        broken(
            Reason::InvalidSpec,
            format!(
                "spec.probe.interval: {:?} is not a duration: {e}",
                spec.probe.interval
            ),
        )
    })?;
    let d: Duration = d.into();
    if d < Duration::from_secs(10) {
        return Err(broken(
            Reason::InvalidSpec,
            "spec.probe.interval: must be at least 10s",
        ));
    }
    Ok(d)
}

fn secret_name(r: &SecretReference) -> String {
    format!("{}/{}", r.namespace, r.name)
}

fn data_key<'a>(secret: &'a Secret, key: &str) -> Option<&'a [u8]> {
    secret
        .data
        .as_ref()
        .and_then(|d: &BTreeMap<String, ByteString>| d.get(key))
        .map(|b| b.0.as_slice())
}

/// Credentials from a Secret of type `kubernetes.io/dockerconfigjson`
/// (`.dockerconfigjson`, the entry for `host`) or `kubernetes.io/basic-auth`
/// (`username` / `password`). `field` names the reference in messages.
pub fn credentials_from_secret(
    secret: &Secret,
    host: &str,
    field: &str,
) -> Result<Credentials, BrokenProfile> {
    let ns = secret.metadata.namespace.as_deref().unwrap_or_default();
    let name = secret.metadata.name.as_deref().unwrap_or_default();
    let what = format!("{field}: Secret {ns}/{name}");
    match secret.type_.as_deref() {
        Some(DOCKER_CONFIG_JSON) => {
            let raw = data_key(secret, ".dockerconfigjson").ok_or_else(|| {
                broken(
                    Reason::CredentialsInvalid,
                    format!("{what} has no key .dockerconfigjson"),
                )
            })?;
            let cfg = DockerConfig::parse(raw).map_err(|e| {
                broken(
                    Reason::CredentialsInvalid,
                    format!("{what} key .dockerconfigjson: {e}"),
                )
            })?;
            Ok(cfg.credentials_for(host))
        }
        Some(BASIC_AUTH) => {
            let text = |key: &str| -> Result<String, BrokenProfile> {
                let raw = data_key(secret, key).ok_or_else(|| {
                    broken(
                        Reason::CredentialsInvalid,
                        format!("{what} has no key {key}"),
                    )
                })?;
                let s = String::from_utf8(raw.to_vec()).map_err(|_| {
                    broken(
                        Reason::CredentialsInvalid,
                        format!("{what} key {key} is not UTF-8"),
                    )
                })?;
                if s.is_empty() {
                    return Err(broken(
                        Reason::CredentialsInvalid,
                        format!("{what} key {key} is empty"),
                    ));
                }
                Ok(s)
            };
            let username = text("username")?;
            let password = text("password")?;
            Ok(Credentials::Basic {
                username,
                password: SecretString::from(password),
            })
        }
        other => Err(broken(
            Reason::CredentialsInvalid,
            format!(
                "{what} has type {:?}; expected {DOCKER_CONFIG_JSON} or {BASIC_AUTH}",
                other.unwrap_or("Opaque")
            ),
        )),
    }
}

fn ca_pem(
    spec: &RegistryProfileSpec,
    ca: Option<CaObject<'_>>,
) -> Result<Option<Vec<u8>>, BrokenProfile> {
    let Some(bundle) = &spec.ca_bundle else {
        return Ok(None);
    };
    let (field, r) = match (&bundle.config_map_ref, &bundle.secret_ref) {
        (Some(r), None) => ("spec.caBundle.configMapRef", r),
        (None, Some(r)) => ("spec.caBundle.secretRef", r),
        _ => {
            return Err(broken(
                Reason::InvalidSpec,
                "spec.caBundle: set exactly one of configMapRef or secretRef",
            ));
        }
    };
    let kind = if bundle.config_map_ref.is_some() {
        "ConfigMap"
    } else {
        "Secret"
    };
    let not_found = || {
        broken(
            Reason::CaBundleNotFound,
            format!("{field}: {kind} {}/{} not found", r.namespace, r.name),
        )
    };
    let no_key = || {
        broken(
            Reason::CaBundleNotFound,
            format!(
                "{field}: {kind} {}/{} has no key {}",
                r.namespace, r.name, r.key
            ),
        )
    };
    let pem: Vec<u8> = match ca {
        None | Some(CaObject::ConfigMap(None)) | Some(CaObject::Secret(None)) => {
            return Err(not_found());
        }
        Some(CaObject::ConfigMap(Some(cm))) => {
            if let Some(s) = cm.data.as_ref().and_then(|d| d.get(&r.key)) {
                s.clone().into_bytes()
            } else if let Some(b) = cm.binary_data.as_ref().and_then(|d| d.get(&r.key)) {
                b.0.clone()
            } else {
                return Err(no_key());
            }
        }
        Some(CaObject::Secret(Some(s))) => data_key(s, &r.key).ok_or_else(no_key)?.to_vec(),
    };
    validate_pem(&pem).map_err(|m| {
        broken(
            Reason::CaBundleInvalid,
            format!(
                "{field}: {kind} {}/{} key {}: {m}",
                r.namespace, r.name, r.key
            ),
        )
    })?;
    Ok(Some(pem))
}

fn validate_pem(pem: &[u8]) -> Result<(), String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut n = 0;
    for c in CertificateDer::pem_slice_iter(pem) {
        c.map_err(|e| format!("invalid PEM: {e}"))?;
        n += 1;
    }
    if n == 0 {
        return Err("contains no PEM CERTIFICATE block".into());
    }
    Ok(())
}

/// The client configuration of a profile. `counters` are shared by every
/// client so `/metrics` reads one set.
pub fn client_config(
    spec: &RegistryProfileSpec,
    objects: ProfileObjects<'_>,
    counters: Arc<RequestCounters>,
) -> Result<RegistryClientConfig, BrokenProfile> {
    let host = registry_host(spec)?;
    let mut cfg =
        RegistryClientConfig::new(&spec.registry_url, spec.plain_http).map_err(|e| match e {
            crate::registry::RegistryError::Config { field, reason } => {
                broken(Reason::InvalidSpec, format!("spec.{field}: {reason}"))
            }
            other => broken(Reason::InvalidSpec, format!("spec.registryUrl: {other}")),
        })?;
    cfg.counters = counters;
    cfg.timeout = Duration::from_secs(u64::from(spec.timeout_seconds.clamp(1, 300)));
    cfg.insecure_skip_tls_verify = spec.insecure_skip_tls_verify;
    if let Some(rl) = &spec.rate_limit {
        if rl.requests_per_second == 0 {
            return Err(broken(
                Reason::InvalidSpec,
                "spec.rateLimit.requestsPerSecond: must be at least 1",
            ));
        }
        cfg.rate_limit = Some(RateLimit {
            requests_per_second: rl.requests_per_second,
            burst: rl.burst.max(1),
        });
    }
    cfg.ca_bundle_pem = ca_pem(spec, objects.ca)?;
    if let Some(r) = &spec.credentials_secret_ref {
        let field = "spec.credentialsSecretRef";
        let secret = objects.credentials.ok_or_else(|| {
            broken(
                Reason::CredentialsNotFound,
                format!("{field}: Secret {} not found", secret_name(r)),
            )
        })?;
        cfg.credentials = credentials_from_secret(secret, &host, field)?;
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{CaBundleRef, KeyReference, RateLimitSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn spec(url: &str) -> RegistryProfileSpec {
        serde_json::from_value(serde_json::json!({"registryUrl": url})).expect("spec")
    }

    fn secret(type_: &str, data: &[(&str, &[u8])]) -> Secret {
        Secret {
            metadata: ObjectMeta {
                namespace: Some("ns".into()),
                name: Some("creds".into()),
                ..Default::default()
            },
            type_: Some(type_.into()),
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    fn with_secret(mut s: RegistryProfileSpec) -> RegistryProfileSpec {
        s.credentials_secret_ref = Some(SecretReference {
            namespace: "ns".into(),
            name: "creds".into(),
        });
        s
    }

    fn pem() -> String {
        rcgen::generate_simple_self_signed(vec!["registry.test".to_string()])
            .expect("self-signed certificate")
            .cert
            .pem()
    }

    fn with_credentials(
        s: &RegistryProfileSpec,
        sec: &Secret,
    ) -> Result<RegistryClientConfig, BrokenProfile> {
        client_config(
            s,
            ProfileObjects {
                credentials: Some(sec),
                ca: None,
            },
            Arc::default(),
        )
    }

    #[test]
    fn plain_profile_fills_url_timeout_rate_limit() {
        let mut s = spec("http://127.0.0.1:5000");
        s.plain_http = true;
        s.timeout_seconds = 7;
        s.rate_limit = Some(RateLimitSpec {
            requests_per_second: 5,
            burst: 10,
        });
        let counters = Arc::new(RequestCounters::default());
        let cfg = client_config(&s, ProfileObjects::default(), counters.clone()).expect("config");
        assert_eq!(cfg.registry_url.as_str(), "http://127.0.0.1:5000/");
        assert_eq!(cfg.timeout, Duration::from_secs(7));
        assert_eq!(
            cfg.rate_limit.map(|r| (r.requests_per_second, r.burst)),
            Some((5, 10))
        );
        assert!(Arc::ptr_eq(&cfg.counters, &counters));
        assert!(matches!(cfg.credentials, Credentials::Anonymous));
        assert_eq!(registry_host(&s).expect("host"), "127.0.0.1:5000");
    }

    #[test]
    fn missing_secret_names_the_field() {
        let s = with_secret(spec("https://ghcr.io"));
        let err = client_config(&s, ProfileObjects::default(), Arc::default()).expect_err("broken");
        assert_eq!(err.reason, Reason::CredentialsNotFound);
        assert_eq!(
            err.message,
            "spec.credentialsSecretRef: Secret ns/creds not found"
        );
        assert!(!is_invalid_spec(&err));
    }

    #[test]
    fn dockerconfigjson_picks_the_host_entry() {
        let s = with_secret(spec("https://ghcr.io"));
        let doc = br#"{"auths":{"ghcr.io":{"username":"bob","password":"hunter2"}}}"#;
        let sec = secret(DOCKER_CONFIG_JSON, &[(".dockerconfigjson", doc)]);
        let cfg = with_credentials(&s, &sec).expect("config");
        match &cfg.credentials {
            Credentials::Basic { username, .. } => assert_eq!(username, "bob"),
            other => panic!("expected Basic, got {other:?}"),
        }
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }

    #[test]
    fn basic_auth_secret_and_its_errors() {
        let s = with_secret(spec("https://r.example"));
        let ok = secret(
            BASIC_AUTH,
            &[("username", b"u"), ("password", b"s3cret-value")],
        );
        let cfg = with_credentials(&s, &ok).expect("config");
        assert!(matches!(cfg.credentials, Credentials::Basic { .. }));

        let no_pw = secret(BASIC_AUTH, &[("username", b"u")]);
        let err = credentials_from_secret(&no_pw, "r.example", "spec.credentialsSecretRef")
            .expect_err("missing key");
        assert_eq!(err.reason, Reason::CredentialsInvalid);
        assert_eq!(
            err.message,
            "spec.credentialsSecretRef: Secret ns/creds has no key password"
        );

        let opaque = secret("Opaque", &[("password", b"s3cret-value")]);
        let err = credentials_from_secret(&opaque, "r.example", "spec.credentialsSecretRef")
            .expect_err("wrong type");
        assert_eq!(err.reason, Reason::CredentialsInvalid);
        assert!(
            err.message.contains("has type \"Opaque\""),
            "{}",
            err.message
        );
        assert!(!err.message.contains("s3cret"));

        let bad_json = secret(
            DOCKER_CONFIG_JSON,
            &[(".dockerconfigjson", b"{\"auths\": s3cret")],
        );
        let err = credentials_from_secret(&bad_json, "r.example", "spec.credentialsSecretRef")
            .expect_err("bad json");
        assert_eq!(err.reason, Reason::CredentialsInvalid);
        assert!(!err.message.contains("s3cret"), "{}", err.message);
    }

    #[test]
    fn ca_bundle_errors_name_the_field() {
        let mut s = spec("https://r.example");
        s.ca_bundle = Some(CaBundleRef {
            config_map_ref: Some(KeyReference {
                namespace: "ns".into(),
                name: "ca".into(),
                key: "ca.crt".into(),
            }),
            secret_ref: None,
        });
        let with_ca = |ca: CaObject<'_>| {
            client_config(
                &s,
                ProfileObjects {
                    credentials: None,
                    ca: Some(ca),
                },
                Arc::default(),
            )
        };
        let err = with_ca(CaObject::ConfigMap(None)).expect_err("missing");
        assert_eq!(err.reason, Reason::CaBundleNotFound);
        assert_eq!(
            err.message,
            "spec.caBundle.configMapRef: ConfigMap ns/ca not found"
        );

        let cm = ConfigMap {
            data: Some([("ca.crt".to_string(), "not pem".to_string())].into()),
            ..Default::default()
        };
        let err = with_ca(CaObject::ConfigMap(Some(&cm))).expect_err("bad pem");
        assert_eq!(err.reason, Reason::CaBundleInvalid);
        assert!(
            err.message
                .starts_with("spec.caBundle.configMapRef: ConfigMap ns/ca key ca.crt:")
        );

        let cm = ConfigMap {
            data: Some([("ca.crt".to_string(), pem())].into()),
            ..Default::default()
        };
        let cfg = with_ca(CaObject::ConfigMap(Some(&cm))).expect("pem block accepted");
        assert!(cfg.ca_bundle_pem.is_some());
    }

    #[test]
    fn invalid_url_and_interval_are_invalid_spec() {
        let s = spec("http://r.example");
        let err = client_config(&s, ProfileObjects::default(), Arc::default()).expect_err("http");
        assert!(is_invalid_spec(&err));
        assert!(
            err.message.starts_with("spec.registryUrl"),
            "{}",
            err.message
        );
        let mut s = spec("https://r.example");
        s.probe.interval = "5s".into();
        assert!(is_invalid_spec(&probe_interval(&s).expect_err("too short")));
        s.probe.interval = "2m".into();
        assert_eq!(probe_interval(&s).expect("ok"), Duration::from_secs(120));
    }
}
