//! Property tests for every parser that reads outside input: image
//! references (round-trip `parse(whole())`), `WWW-Authenticate`, `Link`,
//! dockerconfigjson, ECR lifecycle policy JSON, OCI index/manifest JSON
//! (classify / tag schema / verdict entry points). They never panic; parsed
//! values round-trip where that applies. The `WWW-Authenticate` parser is also
//! checked against `http-auth` (the parser oci-client uses) as an independent
//! peer. Regression inputs found by `make fuzz` go in `regressions()` (and as files in `fuzz/regressions/`,
//! which `fuzz_inputs_replay()` runs like the fuzz targets do).

use proptest::prelude::*;
use refwarden::discovery::classify::ManifestFacts;
use refwarden::discovery::{link, tagschema};
use refwarden::lifecycle::ecr;
use refwarden::probe::verdict;
use refwarden::registry::{DockerConfig, ImageReference, WwwAuthenticate};
use serde_json::{Value, json};
use url::Url;

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn component() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,8}([._-][a-z0-9]{1,6}){0,2}"
}

fn reference_text() -> impl Strategy<Value = String> {
    (
        prop::option::of(prop_oneof![
            Just("docker.io".to_string()),
            Just("ghcr.io".to_string()),
            Just("localhost:5000".to_string()),
            Just("[::1]:5000".to_string()),
            "[a-z]{1,8}\\.[a-z]{2,4}(:[1-9][0-9]{0,3})?",
        ]),
        prop::collection::vec(component(), 1..4),
        prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
        prop::option::of("[0-9a-f]{64}"),
    )
        .prop_map(|(reg, path, tag, digest)| {
            let mut s = String::new();
            if let Some(r) = reg {
                s.push_str(&r);
                s.push('/');
            }
            s.push_str(&path.join("/"));
            if let Some(t) = tag {
                s.push(':');
                s.push_str(&t);
            }
            if let Some(d) = digest {
                s.push_str("@sha256:");
                s.push_str(&d);
            }
            s
        })
}

/// Arbitrary JSON up to a small depth.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        Just(json!(DIGEST)),
        Just(json!("application/vnd.oci.image.index.v1+json")),
        Just(json!("application/vnd.oci.image.manifest.v1+json")),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("schemaVersion".to_string()),
                    Just("mediaType".to_string()),
                    Just("manifests".to_string()),
                    Just("layers".to_string()),
                    Just("config".to_string()),
                    Just("subject".to_string()),
                    Just("artifactType".to_string()),
                    Just("annotations".to_string()),
                    Just("digest".to_string()),
                    Just("size".to_string()),
                    Just("platform".to_string()),
                    Just("rules".to_string()),
                    Just("rulePriority".to_string()),
                    Just("selection".to_string()),
                    Just("action".to_string()),
                    Just("tagStatus".to_string()),
                    Just("countType".to_string()),
                    Just("countNumber".to_string()),
                    Just("tagPrefixList".to_string()),
                    Just("tagPatternList".to_string()),
                    Just("auths".to_string()),
                    Just("auth".to_string()),
                    Just("username".to_string()),
                    Just("password".to_string()),
                    ".{0,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// All the JSON parsers on one input (text or JSON bytes): none may panic.
fn all_json_parsers(bytes: &[u8]) {
    let _ = ManifestFacts::parse(bytes);
    let _ = verdict::body_is_oci_index(bytes);
    let _ = tagschema::validate_fallback_index(
        DIGEST,
        Some("application/vnd.oci.image.index.v1+json"),
        "sha256:ffff",
        bytes,
    );
    if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
        let _ = tagschema::index_descriptors(&v);
    }
    let _ = DockerConfig::parse(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = ecr::parse_policy(text);
        let _ = ecr::analyze_policy_text(text, Some("ctx"));
    }
}

/// One generated challenge: scheme, then (name, value, quoted) parameters.
type GeneratedChallenge = (String, Vec<(String, String, bool)>);

/// Challenges as registries send them, with the corners of the grammar: case, spacing
/// around `=` and `,`, quoted values with escapes and commas, missing realms, repeats.
fn challenge_list() -> impl Strategy<Value = Vec<GeneratedChallenge>> {
    let scheme = prop::sample::select(vec!["Bearer", "bearer", "Basic", "BASIC", "Negotiate"]);
    let name = prop::sample::select(vec!["realm", "Realm", "service", "scope", "error"]);
    let quoted = "([ !#-\\[\\]-~]|\\\\\"|\\\\\\\\|,){0,12}";
    let token = "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,10}";
    let value = prop_oneof![
        quoted.prop_map(|v| (v, true)),
        token.prop_map(|v| (v, false)),
    ];
    let param = (name, value).prop_map(|(n, (v, q))| (n.to_string(), v, q));
    let challenge =
        (scheme, prop::collection::vec(param, 0..4)).prop_map(|(s, p)| (s.to_string(), p));
    prop::collection::vec(challenge, 1..4)
}

/// The header text of generated challenges (quoted values are already escaped).
fn render_challenges(challenges: &[GeneratedChallenge]) -> String {
    let one = |(scheme, params): &GeneratedChallenge| {
        let params: Vec<String> = params
            .iter()
            .map(|(n, v, q)| {
                if *q {
                    format!("{n}=\"{v}\"")
                } else {
                    format!("{n}={v}")
                }
            })
            .collect();
        if params.is_empty() {
            scheme.clone()
        } else {
            format!("{scheme} {}", params.join(" , "))
        }
    };
    challenges.iter().map(one).collect::<Vec<_>>().join(", ")
}

/// What http-auth reads from `header`, in our shape; `None` when it rejects the header or
/// a challenge is one we must reject (Bearer without a realm).
fn peer_challenges(header: &str) -> Option<Vec<refwarden::registry::Challenge>> {
    use refwarden::registry::Challenge;
    let parsed = http_auth::parse_challenges(header).ok()?;
    parsed
        .into_iter()
        .map(|c| {
            let get = |name: &str| {
                c.params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.to_unescaped())
            };
            let mut names: Vec<String> = c
                .params
                .iter()
                .map(|(k, _)| k.to_ascii_lowercase())
                .collect();
            names.sort();
            let before = names.len();
            names.dedup();
            if names.len() != before {
                return None;
            }
            if c.scheme.eq_ignore_ascii_case("bearer") {
                Some(Challenge::Bearer {
                    realm: get("realm").filter(|r| !r.is_empty())?,
                    service: get("service"),
                    scope: get("scope"),
                })
            } else if c.scheme.eq_ignore_ascii_case("basic") {
                Some(Challenge::Basic {
                    realm: get("realm"),
                })
            } else {
                Some(Challenge::Other(c.scheme.to_string()))
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn reference_round_trips(s in reference_text()) {
        if let Ok(r) = ImageReference::parse(&s) {
            let again = ImageReference::parse(&r.whole()).expect("whole() parses");
            prop_assert_eq!(&again, &r);
            prop_assert_eq!(again.whole(), r.whole());
        }
    }

    #[test]
    fn reference_never_panics(s in ".{0,300}") {
        if let Ok(r) = ImageReference::parse(&s) {
            prop_assert_eq!(ImageReference::parse(&r.whole()).ok(), Some(r));
        }
    }

    #[test]
    fn www_authenticate_never_panics(s in "[ -~\t]{0,200}") {
        let _ = WwwAuthenticate::parse(&s);
    }

    #[test]
    fn www_authenticate_round_trips_bearer(
        realm in "https://[a-z]{1,10}\\.[a-z]{2,3}/[a-z]{0,8}",
        service in "[a-z.]{1,12}",
        scope in "repository:[a-z/]{1,12}:pull(,push)?",
    ) {
        let h = format!("Bearer realm=\"{realm}\",service=\"{service}\",scope=\"{scope}\"");
        let parsed = WwwAuthenticate::parse(&h).expect("valid challenge");
        prop_assert_eq!(parsed, vec![refwarden::registry::Challenge::Bearer {
            realm, service: Some(service), scope: Some(scope)
        }]);
    }

    #[test]
    fn www_authenticate_agrees_with_http_auth(challenges in challenge_list()) {
        let header = render_challenges(&challenges);
        let ours = WwwAuthenticate::parse(&header);
        match peer_challenges(&header) {
            Some(peer) => prop_assert_eq!(ours, Ok(peer), "header {:?}", header),
            // What http-auth rejects (or we must: a repeated parameter, a Bearer without
            // realm), we reject. (Its stricter corners, token68 and non-ASCII, are not
            // generated: we accept those on purpose.)
            None => prop_assert!(ours.is_err(), "header {:?}: ours {:?}", header, ours),
        }
    }

    #[test]
    fn link_never_panics_and_next_is_same_origin(s in "[ -~]{0,200}") {
        let _ = link::parse(&s);
        let base = Url::parse("https://r.example/v2/a/referrers/x").expect("url");
        if let Some(u) = link::next_link([s.as_str()], &base) {
            // Whatever the header says, the next page stays on an http(s) URL.
            prop_assert!(matches!(u.scheme(), "http" | "https"));
        }
    }

    #[test]
    fn link_round_trips(path in "/v2/[a-z]{1,8}/tags/list", n in 1u32..1000, last in "[a-z0-9]{1,10}") {
        let target = format!("{path}?n={n}&last={last}");
        let header = format!("<{target}>; rel=\"next\"");
        let base = Url::parse("http://127.0.0.1:5000/v2/").expect("url");
        let next = link::next_link([header.as_str()], &base).expect("next link");
        prop_assert_eq!(next.path(), path.as_str());
        let want = format!("n={n}&last={last}");
        prop_assert_eq!(next.query(), Some(want.as_str()));
    }

    #[test]
    fn json_parsers_never_panic_on_json(v in json_value()) {
        all_json_parsers(v.to_string().as_bytes());
    }

    #[test]
    fn json_parsers_never_panic_on_bytes(b in prop::collection::vec(any::<u8>(), 0..512)) {
        all_json_parsers(&b);
    }

    #[test]
    fn dockerconfig_round_trips_basic(user in "[a-z][a-z0-9]{0,10}", pass in "[!-~]{1,20}", host in "[a-z]{1,8}\\.io") {
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        let cfg = json!({"auths": {host.clone(): {"auth": auth}}}).to_string();
        let parsed = DockerConfig::parse(cfg.as_bytes()).expect("valid config");
        let creds = format!("{:?}", parsed.credentials_for(&host));
        prop_assert!(creds.contains(&user), "{}", creds);
        prop_assert!(!creds.contains(&format!(":{pass}")), "debug must redact");
    }

    #[test]
    fn ecr_policy_json_never_panics(
        prio in any::<i64>(),
        count in any::<i64>(),
        status in prop_oneof![Just("tagged"), Just("untagged"), Just("any"), Just("weird")],
        ctype in prop_oneof![Just("imageCountMoreThan"), Just("sinceImagePushed"), Just("x")],
        prefixes in prop::collection::vec("[a-z*]{0,5}", 0..3),
    ) {
        let text = json!({"rules": [{
            "rulePriority": prio,
            "selection": {"tagStatus": status, "countType": ctype, "countNumber": count,
                "countUnit": "days", "tagPrefixList": prefixes, "tagPatternList": prefixes},
            "action": {"type": "expire"},
        }]}).to_string();
        let _ = ecr::parse_policy(&text);
        let _ = ecr::analyze_policy_text(&text, None);
    }

    #[test]
    fn ecr_wildcard_never_panics(p in "[a-z*?]{0,20}", t in "[a-z]{0,30}") {
        let _ = ecr::wildcard_match(&p, &t);
    }
}

/// Inputs that once crashed a parser (from `make fuzz`), kept as regressions.
#[test]
fn regressions() {
    for input in [
        &b""[..],
        b"{",
        b"null",
        b"[]",
        b"{\"manifests\":{}}",
        b"{\"schemaVersion\":2,\"manifests\":[{\"digest\":5}]}",
        b"{\"rules\":[{\"rulePriority\":-9223372036854775808}]}",
        b"{\"auths\":{\"x\":{\"auth\":\"\xff\"}}}",
    ] {
        all_json_parsers(input);
    }
    for s in [
        "",
        ",",
        "Bearer",
        "Bearer realm=",
        "Basic ,,, ,",
        "Bearer realm=\"\\",
    ] {
        let _ = WwwAuthenticate::parse(s);
    }
    for s in ["<", "<>", "<>;", "<x>; rel=", "<\u{0}>; rel=\"next\""] {
        let _ = link::parse(s);
    }
    for s in ["", "/", ":", "@", "a@sha256:", "A", "a:b:c", "[::1]/x"] {
        let _ = ImageReference::parse(s);
    }
}

// The fuzz targets' bodies, owned by the fuzz crate (its own workspace and lockfile, built with
// nightly cargo-fuzz): a `#[path]` include, not a testkit module, so the fuzz targets keep
// depending on `refwarden` only and not on the harness's registries, tokio, axum, rcgen, ….
#[path = "../fuzz/harness.rs"]
mod fuzz_harness;

/// Replays the committed fuzz inputs, `fuzz/seeds/<target>/*` and
/// `fuzz/regressions/<target>/*`, through what each fuzz target calls, so
/// they run in `make test` without nightly or cargo-fuzz.
#[test]
fn fuzz_inputs_replay() {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for kind in ["seeds", "regressions"] {
        let Ok(targets) = std::fs::read_dir(fuzz.join(kind)) else {
            continue;
        };
        for target in targets {
            let target = target.expect("fuzz input dir entry").path();
            if !target.is_dir() {
                continue;
            }
            let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("");
            for input in std::fs::read_dir(&target).expect("fuzz input dir") {
                let path = input.expect("fuzz input entry").path();
                let bytes = std::fs::read(&path).expect("fuzz input file");
                assert!(
                    fuzz_harness::run(name, &bytes),
                    "{}: no fuzz target {name:?}",
                    path.display()
                );
                replayed += 1;
            }
        }
    }
    assert!(
        replayed >= 6,
        "fuzz/seeds/ should hold inputs for every target"
    );
}
