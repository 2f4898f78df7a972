//! A complete, bounded registry answer ([`RegistryResponse`]): headers, media type, error
//! codes, JSON body.

use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, StatusCode};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use url::Url;

use bytes::Bytes;

use crate::reason::{self, Reason};
use crate::registry::error::RegistryError;

/// A complete registry answer (body already read and bounded).
#[derive(Clone, Debug)]
pub struct RegistryResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Final URL after redirects.
    pub url: Url,
}

impl RegistryResponse {
    /// A header as text (`None` if absent or not visible ASCII).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Media type without parameters, lowercased and trimmed.
    pub fn content_type(&self) -> Option<&str> {
        let ct = self.header(CONTENT_TYPE.as_str())?;
        let mt = ct.split(';').next().unwrap_or_default().trim();
        if mt.is_empty() {
            return None;
        }
        // Media types are ASCII; lowercase without allocating when already lowercase.
        if mt.bytes().any(|b| b.is_ascii_uppercase()) {
            // Responses from `RegistryClient::send` are already normalised; this
            // only happens for hand-built responses.
            return Some(lowercase_cached(mt));
        }
        Some(mt)
    }

    /// Why this answer is a failure, by the crate's one HTTP table ([`crate::reason::classify`]:
    /// the status, the distribution error codes, the `WWW-Authenticate` challenge); `None` for
    /// 1xx–3xx.
    pub fn failure_reason(&self) -> Option<Reason> {
        let challenge = self.header(http::header::WWW_AUTHENTICATE.as_str());
        reason::classify(self.status.as_u16(), &self.error_codes(), challenge)
    }

    /// Distribution error codes from `{"errors":[{"code":...}]}`; empty otherwise.
    pub fn error_codes(&self) -> Vec<String> {
        #[derive(serde::Deserialize)]
        struct Errors {
            errors: Vec<ErrorEntry>,
        }
        #[derive(serde::Deserialize)]
        struct ErrorEntry {
            code: Option<String>,
        }
        serde_json::from_slice::<Errors>(&self.body)
            .map(|e| e.errors.into_iter().filter_map(|e| e.code).collect())
            .unwrap_or_default()
    }

    /// Deserialises the body; `InvalidResponse` naming the URL on failure.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, RegistryError> {
        serde_json::from_slice(&self.body).map_err(|e| RegistryError::InvalidResponse {
            url: display_url(&self.url),
            reason: format!("body is not the expected JSON: {e}"),
        })
    }
}

/// Interns lowercased media types so `content_type` can return `&str`
/// (the set of distinct media types a process sees is small).
pub(super) fn lowercase_cached(mt: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::OnceLock;
    static CACHE: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let lower = mt.to_ascii_lowercase();
    let mut set = CACHE.get_or_init(Default::default).lock();
    if let Some(s) = set.get(lower.as_str()) {
        return s;
    }
    if set.len() >= 1024 {
        // Bounded: never grow without limit.
        return "application/unknown";
    }
    let leaked: &'static str = Box::leak(lower.into_boxed_str());
    set.insert(leaked);
    leaked
}

/// URL for messages: never with userinfo.
pub(super) fn display_url(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

/// Lowercases the media type part of `Content-Type` (parameters untouched) so
/// `RegistryResponse::content_type` can borrow it.
pub(super) fn normalise_content_type(headers: &mut HeaderMap) {
    let Some(v) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return;
    };
    let (mt, rest) = v.split_once(';').map_or((v, ""), |(m, r)| (m, r));
    if !mt.bytes().any(|b| b.is_ascii_uppercase()) {
        return;
    }
    let new = if rest.is_empty() {
        mt.to_ascii_lowercase()
    } else {
        format!("{};{rest}", mt.to_ascii_lowercase())
    };
    if let Ok(v) = HeaderValue::from_str(&new) {
        headers.insert(CONTENT_TYPE, v);
    }
}
