//! Credentials, `WWW-Authenticate` parsing and the Docker token cache.
//!
//! Everything here is pure (no I/O); `client.rs` performs the requests.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};

/// Credentials for one registry.
#[derive(Clone, Default)]
pub enum Credentials {
    /// No credentials (anonymous token requests / no Authorization).
    #[default]
    Anonymous,
    /// Username and password (or a personal access token used as password).
    Basic {
        username: String,
        password: SecretString,
    },
    /// An OAuth2 refresh token (`identitytoken` in docker config).
    IdentityToken(SecretString),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

impl Credentials {
    /// `Basic base64(user:pass)` header value, for Basic credentials only.
    pub(crate) fn basic_header(&self) -> Option<SecretString> {
        use base64::Engine as _;
        match self {
            Credentials::Basic { username, password } => {
                let raw = format!("{username}:{}", password.expose_secret());
                Some(SecretString::from(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                )))
            }
            _ => None,
        }
    }

    /// Whether these are no credentials.
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Credentials::Anonymous)
    }
}

/// One authentication challenge of a `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic {
        realm: Option<String>,
    },
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    /// Any other scheme (its name as sent).
    Other(String),
}

/// `WWW-Authenticate` parser (RFC 7235 / RFC 9110 §11).
///
/// Hand-written on purpose rather than `http-auth` (the parser oci-client uses): that crate
/// fails the whole header at a `token68` challenge (`NTLM abc==`, sent by proxies next to a
/// registry's Bearer), at non-ASCII `obs-text` in a realm and at leading whitespace, and
/// accepts a repeated parameter; wrapping it to keep those would be as long as this. It is
/// the independent peer instead: `tests/proptest_parsers.rs` checks both read the same
/// challenges from generated headers, and `fuzz/` runs this one.
pub struct WwwAuthenticate;

impl WwwAuthenticate {
    /// Parses every challenge in a header value. Errors (never panics) on
    /// malformed input and on a Bearer challenge without `realm`.
    pub fn parse(header: &str) -> Result<Vec<Challenge>, String> {
        let raw = parse_raw(header)?;
        if raw.is_empty() {
            return Err("no challenge in WWW-Authenticate header".into());
        }
        raw.into_iter()
            .map(|(scheme, params)| {
                let get = |name: &str| {
                    params
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.clone())
                };
                if scheme.eq_ignore_ascii_case("bearer") {
                    let realm = get("realm")
                        .filter(|r| !r.is_empty())
                        .ok_or("Bearer challenge without realm")?;
                    Ok(Challenge::Bearer {
                        realm,
                        service: get("service"),
                        scope: get("scope"),
                    })
                } else if scheme.eq_ignore_ascii_case("basic") {
                    Ok(Challenge::Basic {
                        realm: get("realm"),
                    })
                } else {
                    Ok(Challenge::Other(scheme))
                }
            })
            .collect()
    }
}

type RawChallenge = (String, Vec<(String, String)>);

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn is_token68_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-._~+/".contains(&c)
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn skip_ws_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }
    fn token(&mut self) -> &str {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        // tchar is ASCII, so this slice is valid UTF-8.
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default()
    }
    fn quoted(&mut self) -> Result<String, String> {
        // At the opening quote.
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err("unterminated quoted string".into()),
                Some(b'"') => {
                    self.i += 1;
                    return String::from_utf8(out).map_err(|_| "quoted string is not UTF-8".into());
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = self.peek().ok_or("unterminated escape in quoted string")?;
                    out.push(c);
                    self.i += 1;
                }
                Some(c) if c == b'\t' || c >= 0x20 && c != 0x7f => {
                    out.push(c);
                    self.i += 1;
                }
                Some(_) => return Err("control character in quoted string".into()),
            }
        }
    }
    /// Does an `auth-param` (`token OWS "=" ...`) start here? (As opposed to a
    /// new challenge's scheme or a token68.)
    fn at_param(&self) -> bool {
        let mut j = self.i;
        let start = j;
        while self.s.get(j).copied().is_some_and(is_tchar) {
            j += 1;
        }
        if j == start {
            return false;
        }
        while matches!(self.s.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        if self.s.get(j) != Some(&b'=') {
            return false;
        }
        j += 1;
        // `name==` or `name=` at the end / before a comma is a token68.
        while matches!(self.s.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        !matches!(self.s.get(j), None | Some(b'=' | b','))
    }
}

fn parse_raw(header: &str) -> Result<Vec<RawChallenge>, String> {
    let mut c = Cursor {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out: Vec<RawChallenge> = Vec::new();
    c.skip_ws_commas();
    while c.peek().is_some() {
        let scheme = c.token().to_string();
        if scheme.is_empty() {
            return Err(format!("expected an auth scheme at byte {}", c.i));
        }
        let mut params: Vec<(String, String)> = Vec::new();
        match c.peek() {
            None | Some(b',') => {}
            Some(b' ' | b'\t') => {
                c.skip_ws();
                if c.at_param() {
                    loop {
                        let name = c.token().to_string();
                        c.skip_ws();
                        // at_param guaranteed the '='.
                        c.i += 1;
                        c.skip_ws();
                        let value = if c.peek() == Some(b'"') {
                            c.quoted()?
                        } else {
                            let v = c.token().to_string();
                            if v.is_empty() {
                                return Err(format!("parameter {name:?} has no value"));
                            }
                            v
                        };
                        if params.iter().any(|(k, _)| k.eq_ignore_ascii_case(&name)) {
                            return Err(format!("duplicate parameter {name:?}"));
                        }
                        c.skip_ws();
                        match c.peek() {
                            None => {
                                params.push((name, value));
                                break;
                            }
                            Some(b',') => {
                                params.push((name, value));
                                c.skip_ws_commas();
                                if !c.at_param() {
                                    break; // next challenge (or end)
                                }
                            }
                            Some(_) => {
                                return Err(format!(
                                    "expected ',' after parameter {name:?} at byte {}",
                                    c.i
                                ));
                            }
                        }
                    }
                } else if c.peek().is_some_and(is_token68_char) {
                    // token68 (e.g. Negotiate/NTLM data) – not used by registries; skip it.
                    while c.peek().is_some_and(is_token68_char) {
                        c.i += 1;
                    }
                    while c.peek() == Some(b'=') {
                        c.i += 1;
                    }
                    c.skip_ws();
                    if !matches!(c.peek(), None | Some(b',')) {
                        return Err(format!("unexpected character at byte {}", c.i));
                    }
                }
            }
            Some(_) => return Err(format!("unexpected character at byte {}", c.i)),
        }
        out.push((scheme, params));
        c.skip_ws_commas();
    }
    Ok(out)
}

/// Picks the challenge the client should answer: Bearer over Basic over others.
pub(crate) fn preferred(challenges: &[Challenge]) -> Option<Challenge> {
    challenges
        .iter()
        .find(|c| matches!(c, Challenge::Bearer { .. }))
        .or_else(|| {
            challenges
                .iter()
                .find(|c| matches!(c, Challenge::Basic { .. }))
        })
        .cloned()
}

/// Joins scope strings (each possibly space separated), deduplicated and sorted.
pub(crate) fn join_scopes<'a>(scopes: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut v: Vec<String> = scopes
        .into_iter()
        .flat_map(str::split_whitespace)
        .map(str::to_string)
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The token endpoint's JSON answer.
#[derive(serde::Deserialize)]
struct TokenResponseJson {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<i64>,
    issued_at: Option<String>,
}

/// A token and how long it may be used.
pub(crate) struct IssuedToken {
    pub token: SecretString,
    pub lifetime: Duration,
}

/// Default lifetime when `expires_in` is absent (Docker token spec).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Safety margin subtracted from a token's lifetime.
const TOKEN_SKEW: Duration = Duration::from_secs(5);

/// Parses a token response. Errors never contain the body (it may hold tokens).
pub(crate) fn parse_token_response(body: &[u8]) -> Result<IssuedToken, String> {
    let parsed: TokenResponseJson = serde_json::from_slice(body).map_err(|e| {
        format!(
            "token response is not the expected JSON (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let token = parsed
        .token
        .filter(|t| !t.is_empty())
        .or(parsed.access_token.filter(|t| !t.is_empty()))
        .ok_or("token response has neither \"token\" nor \"access_token\"")?;
    let expires_in = match parsed.expires_in {
        Some(s) if s > 0 => Duration::from_secs(s as u64),
        _ => DEFAULT_TOKEN_LIFETIME,
    };
    // If issued_at is given and in the past, the token has already aged.
    let aged = parsed
        .issued_at
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .and_then(|issued| {
            let age = jiff::Timestamp::now().duration_since(issued);
            Duration::try_from(age).ok()
        })
        .unwrap_or_default();
    let remaining = expires_in.saturating_sub(aged);
    let skew = TOKEN_SKEW.min(remaining / 2);
    Ok(IssuedToken {
        token: SecretString::from(token),
        lifetime: remaining.saturating_sub(skew),
    })
}

/// Cache key: (realm, service, space-joined sorted scopes).
pub(crate) type TokenKey = (String, String, String);

struct CachedToken {
    token: SecretString,
    expires: Instant,
}

/// Bearer tokens by (realm, service, scope).
#[derive(Default)]
pub(crate) struct TokenCache {
    tokens: Mutex<HashMap<TokenKey, CachedToken>>,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenCache(<redacted>)")
    }
}

impl TokenCache {
    fn lock(&self) -> parking_lot::MutexGuard<'_, HashMap<TokenKey, CachedToken>> {
        self.tokens.lock()
    }

    pub(crate) fn get(&self, key: &TokenKey) -> Option<SecretString> {
        let mut map = self.lock();
        let now = Instant::now();
        map.retain(|_, t| t.expires > now);
        map.get(key).map(|t| t.token.clone())
    }

    pub(crate) fn insert(&self, key: TokenKey, token: SecretString, lifetime: Duration) {
        if lifetime.is_zero() {
            return;
        }
        self.lock().insert(
            key,
            CachedToken {
                token,
                expires: Instant::now() + lifetime,
            },
        );
    }

    pub(crate) fn remove(&self, key: &TokenKey) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(realm: &str, service: Option<&str>, scope: Option<&str>) -> Challenge {
        Challenge::Bearer {
            realm: realm.into(),
            service: service.map(Into::into),
            scope: scope.map(Into::into),
        }
    }

    #[test]
    fn docker_hub_challenge_with_comma_in_scope() {
        let c = WwwAuthenticate::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            vec![bearer(
                "https://auth.docker.io/token",
                Some("registry.docker.io"),
                Some("repository:samalba/my-app:pull,push")
            )]
        );
    }

    #[test]
    fn case_insensitive_scheme_and_names_and_spacing() {
        let c =
            WwwAuthenticate::parse(r#"  bEaReR   REALM = "https://r/t" , Service=reg  "#).unwrap();
        assert_eq!(c, vec![bearer("https://r/t", Some("reg"), None)]);
    }

    #[test]
    fn escapes_in_quoted_string() {
        let c =
            WwwAuthenticate::parse(r#"Basic realm="a \"quoted\" \\ realm, with comma""#).unwrap();
        assert_eq!(
            c,
            vec![Challenge::Basic {
                realm: Some(r#"a "quoted" \ realm, with comma"#.into())
            }]
        );
    }

    #[test]
    fn multiple_challenges() {
        let c = WwwAuthenticate::parse(
            r#"Basic realm="x", Bearer realm="https://t/token",service="s", Negotiate, NTLM abc123=="#,
        )
        .unwrap();
        assert_eq!(
            c,
            vec![
                Challenge::Basic {
                    realm: Some("x".into())
                },
                bearer("https://t/token", Some("s"), None),
                Challenge::Other("Negotiate".into()),
                Challenge::Other("NTLM".into()),
            ]
        );
        assert_eq!(
            preferred(&c),
            Some(bearer("https://t/token", Some("s"), None))
        );
        // ECR style Basic challenge.
        let c = WwwAuthenticate::parse(
            r#"Basic realm="https://1.dkr.ecr.eu-west-1.amazonaws.com/",service="ecr.amazonaws.com""#,
        )
        .unwrap();
        assert!(matches!(&c[..], [Challenge::Basic { realm: Some(_) }]));
        assert_eq!(
            WwwAuthenticate::parse("Basic").unwrap(),
            vec![Challenge::Basic { realm: None }]
        );
    }

    #[test]
    fn malformed_headers_are_errors() {
        for bad in [
            "",
            "   ",
            ",,",
            "Bearer",
            r#"Bearer service="x""#,
            r#"Bearer realm="""#,
            r#"Bearer realm="https://unterminated"#,
            r#"Bearer realm="x\"#,
            r#"Bearer realm="x" service="y""#,
            r#"Bearer realm="x",realm="y""#,
            "Bearer realm=",
            "=realm",
            "\"Bearer\"",
            "Bearer realm=\"a\u{1}b\"",
            "Bearer @@@",
        ] {
            assert!(WwwAuthenticate::parse(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        let alphabet = [
            "Bearer", "Basic", " ", ",", "=", "\"", "\\", "realm", "x", "\t", "é",
        ];
        // Deterministic pseudo-random combinations, bounded.
        let mut seed: u64 = 42;
        for _ in 0..2000 {
            let mut s = String::new();
            for _ in 0..12 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                s.push_str(alphabet[(seed >> 33) as usize % alphabet.len()]);
            }
            let _ = WwwAuthenticate::parse(&s);
        }
    }

    #[test]
    fn token_response_variants() {
        let t = parse_token_response(br#"{"token":"abc","expires_in":300}"#).unwrap();
        assert_eq!(t.token.expose_secret(), "abc");
        assert_eq!(t.lifetime, Duration::from_secs(295));
        let t = parse_token_response(br#"{"access_token":"xyz"}"#).unwrap();
        assert_eq!(t.token.expose_secret(), "xyz");
        assert_eq!(t.lifetime, Duration::from_secs(55));
        let t = parse_token_response(
            br#"{"token":"abc","expires_in":300,"issued_at":"2000-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(t.lifetime, Duration::ZERO);
        let e = parse_token_response(br#"{"token":""}"#).err().unwrap();
        assert!(e.contains("neither"));
        let e = parse_token_response(b"<html>secret-ish</html>")
            .err()
            .unwrap();
        assert!(!e.contains("secret-ish"));
        assert!(parse_token_response(br#"{"token": 5}"#).is_err());
    }

    #[test]
    fn credentials_debug_redacts() {
        let c = Credentials::Basic {
            username: "alice".into(),
            password: SecretString::from("hunter2-pw"),
        };
        let d = format!("{c:?}");
        assert!(d.contains("alice") && !d.contains("hunter2-pw"), "{d}");
        let d = format!(
            "{:?}",
            Credentials::IdentityToken(SecretString::from("idtok-123"))
        );
        assert!(!d.contains("idtok-123"));
        assert_eq!(
            c.basic_header().unwrap().expose_secret(),
            "Basic YWxpY2U6aHVudGVyMi1wdw=="
        );
    }

    #[test]
    fn cache_expires() {
        let cache = TokenCache::default();
        let k: TokenKey = ("r".into(), "s".into(), "scope".into());
        cache.insert(k.clone(), SecretString::from("t"), Duration::from_secs(60));
        assert!(cache.get(&k).is_some());
        cache.insert(k.clone(), SecretString::from("t"), Duration::from_nanos(1));
        std::thread::sleep(Duration::from_millis(2));
        assert!(cache.get(&k).is_none());
        assert_eq!(
            join_scopes(["repository:a:pull", "repository:b:pull repository:a:pull"]),
            vec!["repository:a:pull", "repository:b:pull"]
        );
    }
}
