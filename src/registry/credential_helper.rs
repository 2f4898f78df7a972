//! Docker credential helpers: `docker-credential-<name> get`, the credentials `docker login`
//! keeps in a keychain (`credHelpers` / `credsStore` of `~/.docker/config.json`).
//!
//! Protocol (docker/docker-credential-helpers): the server URL on stdin, a JSON object
//! `{"ServerURL","Username","Secret"}` on stdout, exit status non-zero with
//! `credentials not found in native keychain` when there is no entry. A `Username` of
//! `<token>` means `Secret` is an identity token.
//!
//! Used by the CLI only: the controller never runs programs named by a Secret. The helper's
//! output is never logged or echoed, not even in errors (it may hold the secret).

use std::process::Stdio;
use std::time::Duration;

use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::auth::Credentials;

/// Largest answer read from a helper.
const MAX_OUTPUT: u64 = 64 * 1024;

/// How long a helper may take (a keychain prompt it cannot show must not hang a CI job).
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a helper gave no credentials. Never carries the helper's output.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("credential helper docker-credential-{helper}: {reason}")]
pub struct HelperError {
    /// The helper's name (`desktop`, `ecr-login`, …).
    pub helper: String,
    /// What went wrong.
    pub reason: String,
}

/// Whether `name` can be a helper name (it becomes part of a program name: no paths).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
}

/// The server URL a helper stores a registry under (`docker login` keeps Docker Hub as
/// `https://index.docker.io/v1/`, every other registry as its host).
pub fn server_url(registry_host: &str) -> String {
    if super::reference::is_docker_hub(registry_host) {
        "https://index.docker.io/v1/".to_string()
    } else {
        registry_host.to_string()
    }
}

/// Asks `docker-credential-<helper>` (found on `PATH`) for `server`'s credentials.
/// `Ok(None)`: the helper has none for it.
pub async fn get(
    helper: &str,
    server: &str,
    timeout: Duration,
) -> Result<Option<Credentials>, HelperError> {
    let fail = |reason: String| HelperError {
        helper: helper.to_string(),
        reason,
    };
    if !valid_name(helper) {
        return Err(fail("not a valid helper name".into()));
    }
    let program = format!("docker-credential-{helper}");
    let mut child = tokio::process::Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => fail(format!("{program} not found on PATH")),
            _ => fail(format!("cannot run {program}: {e}")),
        })?;
    let run = async {
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading stdin is judged by its exit status.
            let _ = stdin.write_all(server.as_bytes()).await;
            let _ = stdin.shutdown().await;
        }
        let mut out = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            stdout
                .take(MAX_OUTPUT + 1)
                .read_to_end(&mut out)
                .await
                .map_err(|e| fail(format!("cannot read its answer: {e}")))?;
        }
        let status = child
            .wait()
            .await
            .map_err(|e| fail(format!("cannot wait for it: {e}")))?;
        Ok::<_, HelperError>((status, out))
    };
    let (status, out) = tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| fail(format!("no answer within {} s", timeout.as_secs())))??;
    if out.len() as u64 > MAX_OUTPUT {
        return Err(fail(format!("answer larger than {MAX_OUTPUT} bytes")));
    }
    if !status.success() {
        // The protocol's "no entry" answer; any other failure is reported without its text.
        if String::from_utf8_lossy(&out).contains("credentials not found") {
            return Ok(None);
        }
        return Err(fail(match status.code() {
            Some(c) => format!("exited with status {c}"),
            None => "killed by a signal".into(),
        }));
    }
    parse_answer(&out).map_err(fail)
}

#[derive(serde::Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Reads a helper's answer. Errors never quote it.
fn parse_answer(out: &[u8]) -> Result<Option<Credentials>, String> {
    let answer: HelperAnswer = serde_json::from_slice(out)
        .map_err(|_| "answered something that is not the helper protocol's JSON".to_string())?;
    if answer.secret.is_empty() {
        return Ok(None);
    }
    if answer.username == "<token>" || answer.username.is_empty() {
        return Ok(Some(Credentials::IdentityToken(SecretString::from(
            answer.secret,
        ))));
    }
    Ok(Some(Credentials::Basic {
        username: answer.username,
        password: SecretString::from(answer.secret),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn names_cannot_be_paths() {
        assert!(valid_name("desktop"));
        assert!(valid_name("ecr-login"));
        assert!(valid_name("osxkeychain"));
        for bad in ["", "../bin/sh", "a/b", ".hidden", "a b", "x;rm"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn docker_hub_is_stored_under_its_v1_url() {
        assert_eq!(
            server_url("registry-1.docker.io"),
            "https://index.docker.io/v1/"
        );
        assert_eq!(server_url("ghcr.io"), "ghcr.io");
        assert_eq!(server_url("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    #[test]
    fn answers() {
        match parse_answer(br#"{"ServerURL":"x","Username":"u","Secret":"s3"}"#) {
            Ok(Some(Credentials::Basic { username, password })) => {
                assert_eq!((username.as_str(), password.expose_secret()), ("u", "s3"))
            }
            other => panic!("{other:?}"),
        }
        match parse_answer(br#"{"Username":"<token>","Secret":"tok"}"#) {
            Ok(Some(Credentials::IdentityToken(t))) => assert_eq!(t.expose_secret(), "tok"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_answer(br#"{"Username":"u","Secret":""}"#),
            Ok(None)
        ));
        let e = parse_answer(b"password=hunter2").unwrap_err();
        assert!(!e.contains("hunter2"));
    }
}
