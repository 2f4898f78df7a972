//! The CLI contract CI pipelines rely on: strict input everywhere, the credentials users
//! already have (Docker config, `DOCKER_CONFIG`, credential helpers on `PATH`, against the real
//! distribution 2.8 registry with htpasswd), outputs tools read (JUnit/SARIF validated against
//! their schemas and golden files, `--format jsonpath=`, `-o yaml`, JSON error objects), shell
//! completions, colour only on terminals, progress, hints, and every documented exit code of
//! every command.
//!
//! Every run gets its own `HOME` and no `DOCKER_CONFIG`, so the machine's Docker login never
//! leaks in.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use refwarden_testkit::demo::{Demo, demo_dir, seed_demo, seed_demo_with, write_demo_manifests};
use refwarden_testkit::{Auth, DistributionOptions, SeedAuth};
use serde_json::{Value, json};

type TestResult = refwarden_testkit::Result<()>;

const USER: &str = "ci-puller";
const PASSWORD: &str = "pw-Xq7-never-printed";

/// A `refwarden` run with a clean environment: `HOME` = `home`, no `DOCKER_CONFIG`, no
/// `NO_COLOR`, no refwarden variables; `env` added.
fn rw(home: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_refwarden"));
    cmd.args(args)
        .env("HOME", home)
        .env_remove("DOCKER_CONFIG")
        .env_remove("NO_COLOR")
        .env_remove("REFWARDEN_LOG")
        .env_remove("REFWARDEN_LOG_FORMAT")
        .env("KUBECONFIG", home.join("no-kubeconfig"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("refwarden runs");
    if let (Some(input), Some(mut s)) = (stdin, child.stdin.take()) {
        let _ = s.write_all(input);
    }
    child.wait_with_output().expect("refwarden output")
}

async fn rw_async(home: PathBuf, args: Vec<String>, env: Vec<(String, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let e: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        rw(&home, &a, &e, None)
    })
    .await
    .expect("join")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A folder with the demo's policy and Deployments (no RegistryProfile unless `profile`).
/// Runs refwarden (no extra environment, no stdin), expects exit 2 (bad input) and returns
/// its stderr.
fn bad_input(home: &Path, args: &[&str]) -> String {
    let out = rw(home, args, &[], None);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    err
}

fn demo_inputs(dir: &Path, host: &str, profile: bool) -> refwarden_testkit::Result<()> {
    write_demo_manifests(dir, host)?;
    if !profile {
        std::fs::remove_file(dir.join("registryprofile.yaml"))?;
    }
    Ok(())
}

fn docker_config(host: &str) -> String {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    json!({"auths": {host: {"auth": auth}}}).to_string()
}

fn assert_no_secret(out: &Output) {
    for stream in [&out.stdout, &out.stderr] {
        assert!(!text(stream).contains(PASSWORD), "the password leaked");
    }
}

// ---------------------------------------------------------------------------------------
// 1. Strict input
// ---------------------------------------------------------------------------------------

#[test]
fn lifecycle_files_with_a_typo_are_bad_input_naming_file_and_field() -> TestResult {
    let home = tempfile::tempdir()?;
    let dir = tempfile::tempdir()?;
    // (flag, file content with a typo, the field the error must name)
    let cases = [
        (
            "--quay-policy",
            r#"{"autoprune":[{"method":"number_of_tags","value":10}]}"#,
            "autoprune",
        ),
        (
            "--distribution-config",
            "version: 2.8.3\ngarbageCollection:\n  deleteUntaged: true\n",
            "garbageCollection.deleteUntaged",
        ),
        (
            "--gitlab-policy",
            r#"{"enabled":true,"name_regex":".*","keepn":10}"#,
            "keepn",
        ),
        (
            "--harbor-policy",
            r#"{"retention":{"rules":[{"template":"latestPushedK","parms":{"latestPushedK":3},"tag_selectors":[]}]}}"#,
            "retention.rules[0].parms",
        ),
        (
            "--ecr-policy",
            r#"{"rules":[{"rulePriority":1,"selektion":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]}"#,
            "rules[0].selektion",
        ),
        (
            "--gar-policy",
            r#"[{"name":"a","action":{"type":"Delete"},"conditon":{"tagState":"any"}}]"#,
            "conditon",
        ),
        (
            "--acr-policy",
            r#"{"retentionPolicy":{"days":7,"statuss":"enabled"}}"#,
            "retentionPolicy.statuss",
        ),
    ];
    for (flag, body, field) in cases {
        let f = dir
            .path()
            .join(format!("{}.yaml", flag.trim_start_matches('-')));
        std::fs::write(&f, body)?;
        let out = rw(
            home.path(),
            &["lifecycle", "analyze", flag, &f.display().to_string()],
            &[],
            None,
        );
        let err = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{flag}: {err}{}",
            text(&out.stdout)
        );
        assert!(err.contains(&f.display().to_string()), "{flag}: {err}");
        assert!(err.contains(field), "{flag} must name {field}: {err}");
    }
    // A rule the vendor would reject is a finding (exit 1), not bad input: ECR refuses
    // `tagged` without a prefix list.
    let f = dir.path().join("ecr-invalid.json");
    std::fs::write(
        &f,
        r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]}"#,
    )?;
    let out = rw(
        home.path(),
        &[
            "lifecycle",
            "analyze",
            "--ecr-policy",
            &f.display().to_string(),
        ],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("InvalidPolicy"),
        "{}",
        text(&out.stdout)
    );
    Ok(())
}

const POLICY: &str = "apiVersion: refwarden.dev/v1alpha1\nkind: ReferrerPolicy\nmetadata:\n  name: p\nspec:\n  require:\n    - name: signature\n      preset: signature\n";

#[test]
fn refwarden_kinds_need_the_right_api_version_and_kind() -> TestResult {
    let home = tempfile::tempdir()?;
    let dir = tempfile::tempdir()?;
    let f = dir.path().join("p.yaml");
    std::fs::write(&f, POLICY.replace("v1alpha1", "v1"))?;
    let err = bad_input(home.path(), &["evaluate", "-f", &f.display().to_string()]);
    assert!(
        err.contains("p.yaml") && err.contains("apiVersion"),
        "{err}"
    );
    assert!(err.contains("refwarden.dev/v1alpha1"), "{err}");

    std::fs::write(
        &f,
        POLICY.replace("kind: ReferrerPolicy", "kind: ReferrerPolicies"),
    )?;
    let err = bad_input(home.path(), &["evaluate", "-f", &f.display().to_string()]);
    assert!(
        err.contains("kind") && err.contains("ReferrerPolicy"),
        "{err}"
    );
    Ok(())
}

#[test]
fn folders_skip_what_is_not_a_kubernetes_object_unless_named() -> TestResult {
    let home = tempfile::tempdir()?;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("policy.yaml"), POLICY)?;
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        "resources:\n  - policy.yaml\n",
    )?;
    std::fs::create_dir(dir.path().join("templates"))?;
    std::fs::write(
        dir.path().join("templates/deploy.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n",
    )?;
    // No workloads: the run gets as far as "nothing to judge" (2), with notes for the two.
    let err = bad_input(
        home.path(),
        &["evaluate", "-f", &dir.path().display().to_string()],
    );
    assert!(
        err.contains("note: skipped file:") && err.contains("kustomization.yaml"),
        "{err}"
    );
    assert!(err.contains("deploy.yaml"), "{err}");
    assert!(err.contains("nothing to judge"), "{err}");
    // Named explicitly, a kustomization is an error naming it.
    let k = dir.path().join("kustomization.yaml");
    let err = bad_input(
        home.path(),
        &[
            "evaluate",
            "-f",
            &dir.path().join("policy.yaml").display().to_string(),
            "-f",
            &k.display().to_string(),
        ],
    );
    assert!(
        err.contains("kustomization.yaml") && !err.contains("nothing to judge"),
        "{err}"
    );
    Ok(())
}

#[test]
fn nothing_to_judge_is_bad_input_not_a_pass() -> TestResult {
    let home = tempfile::tempdir()?;
    let dir = tempfile::tempdir()?;
    let f = dir.path().join("p.yaml");
    std::fs::write(&f, POLICY)?;
    let empty = dir.path().join("pods.json");
    std::fs::write(&empty, r#"{"apiVersion":"v1","kind":"List","items":[]}"#)?;
    for args in [
        vec!["evaluate", "-f", f.to_str().ok_or("path")?],
        vec![
            "evaluate",
            "-f",
            f.to_str().ok_or("path")?,
            "-f",
            empty.to_str().ok_or("path")?,
        ],
    ] {
        let out = rw(home.path(), &args, &[], None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains("nothing to judge"),
            "{}",
            text(&out.stderr)
        );
        assert!(
            !text(&out.stdout).contains("True"),
            "no COMPLIANT True on stdout"
        );
    }
    Ok(())
}

#[test]
fn stdin_is_read_and_oversized_files_are_refused_before_reading() -> TestResult {
    let home = tempfile::tempdir()?;
    let dir = tempfile::tempdir()?;
    let f = dir.path().join("p.yaml");
    std::fs::write(&f, POLICY)?;
    // `kubectl get pods -A -o json | refwarden evaluate -f policies/ -f -`: a pod whose
    // registry refuses connections is Unknown (3), which proves stdin was read and judged.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let digest = format!("sha256:{}", "a".repeat(64));
    let pods = json!({"apiVersion": "v1", "kind": "List", "items": [{
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": format!("127.0.0.1:{port}/app:1")}]},
        "status": {"phase": "Running", "containerStatuses": [{"name": "app",
            "image": format!("127.0.0.1:{port}/app:1"),
            "imageID": format!("127.0.0.1:{port}/app@{digest}"), "ready": true, "restartCount": 0}]}
    }]});
    let out = rw(
        home.path(),
        &[
            "evaluate",
            "-f",
            &f.display().to_string(),
            "-f",
            "-",
            "--plain-http",
            "--timeout-seconds",
            "2",
        ],
        &[],
        Some(pods.to_string().as_bytes()),
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}{}",
        text(&out.stderr),
        text(&out.stdout)
    );
    assert!(
        text(&out.stdout).contains("UNKNOWN"),
        "{}",
        text(&out.stdout)
    );

    // 65 MiB (sparse): refused from its size, at once.
    let big = dir.path().join("big.yaml");
    std::fs::File::create(&big)?.set_len(65 * 1024 * 1024)?;
    let t = Instant::now();
    let err = bad_input(home.path(), &["evaluate", "-f", &big.display().to_string()]);
    assert!(
        err.contains("big.yaml") && err.contains("64 MiB limit"),
        "{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    Ok(())
}

#[test]
fn file_status_does_not_call_aws_for_an_unused_ecr_profile() -> TestResult {
    let home = tempfile::tempdir()?;
    let dir = tempfile::tempdir()?;
    // An ECR profile no workload reads through; AWS pointed at a closed port: any call would
    // fail the run (and used to print a Debug dump).
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    std::fs::write(
        dir.path().join("ecr.yaml"),
        "apiVersion: refwarden.dev/v1alpha1\nkind: RegistryProfile\nmetadata:\n  name: ecr\nspec:\n  registryUrl: https://123456789012.dkr.ecr.eu-west-1.amazonaws.com\n  credentialsProvider: AwsEcr\n",
    )?;
    std::fs::write(dir.path().join("p.yaml"), POLICY)?;
    let out = rw(
        home.path(),
        &[
            "evaluate",
            "-f",
            &dir.path().display().to_string(),
            "--registry-profile-status-from",
            "file",
        ],
        &[
            ("AWS_ENDPOINT_URL", &format!("http://127.0.0.1:{port}")),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret-example"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
        None,
    );
    let err = text(&out.stderr);
    // Nothing to judge (no workloads), but no AWS error and no Debug dump.
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("nothing to judge"), "{err}");
    assert!(
        !err.contains("AwsEcr") && !err.contains("DispatchFailure"),
        "{err}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 2. Credentials users already have
// ---------------------------------------------------------------------------------------

async fn private_demo() -> refwarden_testkit::Result<Demo> {
    seed_demo_with(
        DistributionOptions {
            auth: Auth::Htpasswd {
                users: vec![(USER.into(), PASSWORD.into())],
            },
            delete_enabled: true,
        },
        SeedAuth::Basic(USER.into(), PASSWORD.into()),
    )
    .await
}

/// Evaluates the demo on the private registry without a RegistryProfile.
async fn evaluate_private(home: &Path, dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut args = strs(&[
        "evaluate",
        "-f",
        &dir.display().to_string(),
        "--plain-http",
        "-o",
        "json",
    ]);
    args.extend(strs(extra));
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    rw_async(home.to_path_buf(), args, env).await
}

fn violations_of(out: &Output) -> Vec<String> {
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v["referrerPolicies"][0]["status"]["violations"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["image"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluate_takes_credentials_from_where_docker_keeps_them() -> TestResult {
    let demo = private_demo().await?;
    let host = demo.reg.host();
    let dir = tempfile::tempdir()?;
    demo_inputs(dir.path(), &host, false)?;
    let expected = vec![format!("{host}/demo/bare"), format!("{host}/demo/sig-only")];

    // No credentials: Unknown AuthFailed (3), with the hint where credentials come from.
    let home = tempfile::tempdir()?;
    let out = evaluate_private(home.path(), dir.path(), &[], &[]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(
        v["referrerPolicies"][0]["status"]["unknown"][0]["reason"],
        "AuthFailed"
    );

    // --docker-config FILE.
    let cfg_dir = tempfile::tempdir()?;
    let cfg = cfg_dir.path().join("config.json");
    std::fs::write(&cfg, docker_config(&host))?;
    let out = evaluate_private(
        home.path(),
        dir.path(),
        &["--docker-config", &cfg.display().to_string()],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(violations_of(&out), expected);
    assert_no_secret(&out);

    // $DOCKER_CONFIG/config.json.
    let out = evaluate_private(
        home.path(),
        dir.path(),
        &[],
        &[("DOCKER_CONFIG", &cfg_dir.path().display().to_string())],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(violations_of(&out), expected);

    // ~/.docker/config.json.
    let docker_home = tempfile::tempdir()?;
    std::fs::create_dir(docker_home.path().join(".docker"))?;
    std::fs::write(
        docker_home.path().join(".docker/config.json"),
        docker_config(&host),
    )?;
    let out = evaluate_private(docker_home.path(), dir.path(), &[], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(violations_of(&out), expected);

    // The same flags for a registry with a RegistryProfile in the files.
    let with_profile = tempfile::tempdir()?;
    demo_inputs(with_profile.path(), &host, true)?;
    let out = evaluate_private(
        home.path(),
        with_profile.path(),
        &["--docker-config", &cfg.display().to_string()],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(violations_of(&out), expected);

    // --username for the one registry the run reads (password on stdin).
    let out = tokio::task::spawn_blocking({
        let home = home.path().to_path_buf();
        let dir = dir.path().to_path_buf();
        move || {
            rw(
                &home,
                &[
                    "evaluate",
                    "-f",
                    &dir.display().to_string(),
                    "--plain-http",
                    "-o",
                    "json",
                    "--username",
                    USER,
                    "--password-stdin",
                ],
                &[],
                Some(format!("{PASSWORD}\n").as_bytes()),
            )
        }
    })
    .await?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(violations_of(&out), expected);
    assert_no_secret(&out);
    Ok(())
}

/// A `docker-credential-<name>` script on `PATH` answering for `host`; it appends the server
/// URL it was asked for to `asked`.
fn credential_helper(
    dir: &Path,
    name: &str,
    host: &str,
    asked: &Path,
) -> refwarden_testkit::Result<()> {
    let script = dir.join(format!("docker-credential-{name}"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\necho \"$server\" >> '{}'\nif [ \"$server\" = '{host}' ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"\nelse\n  echo 'credentials not found in native keychain'\n  exit 1\nfi\n",
            asked.display()
        ),
    )?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_helpers_on_path_are_asked_and_never_echoed() -> TestResult {
    let demo = private_demo().await?;
    let host = demo.reg.host();
    let dir = tempfile::tempdir()?;
    demo_inputs(dir.path(), &host, false)?;
    let bin = tempfile::tempdir()?;
    let asked = bin.path().join("asked.log");
    credential_helper(bin.path(), "rwtest", &host, &asked)?;
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for config in [
        json!({"credsStore": "rwtest"}),
        json!({"auths": {}, "credHelpers": {host.clone(): "rwtest"}}),
    ] {
        let home = tempfile::tempdir()?;
        std::fs::create_dir(home.path().join(".docker"))?;
        std::fs::write(home.path().join(".docker/config.json"), config.to_string())?;
        let out = evaluate_private(home.path(), dir.path(), &[], &[("PATH", &path)]).await;
        assert_eq!(
            out.status.code(),
            Some(1),
            "{config}: {}",
            text(&out.stderr)
        );
        assert_eq!(violations_of(&out).len(), 2);
        assert_no_secret(&out);
    }
    let asked_for = std::fs::read_to_string(&asked)?;
    assert!(asked_for.lines().all(|l| l == host), "{asked_for}");

    // A helper that fails: bad input naming the helper, its output not echoed.
    let broken = bin.path().join("docker-credential-broken");
    std::fs::write(
        &broken,
        format!("#!/bin/sh\necho 'token={PASSWORD}'\nexit 7\n"),
    )?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o755))?;
    let home = tempfile::tempdir()?;
    std::fs::create_dir(home.path().join(".docker"))?;
    std::fs::write(
        home.path().join(".docker/config.json"),
        r#"{"credsStore":"broken"}"#,
    )?;
    let out = evaluate_private(home.path(), dir.path(), &[], &[("PATH", &path)]).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("docker-credential-broken") && err.contains("status 7"),
        "{err}"
    );
    assert_no_secret(&out);
    // Missing from PATH.
    std::fs::write(
        home.path().join(".docker/config.json"),
        r#"{"credsStore":"nowhere"}"#,
    )?;
    let out = evaluate_private(home.path(), dir.path(), &[], &[("PATH", &path)]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("docker-credential-nowhere not found on PATH"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_only_when_asked_and_username_only_for_one_registry() -> TestResult {
    let demo = seed_demo().await?;
    let host = demo.reg.host();
    let dir = tempfile::tempdir()?;
    demo_inputs(dir.path(), &host, false)?;
    let home = tempfile::tempdir()?;
    let d = dir.path().display().to_string();
    // No --plain-http: HTTPS to a plain-HTTP registry is Unknown (3) with the hint.
    let out = rw_async(home.path().into(), strs(&["evaluate", "-f", &d]), vec![]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("TlsError") && stdout.contains("try --plain-http"),
        "{stdout}"
    );
    // --insecure-registry HOST.
    let out = rw_async(
        home.path().into(),
        strs(&["evaluate", "-f", &d, "--insecure-registry", &host]),
        vec![],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    // Another host named: still HTTPS for this one.
    let out = rw_async(
        home.path().into(),
        strs(&["evaluate", "-f", &d, "--insecure-registry", "127.0.0.2:1"]),
        vec![],
    )
    .await;
    assert_eq!(out.status.code(), Some(3));

    // --username with two registries in the run: bad input, pointing at docker login.
    let two = dir.path().join("other.yaml");
    std::fs::write(
        &two,
        std::fs::read_to_string(demo_dir().join("deployment-bare.yaml"))?
            .replace("REGISTRY_HOST", "127.0.0.2:5999")
            .replace("name: bare", "name: other"),
    )?;
    let out = tokio::task::spawn_blocking({
        let home = home.path().to_path_buf();
        let d = d.clone();
        move || {
            rw(
                &home,
                &[
                    "evaluate",
                    "-f",
                    &d,
                    "--plain-http",
                    "--username",
                    "u",
                    "--password-stdin",
                ],
                &[],
                Some(b"p\n"),
            )
        }
    })
    .await?;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--username is for one registry") && err.contains("docker login"),
        "{err}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 3. Outputs tools read
// ---------------------------------------------------------------------------------------

fn validator() -> PathBuf {
    refwarden_testkit::validate_report_script()
}

/// Validates `content` as `kind` (junit|sarif) against the published schema.
fn validate(kind: &str, content: &[u8]) -> TestResult {
    let schemas = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/schemas");
    if !schemas.join("junit-10.xsd").exists() {
        if std::env::var_os("CI").is_some() {
            return Err("the report schemas are missing: run scripts/install-deps.sh".into());
        }
        eprintln!("skipping schema validation: run scripts/install-deps.sh for .tools/schemas");
        return Ok(());
    }
    let mut child = Command::new("python3")
        .arg(validator())
        .arg(kind)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child.stdin.take().ok_or("stdin")?.write_all(content)?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(format!(
            "{kind} is not schema-valid: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        )
        .into());
    }
    Ok(())
}

/// Replaces what differs between runs (host, digests, time, version) with placeholders.
fn normalise(s: &str, demo: &Demo, dir: &Path) -> String {
    let mut s = s.replace(&demo.reg.host(), "REGISTRY_HOST");
    // The demo pushes the same image manifest to each repository, so one digest.
    for d in &demo.digests {
        s = s.replace(d.as_str(), "DIGEST");
    }
    s = s.replace(&dir.display().to_string(), "INPUT_DIR");
    s = s.replace(
        dir.display().to_string().trim_start_matches('/'),
        "INPUT_DIR",
    );
    s = s.replace(env!("CARGO_PKG_VERSION"), "VERSION");
    let re_ts = regex::Regex::new(r#"timestamp="[^"]+""#).expect("regex");
    let s = re_ts
        .replace_all(&s, r#"timestamp="TIMESTAMP""#)
        .into_owned();
    let re_fp = regex::Regex::new(r#""refwardenImage/v1": "[0-9a-f]{64}""#).expect("regex");
    re_fp
        .replace_all(&s, r#""refwardenImage/v1": "FINGERPRINT""#)
        .into_owned()
}

/// Compares with the golden file (`REFWARDEN_BLESS=1` rewrites it).
fn golden(name: &str, got: &str) -> TestResult {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/golden")
        .join(name);
    if std::env::var_os("REFWARDEN_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().ok_or("parent")?)?;
        std::fs::write(&path, got)?;
        return Ok(());
    }
    let want = std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: {e} (REFWARDEN_BLESS=1 writes it)", path.display()))?;
    assert_eq!(
        got,
        want,
        "{} differs (REFWARDEN_BLESS=1 rewrites it)",
        path.display()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junit_and_sarif_reports_validate_and_match_their_golden_files() -> TestResult {
    let demo = seed_demo().await?;
    let host = demo.reg.host();
    let dir = tempfile::tempdir()?;
    demo_inputs(dir.path(), &host, true)?;
    let home = tempfile::tempdir()?;
    let d = dir.path().display().to_string();
    let junit = rw_async(
        home.path().into(),
        strs(&["evaluate", "-f", &d, "-o", "junit"]),
        vec![],
    )
    .await;
    assert_eq!(junit.status.code(), Some(1), "{}", text(&junit.stderr));
    validate("junit", &junit.stdout)?;
    let x = text(&junit.stdout);
    // One test case per image × policy: the compliant one passes, violations fail.
    assert_eq!(x.matches("<testcase ").count(), 3, "{x}");
    assert_eq!(x.matches("<failure ").count(), 2, "{x}");
    golden("evaluate.junit.xml", &normalise(&x, &demo, dir.path()))?;

    let sarif = rw_async(
        home.path().into(),
        strs(&["evaluate", "-f", &d, "-o", "sarif"]),
        vec![],
    )
    .await;
    assert_eq!(sarif.status.code(), Some(1), "{}", text(&sarif.stderr));
    validate("sarif", &sarif.stdout)?;
    let v: Value = serde_json::from_slice(&sarif.stdout)?;
    let results = v["runs"][0]["results"].as_array().ok_or("results")?;
    assert_eq!(results.len(), 2);
    // Located at the Deployment's file.
    assert!(
        results.iter().all(
            |r| r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .is_some_and(|u| u.ends_with("deployment-bare.yaml")
                    || u.ends_with("deployment-sig-only.yaml"))
        ),
        "{v}"
    );
    golden(
        "evaluate.sarif.json",
        &normalise(&text(&sarif.stdout), &demo, dir.path()),
    )?;

    // Unknown images are skipped test cases (registry refuses: closed port).
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let gone = tempfile::tempdir()?;
    demo_inputs(gone.path(), &format!("127.0.0.1:{port}"), false)?;
    let out = rw_async(
        home.path().into(),
        strs(&[
            "evaluate",
            "-f",
            &gone.path().display().to_string(),
            "--plain-http",
            "--timeout-seconds",
            "2",
            "-o",
            "junit",
        ]),
        vec![],
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    validate("junit", &out.stdout)?;
    let x = text(&out.stdout);
    assert_eq!(x.matches("<skipped ").count(), 3, "{x}");
    assert!(!x.contains("<failure "));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_selections_yaml_and_json_error_objects() -> TestResult {
    let demo = seed_demo().await?;
    let host = demo.reg.host();
    let home = tempfile::tempdir()?;
    let h = home.path().to_path_buf();
    let image = format!("{host}/demo/complete:1.0");
    // discover --format jsonpath: the digests, one per line, as `oras discover --format` users script.
    let out = rw_async(
        h.clone(),
        strs(&[
            "discover",
            &image,
            "--plain-http",
            "--format",
            "jsonpath=$.referrers[*].digest",
        ]),
        vec![],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("sha256:") && l.len() == 71),
        "{lines:?}"
    );
    // kubectl's form.
    let out = rw_async(
        h.clone(),
        strs(&[
            "discover",
            &image,
            "--plain-http",
            "-o",
            "jsonpath={.referrers[*].format}",
        ]),
        vec![],
    )
    .await;
    assert_eq!(text(&out.stdout).lines().count(), 2);
    // -o yaml parses to the same as -o json.
    let j = rw_async(
        h.clone(),
        strs(&["discover", &image, "--plain-http", "-o", "json"]),
        vec![],
    )
    .await;
    let y = rw_async(
        h.clone(),
        strs(&["discover", &image, "--plain-http", "-o", "yaml"]),
        vec![],
    )
    .await;
    let jv: Value = serde_json::from_slice(&j.stdout)?;
    let yv: Value = serde_norway::from_slice(&y.stdout)?;
    assert_eq!(jv["referrers"], yv["referrers"]);
    // probe --format jsonpath and -o yaml.
    let url = demo.reg.url();
    let out = rw_async(
        h.clone(),
        strs(&[
            "probe",
            &url,
            "--plain-http",
            "-r",
            "demo/complete",
            "-t",
            "1.0",
            "--no-write-probes",
            "--format",
            "jsonpath=$.capabilities.referrersApi.state",
        ]),
        vec![],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Unsupported\n");
    let out = rw_async(
        h.clone(),
        strs(&[
            "probe",
            &url,
            "--plain-http",
            "-r",
            "demo/complete",
            "-t",
            "1.0",
            "--no-write-probes",
            "-o",
            "yaml",
        ]),
        vec![],
    )
    .await;
    let yv: Value = serde_norway::from_slice(&out.stdout)?;
    assert_eq!(yv["capabilities"]["referrersApi"]["state"], "Unsupported");
    // lifecycle -o yaml.
    let f = home.path().join("dist.yaml");
    std::fs::write(
        &f,
        "version: 2.8.3\ngarbageCollection:\n  deleteUntagged: true\n",
    )?;
    let out = rw(
        &h,
        &[
            "lifecycle",
            "analyze",
            "--distribution-config",
            &f.display().to_string(),
            "-o",
            "yaml",
        ],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let yv: Value = serde_norway::from_slice(&out.stdout)?;
    assert!(yv["findings"].as_array().is_some_and(|a| !a.is_empty()));

    // Every -o json failure prints the error object on stdout.
    let bad_policy = home.path().join("bad.yaml");
    std::fs::write(&bad_policy, "kind: [")?;
    std::fs::write(&f, "garbageCollection:\n  deleteUntaged: true\n")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            strs(&[
                "evaluate",
                "-f",
                &bad_policy.display().to_string(),
                "-o",
                "json",
            ]),
            2,
            "BadInput",
        ),
        (
            strs(&["discover", "Not A Reference", "-o", "json"]),
            2,
            "BadInput",
        ),
        (
            strs(&[
                "discover",
                &format!("127.0.0.1:{port}/a:1"),
                "--plain-http",
                "-o",
                "json",
            ]),
            1,
            "RegistryError",
        ),
        (
            strs(&["probe", "http://127.0.0.1:5000", "-o", "json"]),
            2,
            "BadInput",
        ),
        (
            strs(&[
                "probe",
                &format!("http://127.0.0.1:{port}"),
                "--plain-http",
                "-o",
                "json",
            ]),
            1,
            "RegistryError",
        ),
        (
            strs(&[
                "lifecycle",
                "analyze",
                "--distribution-config",
                &f.display().to_string(),
                "-o",
                "json",
            ]),
            2,
            "BadInput",
        ),
    ];
    for (args, code, reason) in cases {
        let out = rw_async(h.clone(), args.clone(), vec![]).await;
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("{args:?}: stdout is not JSON ({e}): {}", text(&out.stdout)))?;
        assert_eq!(v["error"]["exitCode"], code, "{args:?}");
        assert_eq!(v["error"]["reason"], reason, "{args:?}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    Ok(())
}

/// Every object key a structured output prints, recursively (keys of free-form maps such as
/// annotations are data, not field names, and are not descended into).
fn field_names(v: &Value, out: &mut std::collections::BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                out.insert(k.clone());
                if !matches!(k.as_str(), "annotations" | "labels" | "properties") {
                    field_names(v, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| field_names(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_field_names_are_the_documented_ones() -> TestResult {
    let demo = seed_demo().await?;
    let host = demo.reg.host();
    let home = tempfile::tempdir()?;
    let h = home.path().to_path_buf();
    let dir = tempfile::tempdir()?;
    demo_inputs(dir.path(), &host, true)?;
    let dist = dir.path().join("dist.yaml");
    std::fs::write(
        &dist,
        "version: 2.8.3\ngarbageCollection:\n  deleteUntagged: true\n",
    )?;
    let runs: Vec<(&str, Vec<String>)> = vec![
        (
            "probe",
            strs(&[
                "probe",
                &demo.reg.url(),
                "--plain-http",
                "-r",
                "demo/complete",
                "-t",
                "1.0",
                "-o",
                "json",
            ]),
        ),
        (
            "discover",
            strs(&[
                "discover",
                &format!("{host}/demo/complete:1.0"),
                "--plain-http",
                "-o",
                "json",
            ]),
        ),
        (
            "evaluate",
            strs(&[
                "evaluate",
                "-f",
                &dir.path().display().to_string(),
                "-o",
                "json",
            ]),
        ),
        (
            "lifecycle",
            strs(&[
                "lifecycle",
                "analyze",
                "--distribution-config",
                &dist.display().to_string(),
                "-o",
                "json",
            ]),
        ),
        (
            "error",
            strs(&["discover", "Not A Reference", "-o", "json"]),
        ),
    ];
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cli-output.md"))?;
    let mut undocumented = Vec::new();
    for (what, args) in runs {
        let out = rw_async(h.clone(), args.clone(), vec![]).await;
        let v: Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("{what}: not JSON ({e}): {}", text(&out.stderr)))?;
        let mut names = std::collections::BTreeSet::new();
        field_names(&v, &mut names);
        assert!(names.len() > 3, "{what}: {names:?}");
        undocumented.extend(
            names
                .into_iter()
                .filter(|n| !doc.contains(&format!("`{n}`")))
                .map(|n| format!("{what}: {n}")),
        );
    }
    assert!(
        undocumented.is_empty(),
        "fields printed but not in docs/cli-output.md: {undocumented:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 4. People
// ---------------------------------------------------------------------------------------

#[test]
fn completions_for_bash_zsh_and_fish() -> TestResult {
    let home = tempfile::tempdir()?;
    for shell in ["bash", "zsh", "fish"] {
        let out = rw(home.path(), &["completions", shell], &[], None);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let s = text(&out.stdout);
        assert!(
            s.contains("refwarden") && s.contains("evaluate") && s.contains("lifecycle"),
            "{shell}"
        );
    }
    assert_eq!(
        rw(home.path(), &["completions", "tcsh"], &[], None)
            .status
            .code(),
        Some(2)
    );
    Ok(())
}

/// Runs refwarden under a pseudo-terminal (`script`), returning what it wrote.
fn under_pty(home: &Path, args: &str, no_color: bool) -> String {
    let out = Command::new("script")
        .args([
            "-qec",
            &format!("{} {args}", env!("CARGO_BIN_EXE_refwarden")),
            "/dev/null",
        ])
        .env("HOME", home)
        .env_remove("REFWARDEN_LOG")
        .env_remove("REFWARDEN_LOG_FORMAT")
        .env(
            if no_color {
                "NO_COLOR"
            } else {
                "REFWARDEN_UNUSED"
            },
            "1",
        )
        .env_remove(if no_color {
            "REFWARDEN_UNUSED"
        } else {
            "NO_COLOR"
        })
        .stdin(Stdio::null())
        .output()
        .expect("script runs");
    text(&out.stdout)
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() -> TestResult {
    let home = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let args = format!("--log debug probe http://127.0.0.1:{port} --plain-http --no-write-probes");
    let on_tty = under_pty(home.path(), &args, false);
    assert!(
        on_tty.contains("\u{1b}["),
        "logs on a terminal are coloured: {on_tty}"
    );
    let no_color = under_pty(home.path(), &args, true);
    assert!(
        no_color.contains("DEBUG") || no_color.contains("error:"),
        "{no_color}"
    );
    assert!(!no_color.contains("\u{1b}["), "NO_COLOR: {no_color}");
    let piped = rw(home.path(), &args.split(' ').collect::<Vec<_>>(), &[], None);
    assert!(
        !text(&piped.stderr).contains("\u{1b}["),
        "piped stderr is plain"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_hints_and_what_violations_show() -> TestResult {
    let demo = seed_demo().await?;
    let host = demo.reg.host();
    let home = tempfile::tempdir()?;
    let dir = tempfile::tempdir()?;
    demo_inputs(dir.path(), &host, true)?;
    // The table: tag and digest, pods (replicas) and the top-level workload.
    let out = rw_async(
        home.path().into(),
        strs(&["evaluate", "-f", &dir.path().display().to_string()]),
        vec![],
    )
    .await;
    let t = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains(&format!(
            "MISSING signature,sbom  {host}/demo/bare:1.0@{}",
            demo.digests[2]
        )),
        "{t}"
    );
    assert!(t.contains("run by 2 pod(s) of demo/Deployment/bare"), "{t}");
    assert!(t.contains("signature-and-sbom  False      6     3"), "{t}");

    // http:// in an image reference.
    let out = rw(
        home.path(),
        &["discover", &format!("http://{host}/demo/bare:1.0")],
        &[],
        None,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("no scheme") && err.contains("--plain-http"),
        "{err}"
    );
    // TLS to a plain-HTTP registry.
    let out = rw(
        home.path(),
        &["discover", &format!("{host}/demo/bare:1.0")],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .contains("hint: the registry answered TLS with plain HTTP: try --plain-http")
    );

    // A run longer than a couple of seconds says so on stderr (not a terminal: plain lines).
    let proxy = refwarden_testkit::faults::FaultProxy::in_front_of(&demo.reg.url())?;
    proxy.set_rules(vec![refwarden_testkit::faults::Rule::any(
        refwarden_testkit::faults::Action::NoResponse,
    )]);
    let slow = tempfile::tempdir()?;
    demo_inputs(slow.path(), &proxy.host(), false)?;
    let out = rw_async(
        home.path().into(),
        strs(&[
            "evaluate",
            "-f",
            &slow.path().display().to_string(),
            "--plain-http",
            "--timeout-seconds",
            "3",
        ]),
        vec![],
    )
    .await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("refwarden: evaluating…"), "{err}");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 5. Exit codes, per command, as documented in each --help
// ---------------------------------------------------------------------------------------

#[test]
fn every_command_documents_its_exit_codes_in_help() -> TestResult {
    let home = tempfile::tempdir()?;
    for cmd in [
        vec!["probe"],
        vec!["discover"],
        vec!["evaluate"],
        vec!["lifecycle", "analyze"],
        vec!["controller"],
        vec!["crds"],
        vec!["completions"],
    ] {
        let mut args = cmd.clone();
        args.push("--help");
        let out = rw(home.path(), &args, &[], None);
        assert_eq!(out.status.code(), Some(0), "{cmd:?}");
        assert!(
            text(&out.stdout).contains("Exit codes:"),
            "{cmd:?} --help: {}",
            text(&out.stdout)
        );
    }
    let out = rw(home.path(), &["lifecycle", "analyze", "--help"], &[], None);
    assert!(text(&out.stdout).contains("3 the rules could not be read"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_of_every_command() -> TestResult {
    let demo = seed_demo().await?;
    let host = demo.reg.host();
    let url = demo.reg.url();
    let home = tempfile::tempdir()?;
    let h = home.path().to_path_buf();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let code = |o: &Output| o.status.code();

    // probe: 0 reachable, 1 unreachable, 2 bad arguments.
    let probe = |extra: &[&str]| {
        let mut a = strs(&["probe"]);
        a.extend(strs(extra));
        a
    };
    assert_eq!(
        code(
            &rw_async(
                h.clone(),
                probe(&[
                    &url,
                    "--plain-http",
                    "-r",
                    "demo/complete",
                    "-t",
                    "1.0",
                    "--no-write-probes"
                ]),
                vec![]
            )
            .await
        ),
        Some(0)
    );
    assert_eq!(
        code(
            &rw_async(
                h.clone(),
                probe(&[&format!("http://127.0.0.1:{closed}"), "--plain-http"]),
                vec![]
            )
            .await
        ),
        Some(1)
    );
    assert_eq!(
        code(&rw_async(h.clone(), probe(&["ftp://x"]), vec![]).await),
        Some(2)
    );

    // discover: 0 answered, 1 registry error, 2 bad input.
    let image = format!("{host}/demo/complete:1.0");
    assert_eq!(
        code(
            &rw_async(
                h.clone(),
                strs(&["discover", &image, "--plain-http"]),
                vec![]
            )
            .await
        ),
        Some(0)
    );
    assert_eq!(
        code(
            &rw_async(
                h.clone(),
                strs(&["discover", &format!("{host}/demo/none:1.0"), "--plain-http"]),
                vec![]
            )
            .await
        ),
        Some(1)
    );
    assert_eq!(
        code(&rw_async(h.clone(), strs(&["discover", "UPPER/Case:x"]), vec![]).await),
        Some(2)
    );

    // evaluate: 0 compliant, 1 violations, 2 bad input, 3 Unknown.
    let all = tempfile::tempdir()?;
    demo_inputs(all.path(), &host, true)?;
    let only_complete = tempfile::tempdir()?;
    demo_inputs(only_complete.path(), &host, true)?;
    std::fs::remove_file(only_complete.path().join("deployment-bare.yaml"))?;
    std::fs::remove_file(only_complete.path().join("deployment-sig-only.yaml"))?;
    let gone = tempfile::tempdir()?;
    demo_inputs(gone.path(), &format!("127.0.0.1:{closed}"), false)?;
    for (dir, extra, want) in [
        (only_complete.path(), vec![], 0),
        (all.path(), vec![], 1),
        (
            gone.path(),
            vec!["--plain-http", "--timeout-seconds", "2"],
            3,
        ),
    ] {
        let mut a = strs(&["evaluate", "-f", &dir.display().to_string()]);
        a.extend(strs(&extra));
        let out = rw_async(h.clone(), a, vec![]).await;
        assert_eq!(code(&out), Some(want), "{}", text(&out.stderr));
    }
    assert_eq!(
        code(&rw(
            &h,
            &["evaluate", "-f", "/nonexistent/x.yaml"],
            &[],
            None
        )),
        Some(2)
    );

    // lifecycle analyze: 0 no findings, 1 findings, 2 bad input, 3 AWS unavailable.
    let f = home.path().join("dist.yaml");
    std::fs::write(
        &f,
        "version: 2.8.3\ngarbageCollection:\n  deleteUntagged: false\n",
    )?;
    let fs = f.display().to_string();
    assert_eq!(
        code(&rw(
            &h,
            &["lifecycle", "analyze", "--distribution-config", &fs],
            &[],
            None
        )),
        Some(0)
    );
    std::fs::write(
        &f,
        "version: 2.8.3\ngarbageCollection:\n  deleteUntagged: true\n",
    )?;
    assert_eq!(
        code(&rw(
            &h,
            &["lifecycle", "analyze", "--distribution-config", &fs],
            &[],
            None
        )),
        Some(1)
    );
    assert_eq!(
        code(&rw(
            &h,
            &[
                "lifecycle",
                "analyze",
                "--distribution-config",
                "/nonexistent"
            ],
            &[],
            None
        )),
        Some(2)
    );
    let aws = [
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{closed}")),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "secret-example".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ("AWS_MAX_ATTEMPTS", "1".to_string()),
    ];
    let out = rw_async(
        h.clone(),
        strs(&[
            "lifecycle",
            "analyze",
            "--ecr-repository",
            "app",
            "--ecr-registry",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        ]),
        aws.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
    .await;
    let err = text(&out.stderr);
    assert_eq!(code(&out), Some(3), "{err}");
    assert!(
        !err.contains("DispatchFailure {") && !err.contains("ConnectorError {"),
        "no Debug dump: {err}"
    );

    // crds: 0 printed / written, 1 a file cannot be written, 2 bad --output-dir.
    assert_eq!(code(&rw(&h, &["crds"], &[], None)), Some(0));
    let out_dir = tempfile::tempdir()?;
    assert_eq!(
        code(&rw(
            &h,
            &[
                "crds",
                "--output-dir",
                &out_dir.path().display().to_string()
            ],
            &[],
            None
        )),
        Some(0)
    );
    let blocked = tempfile::tempdir()?;
    std::fs::create_dir(blocked.path().join("referrerpolicies.refwarden.dev.yaml"))?;
    assert_eq!(
        code(&rw(
            &h,
            &[
                "crds",
                "--output-dir",
                &blocked.path().display().to_string()
            ],
            &[],
            None
        )),
        Some(1)
    );
    let file = home.path().join("a-file");
    std::fs::write(&file, "x")?;
    assert_eq!(
        code(&rw(
            &h,
            &[
                "crds",
                "--output-dir",
                &file.join("sub").display().to_string()
            ],
            &[],
            None
        )),
        Some(2)
    );

    // completions: 0, 2.
    assert_eq!(code(&rw(&h, &["completions", "bash"], &[], None)), Some(0));
    assert_eq!(code(&rw(&h, &["completions"], &[], None)), Some(2));

    // controller: 1 without a usable kubeconfig (0 after SIGTERM: tests/emulator_operator.rs).
    assert_eq!(
        code(&rw(
            &h,
            &["controller", "--listen-addr", "127.0.0.1:0"],
            &[],
            None
        )),
        Some(1)
    );
    Ok(())
}
