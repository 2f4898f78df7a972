//! One request to a registry ([`RegistryRequest`]) and the token scope it needs ([`Scope`]).

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::registry::metrics::Endpoint;

/// A token scope: `repository:<repo>:<actions>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Scope {
    pub repository: String,
    pub actions: Vec<String>,
}

impl Scope {
    /// A scope with arbitrary actions (e.g. `&["delete"]`).
    pub fn new(repository: impl Into<String>, actions: &[&str]) -> Self {
        Scope {
            repository: repository.into(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        }
    }

    pub fn pull(repository: impl Into<String>) -> Self {
        Scope {
            repository: repository.into(),
            actions: vec!["pull".into()],
        }
    }

    pub fn push_pull(repository: impl Into<String>) -> Self {
        Scope {
            repository: repository.into(),
            actions: vec!["pull".into(), "push".into()],
        }
    }

    /// `repository:<repo>:pull,push`
    pub fn to_scope_string(&self) -> String {
        format!("repository:{}:{}", self.repository, self.actions.join(","))
    }
}

/// One request to the registry.
#[derive(Clone, Debug)]
pub struct RegistryRequest {
    pub method: Method,
    /// Starts with `/v2/`, or an absolute URL on the same registry (Location/Link follow-ups).
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    pub scope: Option<Scope>,
    /// More scopes the token must cover (e.g. `pull` on the source of a cross-repository mount).
    pub extra_scopes: Vec<Scope>,
    pub endpoint: Endpoint,
    /// Read (and bound) the response body. `false` for HEAD.
    pub read_body: bool,
}

impl RegistryRequest {
    pub fn new(method: Method, path: impl Into<String>, endpoint: Endpoint) -> Self {
        let read_body = method != Method::HEAD;
        RegistryRequest {
            method,
            path: path.into(),
            query: Vec::new(),
            headers: HeaderMap::new(),
            body: None,
            scope: None,
            extra_scopes: Vec::new(),
            endpoint,
            read_body,
        }
    }
    pub fn get(path: impl Into<String>, endpoint: Endpoint) -> Self {
        Self::new(Method::GET, path, endpoint)
    }
    pub fn head(path: impl Into<String>, endpoint: Endpoint) -> Self {
        Self::new(Method::HEAD, path, endpoint)
    }
    pub fn put(path: impl Into<String>, endpoint: Endpoint) -> Self {
        Self::new(Method::PUT, path, endpoint)
    }
    pub fn post(path: impl Into<String>, endpoint: Endpoint) -> Self {
        Self::new(Method::POST, path, endpoint)
    }
    pub fn delete(path: impl Into<String>, endpoint: Endpoint) -> Self {
        Self::new(Method::DELETE, path, endpoint)
    }
    pub fn options(path: impl Into<String>, endpoint: Endpoint) -> Self {
        Self::new(Method::OPTIONS, path, endpoint)
    }

    /// Sets `Accept`.
    pub fn accept(self, v: &str) -> Self {
        self.header(ACCEPT.as_str(), v)
    }

    /// Sets a header. An invalid name or value is dropped with a warning
    /// (names/values here come from code or from registry responses).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => {
                self.headers.insert(n, v);
            }
            _ => tracing::warn!(header = name, "dropping invalid request header"),
        }
        self
    }

    /// Appends a query parameter (URL-encoded when sent; `+` becomes `%2B`).
    pub fn query(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.query.push((k.into(), v.into()));
        self
    }

    /// Sets the body and its `Content-Type`.
    pub fn body(self, content_type: &str, bytes: impl Into<Bytes>) -> Self {
        let mut s = self.header(CONTENT_TYPE.as_str(), content_type);
        s.body = Some(bytes.into());
        s
    }

    /// Token scope this request needs. Called again, adds a scope (the token must cover all).
    pub fn scope(mut self, s: Scope) -> Self {
        if self.scope.is_none() {
            self.scope = Some(s);
        } else {
            self.extra_scopes.push(s);
        }
        self
    }
}
