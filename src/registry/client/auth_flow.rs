//! Authorization of a request: the header sent up front, the answer to a 401 challenge and
//! the Docker token flow.

use std::fmt;

use http::HeaderValue;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::exchange::{BodyError, chain, read_limited};
use super::{RegistryClient, RegistryResponse};
use crate::registry::auth::{self, Challenge, Credentials, TokenKey, WwwAuthenticate};
use crate::registry::egress;
use crate::registry::error::RegistryError;
use crate::registry::metrics::Endpoint;

/// `client_id` sent to token endpoints.
pub(super) const CLIENT_ID: &str = "refwarden";
/// What kind of Authorization an attempt carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AuthKind {
    None,
    Basic,
    Bearer,
}

#[derive(Clone)]
pub(super) struct AuthHeader {
    pub(super) kind: AuthKind,
    pub(super) value: SecretString,
}

impl fmt::Debug for AuthHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthHeader({:?}, <redacted>)", self.kind)
    }
}

impl RegistryClient {
    pub(super) fn preemptive_auth(&self, scope: Option<&str>) -> Option<AuthHeader> {
        let challenge = self.inner.challenge.lock().clone();
        match challenge? {
            Challenge::Bearer { realm, service, .. } => {
                let key: TokenKey = (
                    realm,
                    service.unwrap_or_default(),
                    scope.unwrap_or_default().to_string(),
                );
                self.inner.tokens.get(&key).map(bearer_header)
            }
            Challenge::Basic { .. } => self.basic_header(),
            Challenge::Other(_) => None,
        }
    }

    /// The Basic `Authorization` of the configured credentials, when there are any.
    fn basic_header(&self) -> Option<AuthHeader> {
        self.inner
            .config
            .credentials
            .basic_header()
            .map(|value| AuthHeader {
                kind: AuthKind::Basic,
                value,
            })
    }

    /// Handles a 401: remembers the challenge and returns the Authorization to
    /// retry with, or `None` when a retry cannot help.
    pub(super) async fn answer_challenge(
        &self,
        resp: &RegistryResponse,
        scope: Option<&str>,
        sent: AuthKind,
    ) -> Result<Option<AuthHeader>, RegistryError> {
        let mut challenges = Vec::new();
        for value in resp.headers.get_all(WWW_AUTHENTICATE) {
            if value.len() > egress::MAX_PARSED_HEADER {
                tracing::debug!(registry = %self.inner.registry, bytes = value.len(), "ignoring an oversized WWW-Authenticate");
                continue;
            }
            match value
                .to_str()
                .map_err(|_| "not ASCII".to_string())
                .and_then(WwwAuthenticate::parse)
            {
                Ok(c) => challenges.extend(c),
                Err(e) => {
                    tracing::debug!(registry = %self.inner.registry, error = %e, "ignoring malformed WWW-Authenticate")
                }
            }
        }
        let Some(challenge) = auth::preferred(&challenges) else {
            return Ok(None);
        };
        *self.inner.challenge.lock() = Some(challenge.clone());
        match challenge {
            Challenge::Bearer {
                realm,
                service,
                scope: challenge_scope,
            } => {
                let service = service.unwrap_or_default();
                let request_key: TokenKey = (
                    realm.clone(),
                    service.clone(),
                    scope.unwrap_or_default().to_string(),
                );
                if sent == AuthKind::Bearer {
                    // The cached token was rejected (expired/revoked/insufficient).
                    self.inner.tokens.remove(&request_key);
                }
                let scopes = auth::join_scopes(challenge_scope.as_deref().into_iter().chain(scope));
                let issued = self.fetch_token(&realm, &service, &scopes).await?;
                let full_key: TokenKey = (realm, service, scopes.join(" "));
                self.inner
                    .tokens
                    .insert(full_key, issued.token.clone(), issued.lifetime);
                self.inner
                    .tokens
                    .insert(request_key, issued.token.clone(), issued.lifetime);
                Ok(Some(bearer_header(issued.token)))
            }
            Challenge::Basic { .. } => {
                if sent == AuthKind::Basic {
                    return Ok(None);
                }
                Ok(self.basic_header())
            }
            Challenge::Other(_) => Ok(None),
        }
    }

    pub(super) async fn fetch_token(
        &self,
        realm: &str,
        service: &str,
        scopes: &[String],
    ) -> Result<auth::IssuedToken, RegistryError> {
        let auth_err = |reason: String| RegistryError::Auth {
            registry: self.inner.registry.clone(),
            reason,
        };
        let mut url =
            Url::parse(realm).map_err(|_| auth_err("token realm is not a valid URL".into()))?;
        egress::token_realm(&self.inner.config.registry_url, &url)
            .map_err(|reason| auth_err(reason.to_string()))?;
        let creds = &self.inner.config.credentials;
        let request = match creds {
            Credentials::IdentityToken(refresh) => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token");
                form.append_pair("refresh_token", refresh.expose_secret());
                form.append_pair("client_id", CLIENT_ID);
                if !service.is_empty() {
                    form.append_pair("service", service);
                }
                if !scopes.is_empty() {
                    form.append_pair("scope", &scopes.join(" "));
                }
                self.inner
                    .http
                    .post(url.clone())
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(form.finish())
            }
            Credentials::Basic { .. } | Credentials::Anonymous => {
                {
                    let mut pairs = url.query_pairs_mut();
                    if !service.is_empty() {
                        pairs.append_pair("service", service);
                    }
                    for s in scopes {
                        pairs.append_pair("scope", s);
                    }
                }
                let mut rb = self.inner.http.get(url.clone());
                if let Some(h) = creds.basic_header() {
                    let mut v = HeaderValue::from_str(h.expose_secret()).map_err(|_| {
                        auth_err("credentials contain characters not allowed in a header".into())
                    })?;
                    v.set_sensitive(true);
                    rb = rb.header(AUTHORIZATION, v);
                }
                rb
            }
        };
        if let Some(l) = &self.inner.limiter {
            l.until_ready().await;
        }
        let counters = &self.inner.config.counters;
        let mut resp = match request.header(ACCEPT, "application/json").send().await {
            Ok(r) => r,
            Err(e) => {
                counters.record(&self.inner.registry, Endpoint::Token, None);
                let what = if e.is_timeout() {
                    "timed out"
                } else {
                    "unreachable"
                };
                return Err(auth_err(format!("token endpoint {what}: {}", chain(&e))));
            }
        };
        let status = resp.status();
        counters.record(&self.inner.registry, Endpoint::Token, Some(status.as_u16()));
        tracing::debug!(registry = %self.inner.registry, status = status.as_u16(), endpoint = "token", "token request");
        if !status.is_success() {
            return Err(auth_err(format!(
                "token endpoint answered HTTP {}",
                status.as_u16()
            )));
        }
        let limit = egress::MAX_TOKEN_RESPONSE.min(self.inner.config.max_body_bytes);
        let body = read_limited(&mut resp, limit).await.map_err(|e| match e {
            BodyError::TooLarge => auth_err(format!("token response exceeds {limit} bytes")),
            BodyError::Transport(e) => {
                auth_err(format!("reading token response failed: {}", chain(&e)))
            }
        })?;
        let issued = auth::parse_token_response(&body).map_err(auth_err)?;
        if issued.token.expose_secret().len() > egress::MAX_TOKEN_LEN {
            return Err(auth_err(format!(
                "the token endpoint issued a token longer than {} bytes: refused",
                egress::MAX_TOKEN_LEN
            )));
        }
        Ok(issued)
    }
}

pub(super) fn bearer_header(token: SecretString) -> AuthHeader {
    AuthHeader {
        kind: AuthKind::Bearer,
        value: SecretString::from(format!("Bearer {}", token.expose_secret())),
    }
}
