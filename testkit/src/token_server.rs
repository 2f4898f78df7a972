//! A Docker-registry token issuer for distribution's `auth: token`.
//!
//! Distribution 2.8 verifies the JWT's `x5c` chain against `rootcertbundle`,
//! then checks `iss`, `aud` (a string in 2.8), `exp`/`nbf` and `access`.
//! Tokens are ES256 JWTs signed with a P-256 key whose self-signed
//! certificate is both the `x5c` entry and the root bundle.

use super::{Result, ServerHandle, parse_basic};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Token lifetime in seconds (`expires_in`).
pub const TOKEN_TTL_SECS: i64 = 300;

/// A user of the token server. `actions` are granted on every repository
/// (e.g. `["pull"]` for read-only, `["pull","push","delete"]` for a writer).
#[derive(Clone)]
pub struct TokenUser {
    pub username: String,
    pub password: String,
    pub actions: Vec<String>,
}

impl TokenUser {
    pub fn new(username: &str, password: &str, actions: &[&str]) -> Self {
        TokenUser {
            username: username.to_string(),
            password: password.to_string(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        }
    }
}

impl std::fmt::Debug for TokenUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenUser")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("actions", &self.actions)
            .finish()
    }
}

#[derive(Clone, Debug)]
pub struct TokenServerOptions {
    pub users: Vec<TokenUser>,
    /// Anonymous requests get `pull` instead of no access.
    pub anonymous_pull: bool,
    /// `aud` claim / distribution's `auth.token.service`.
    pub service: String,
    /// `iss` claim / distribution's `auth.token.issuer`.
    pub issuer: String,
}

impl Default for TokenServerOptions {
    fn default() -> Self {
        TokenServerOptions {
            users: Vec::new(),
            anonymous_pull: false,
            service: "refwarden-test-registry".to_string(),
            issuer: "refwarden-test-token-issuer".to_string(),
        }
    }
}

/// Cheap to clone; the server stops when the last clone is dropped.
#[derive(Clone)]
pub struct TokenServer {
    inner: Arc<Inner>,
}

struct Inner {
    // Field order: the server stops before the tempdir goes away.
    server: ServerHandle,
    signer: Arc<Signer>,
    _dir: tempfile::TempDir,
    cert_path: PathBuf,
}

struct Signer {
    key: jsonwebtoken::EncodingKey,
    x5c: String,
    cert_pem: String,
    opts: TokenServerOptions,
    requests: AtomicU64,
}

#[derive(Serialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
    nbf: i64,
    iat: i64,
    jti: String,
    access: Vec<Access>,
}

#[derive(Serialize, Clone, Debug)]
struct Access {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    actions: Vec<String>,
}

impl TokenServer {
    /// Starts a token server with these users and default service/issuer.
    pub fn start(users: Vec<TokenUser>, anonymous_pull: bool) -> Result<TokenServer> {
        Self::start_with(TokenServerOptions {
            users,
            anonymous_pull,
            ..TokenServerOptions::default()
        })
    }

    pub fn start_with(opts: TokenServerOptions) -> Result<TokenServer> {
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = rcgen::CertificateParams::new(vec!["refwarden-test-token-issuer".into()])?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "refwarden test token issuer");
        let cert = params.self_signed(&key_pair)?;
        let cert_pem = cert.pem();
        let x5c = base64::engine::general_purpose::STANDARD.encode(cert.der().as_ref());
        let key = jsonwebtoken::EncodingKey::from_ec_der(&key_pair.serialize_der());

        let dir = tempfile::Builder::new()
            .prefix("refwarden-token-")
            .tempdir()?;
        let cert_path = dir.path().join("root.pem");
        std::fs::write(&cert_path, &cert_pem)?;

        let signer = Arc::new(Signer {
            key,
            x5c,
            cert_pem,
            opts,
            requests: AtomicU64::new(0),
        });
        let router = axum::Router::new()
            .route("/token", get(token_handler))
            .with_state(signer.clone());
        let server = ServerHandle::spawn("token-server", router)?;
        Ok(TokenServer {
            inner: Arc::new(Inner {
                server,
                signer,
                _dir: dir,
                cert_path,
            }),
        })
    }

    /// `http://127.0.0.1:PORT/token`
    pub fn realm(&self) -> String {
        format!("{}/token", self.inner.server.url())
    }

    pub fn url(&self) -> String {
        self.inner.server.url()
    }

    pub fn service(&self) -> &str {
        &self.inner.signer.opts.service
    }

    pub fn issuer(&self) -> &str {
        &self.inner.signer.opts.issuer
    }

    /// Path of the PEM certificate for distribution's `rootcertbundle`.
    pub fn root_cert_path(&self) -> &Path {
        &self.inner.cert_path
    }

    pub fn root_cert_pem(&self) -> &str {
        &self.inner.signer.cert_pem
    }

    /// Number of `/token` requests served (any outcome).
    pub fn requests(&self) -> u64 {
        self.inner.signer.requests.load(Ordering::SeqCst)
    }

    /// Mints a token for `user` on one repository with exactly `actions`,
    /// without HTTP and without checking a password (for seeding).
    pub fn mint(&self, user: &str, repository: &str, actions: &[&str]) -> Result<String> {
        self.mint_scopes(user, &[(repository, actions)], TOKEN_TTL_SECS)
    }

    /// Mints a token for several repositories with a given lifetime
    /// (negative `ttl_secs` gives an already expired token).
    pub fn mint_scopes(
        &self,
        user: &str,
        scopes: &[(&str, &[&str])],
        ttl_secs: i64,
    ) -> Result<String> {
        let access = scopes
            .iter()
            .map(|(repo, actions)| Access {
                kind: "repository".into(),
                name: repo.to_string(),
                actions: actions.iter().map(|a| a.to_string()).collect(),
            })
            .collect();
        self.inner.signer.sign(user, access, ttl_secs)
    }
}

impl Signer {
    fn sign(&self, user: &str, access: Vec<Access>, ttl_secs: i64) -> Result<String> {
        let now = jiff::Timestamp::now().as_second();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.x5c = Some(vec![self.x5c.clone()]);
        let claims = Claims {
            iss: self.opts.issuer.clone(),
            sub: user.to_string(),
            aud: self.opts.service.clone(),
            exp: now + ttl_secs,
            nbf: now - 5,
            iat: now,
            jti: hex::encode(rand::random::<[u8; 16]>()),
            access,
        };
        Ok(jsonwebtoken::encode(&header, &claims, &self.key)?)
    }
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"errors": [{"code": code, "message": message}]});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Splits `type:name:actions`; the name may itself contain `:` (host:port).
fn parse_scope(scope: &str) -> Option<(String, String, Vec<String>)> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let actions = actions
        .split(',')
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect();
    Some((kind.to_string(), name.to_string(), actions))
}

async fn token_handler(
    State(signer): State<Arc<Signer>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    signer.requests.fetch_add(1, Ordering::SeqCst);
    let mut service = None;
    let mut scopes = Vec::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "service" => service = Some(v.into_owned()),
            // Several scopes may come as repeated params or space-separated.
            "scope" => scopes.extend(v.split(' ').map(str::to_string)),
            _ => {}
        }
    }
    if let Some(s) = &service
        && s != &signer.opts.service
    {
        return json_error(StatusCode::BAD_REQUEST, "DENIED", "unknown service");
    }

    let (subject, granted): (String, Vec<String>) = match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(value) => {
            let Some((user, pass)) = parse_basic(value) else {
                return json_error(
                    StatusCode::UNAUTHORIZED,
                    "UNAUTHORIZED",
                    "malformed basic credentials",
                );
            };
            match signer
                .opts
                .users
                .iter()
                .find(|u| u.username == user && u.password == pass)
            {
                Some(u) => (u.username.clone(), u.actions.clone()),
                None => {
                    return json_error(
                        StatusCode::UNAUTHORIZED,
                        "UNAUTHORIZED",
                        "invalid username or password",
                    );
                }
            }
        }
        None if signer.opts.anonymous_pull => (String::new(), vec!["pull".to_string()]),
        None => (String::new(), Vec::new()),
    };

    let access: Vec<Access> = scopes
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| parse_scope(s))
        .filter(|(kind, _, _)| kind == "repository")
        .map(|(kind, name, requested)| Access {
            kind,
            name,
            actions: requested
                .into_iter()
                .filter(|a| granted.iter().any(|g| g == a || g == "*"))
                .collect(),
        })
        .collect();

    let token = match signer.sign(&subject, access, TOKEN_TTL_SECS) {
        Ok(t) => t,
        Err(e) => {
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UNKNOWN",
                &format!("signing failed: {e}"),
            );
        }
    };
    let body = serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": TOKEN_TTL_SECS,
        "issued_at": jiff::Timestamp::now().to_string(),
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
