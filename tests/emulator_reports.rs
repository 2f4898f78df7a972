//! The emulator tier for `--reports=openreports`: the real `refwarden controller` binary (as its
//! ServiceAccount, with `config/rbac` + `config/openreports`) against the Kubernetes API emulator
//! and the in-process registry.
//!
//! The OpenReports CRDs are not refwarden's and cannot be installed from a package here, so:
//! - the emulator serves `reports.openreports.io` / `clusterreports.openreports.io` with a schema
//!   built from refwarden's own Rust types ([`refwarden::openreports::crd_from_types`]): a field the
//!   types do not declare would be pruned, and every write is compared with what was stored;
//! - every stored object is checked against [`openreports_schema`], this file's transcription of
//!   the constraints of the published CRDs (see there for the upstream files and commits).
//!
//! Every wait is bounded. Skipped without python3/PyYAML, except under `CI=true`.

use std::time::{Duration, Instant};

use refwarden_testkit::emulator::*;
use refwarden_testkit::{OciRegistry, Quirks, SeedAuth, Seeder};
use serde_json::{Value, json};

const SIG: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
const SHORT: Duration = Duration::from_secs(10);
const MEDIUM: Duration = Duration::from_secs(20);
const REPORTS: &str = "/apis/openreports.io/v1alpha1";

// ---------------------------------------------------------------------------------------------
// The OpenReports schema, transcribed

/// The constraints of the published OpenReports CRDs, written out by hand (descriptions left
/// out) from `openreports/reports-api`:
/// `crd/openreports.io/v1alpha1/openreports.io_clusterreports.yaml` at commit
/// `6e36367da1fba084d29385a3685ced74809ead6e` and `chart/templates/openreports.io_reports.yaml`
/// at commit `d63112a8e308b8b7820a02e113438c883d792dc8` (`Report` and `ClusterReport` declare
/// the same schema): the declared fields and their types, enums, `required` lists, integer
/// formats, `additionalProperties` of `properties`/`matchLabels`. Anything else is undeclared
/// (the API server would prune it).
fn openreports_schema() -> Value {
    let s = || json!({"type": "string"});
    let object_reference = json!({"type": "object", "properties": {
        "apiVersion": s(), "fieldPath": s(), "kind": s(), "name": s(), "namespace": s(),
        "resourceVersion": s(), "uid": s(),
    }});
    let label_selector = json!({"type": "object", "properties": {
        "matchExpressions": {"type": "array", "items": {"type": "object",
            "required": ["key", "operator"],
            "properties": {"key": s(), "operator": s(),
                           "values": {"type": "array", "items": s()}}}},
        "matchLabels": {"type": "object", "additionalProperties": s()},
    }});
    let results = ["pass", "fail", "warn", "error", "skip"];
    let int = || json!({"type": "integer"});
    json!({"type": "object", "properties": {
        "apiVersion": s(), "kind": s(), "metadata": {"type": "object"},
        "source": s(),
        "scope": object_reference.clone(),
        "scopeSelector": label_selector.clone(),
        "configuration": {"type": "object", "required": ["limits"], "properties": {
            "limits": {"type": "object", "properties": {
                "maxResults": int(),
                "statusFilter": {"type": "array", "items": {"type": "string", "enum": results}},
            }},
        }},
        "summary": {"type": "object", "properties": {
            "error": int(), "fail": int(), "pass": int(), "skip": int(), "warn": int(),
        }},
        "results": {"type": "array", "items": {"type": "object", "required": ["policy"],
            "properties": {
                "category": s(), "message": s(), "policy": s(), "rule": s(), "source": s(),
                "properties": {"type": "object", "additionalProperties": s()},
                "resourceSelector": label_selector,
                "resources": {"type": "array", "items": object_reference},
                "result": {"type": "string", "enum": results},
                "scored": {"type": "boolean"},
                "severity": {"type": "string",
                             "enum": ["critical", "high", "low", "medium", "info"]},
                "timestamp": {"type": "object", "required": ["nanos", "seconds"], "properties": {
                    "nanos": {"type": "integer", "format": "int32"},
                    "seconds": {"type": "integer", "format": "int64"},
                }},
            }}},
    }})
}

/// Every violation of `schema` in `value` (types, enums, required, undeclared fields, int32).
fn violations_of(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    let ty = schema["type"].as_str().unwrap_or_default();
    let ok = match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        _ => true,
    };
    if !ok {
        out.push(format!("{path}: {value} is not of type {ty}"));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        out.push(format!("{path}: {value} is not one of {allowed:?}"));
    }
    if schema["format"] == "int32"
        && value
            .as_i64()
            .is_none_or(|n| i32::try_from(n).is_err() || n < 0)
    {
        out.push(format!("{path}: {value} is not a (non-negative) int32"));
    }
    match value {
        Value::Object(map) => {
            for r in schema["required"].as_array().into_iter().flatten() {
                if let Some(k) = r.as_str()
                    && !map.contains_key(k)
                {
                    out.push(format!("{path}.{k}: Required value"));
                }
            }
            if path.is_empty()
                || schema.get("properties").is_some()
                || schema.get("additionalProperties").is_some()
            {
                for (k, v) in map {
                    let p = format!("{path}.{k}");
                    if path.is_empty() && k == "metadata" {
                        continue;
                    }
                    if let Some(s) = schema["properties"].get(k) {
                        violations_of(s, v, &p, out);
                    } else if let Some(a) = schema.get("additionalProperties") {
                        violations_of(a, v, &p, out);
                    } else {
                        out.push(format!("{p}: field not declared in schema"));
                    }
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                violations_of(&schema["items"], v, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn validate(obj: &Value) -> Vec<String> {
    let mut out = Vec::new();
    violations_of(&openreports_schema(), obj, "", &mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// The environment

#[derive(Clone, Debug)]
struct Img {
    digest: String,
    image: String,
    image_id: String,
}

async fn push(
    reg: &OciRegistry,
    seeder: &Seeder,
    repo: &str,
) -> (Img, refwarden_testkit::PushedImage) {
    let pushed = seeder
        .push_image(repo, "1.0")
        .await
        .expect("pushing an image");
    (
        Img {
            digest: pushed.digest.clone(),
            image: format!("{}/{repo}:1.0", reg.host()),
            image_id: format!("{}/{repo}@{}", reg.host(), pushed.digest),
        },
        pushed,
    )
}

struct Env {
    controllers: Vec<Controller>,
    proxies: Vec<RecordingProxy>,
    emu: Emulator,
    reg: OciRegistry,
    signed: Img,
    bare: Img,
    started: Instant,
}

impl Env {
    /// Registry with `emu/signed:1.0` (signed) and `emu/bare:1.0`; the emulator with refwarden's
    /// CRDs, RBAC (`config/rbac` and `config/openreports`), the RegistryProfile `local`, and —
    /// when `openreports_crds` — the OpenReports CRDs built from refwarden's types.
    async fn start(openreports_crds: bool) -> Option<Env> {
        Self::start_with(openreports_crds, None).await
    }

    /// [`Env::start`] with the emulator's `--state-dir`.
    async fn start_with(
        openreports_crds: bool,
        state_dir: Option<&std::path::Path>,
    ) -> Option<Env> {
        if !availability() {
            return None;
        }
        refwarden_testkit::init_tracing();
        let started = Instant::now();
        let reg = OciRegistry::start(Quirks::default()).expect("starting the OCI registry");
        let seeder = Seeder::new(&reg.url(), SeedAuth::None).expect("seeder");
        let emu = Emulator::start(EmulatorOptions {
            state_dir: state_dir.map(|d| d.to_path_buf()),
            ..EmulatorOptions::default()
        })
        .await
        .expect("starting the emulator");
        let mut rbac = Vec::new();
        for dir in ["config/rbac", "config/openreports"] {
            for f in yaml_files(&root().join(dir)).expect("listing RBAC") {
                rbac.extend(load_yaml_docs(&f).expect("reading RBAC"));
            }
        }
        emu.install_refwarden(&rbac)
            .await
            .expect("installing CRDs, namespace and RBAC");
        let (signed, signed_pushed) = push(&reg, &seeder, "emu/signed").await;
        let (bare, _) = push(&reg, &seeder, "emu/bare").await;
        seeder
            .push_artifact(
                "emu/signed",
                Some(&signed_pushed.subject()),
                SIG,
                b"sig",
                None,
            )
            .await
            .expect("pushing the signature");
        let env = Env {
            controllers: Vec::new(),
            proxies: Vec::new(),
            emu,
            reg,
            signed,
            bare,
            started,
        };
        env.emu
            .apply(&json!({
                "apiVersion": "refwarden.dev/v1alpha1", "kind": "RegistryProfile",
                "metadata": {"name": "local"},
                "spec": {"registryUrl": env.reg.url(), "plainHttp": true,
                         "testRepository": "emu/signed", "testTag": "1.0"},
            }))
            .await
            .expect("applying the RegistryProfile");
        if openreports_crds {
            env.install_openreports_crds().await;
        }
        Some(env)
    }

    async fn install_openreports_crds(&self) {
        for kind in ["Report", "ClusterReport"] {
            self.emu
                .apply(&refwarden::openreports::crd_from_types(kind))
                .await
                .expect("applying an OpenReports CRD");
        }
        wait_until(SHORT, "the OpenReports API to be served", || async {
            match self.emu.get(&format!("{REPORTS}/clusterreports")).await {
                Ok(Some(_)) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }

    async fn namespace(&self, name: &str) {
        self.emu
            .apply(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
            .await
            .expect("creating a namespace");
    }

    async fn policy(&self, require: Value) {
        self.emu
            .apply(&json!({
                "apiVersion": "refwarden.dev/v1alpha1", "kind": "ReferrerPolicy",
                "metadata": {"name": "p"}, "spec": {"require": require},
            }))
            .await
            .expect("applying the ReferrerPolicy");
    }

    async fn pod(&self, ns: &str, name: &str, img: &Img, owner: Option<(&str, &str)>) {
        let mut pod = RunningPod::new(ns, name, &img.image, &img.image_id);
        pod.owner = owner.map(|(k, n)| (k.to_string(), n.to_string()));
        self.emu
            .create_running_pod(&pod)
            .await
            .expect("creating a running pod");
    }

    /// Starts the controller with `--reports=openreports` behind a recording proxy.
    async fn start_controller(&mut self) {
        let proxy = RecordingProxy::start(&self.emu).expect("recording proxy");
        let kubeconfig = self
            .emu
            .write_kubeconfig("proxied.kubeconfig", Some(&proxy.url()), SA_TOKEN)
            .expect("kubeconfig");
        self.proxies.push(proxy);
        let opts =
            ControllerOptions::new(env!("CARGO_BIN_EXE_refwarden"), "refwarden-0", &kubeconfig)
                .insecure_registry(&self.reg.host())
                .arg("--reports=openreports");
        let mut c = Controller::start(opts).expect("starting refwarden controller");
        c.wait_ready(MEDIUM).await.expect("controller ready");
        self.controllers.push(c);
    }

    /// Applies and deletes of OpenReports objects sent so far (path, body).
    fn report_writes(&self) -> Vec<RecordedWrite> {
        self.proxies[0]
            .writes()
            .into_iter()
            .filter(|w| w.path.contains("/openreports.io/"))
            .collect()
    }

    async fn get_policy(&self) -> Option<Value> {
        self.emu.get(&policy_path("p")).await.expect("GET policy")
    }

    /// Waits until the policy's `ReportsWritten` condition satisfies `pred`.
    async fn wait_condition(
        &self,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let pred = &pred;
        wait_until(MEDIUM, what, || async move {
            let p = self.get_policy().await.ok_or("no policy")?;
            let c = condition(&p["status"], "ReportsWritten")
                .cloned()
                .unwrap_or(Value::Null);
            if pred(&c) {
                Ok(p)
            } else {
                Err(format!("ReportsWritten {c}; status {}", p["status"]))
            }
        })
        .await
    }

    /// Waits until the reports of policy `p` satisfy `pred` (namespace → Report, and the
    /// ClusterReport).
    async fn wait_reports(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&[Value], Option<&Value>) -> bool,
    ) -> Result<(Vec<Value>, Option<Value>), String> {
        let pred = &pred;
        wait_until(timeout, what, || async move {
            let (reports, cluster) = self.reports().await?;
            if pred(&reports, cluster.as_ref()) {
                Ok((reports, cluster))
            } else {
                Err(format!(
                    "{} Report(s) {:?}, ClusterReport summary {}",
                    reports.len(),
                    reports
                        .iter()
                        .map(|r| (r["metadata"]["namespace"].clone(), r["summary"].clone()))
                        .collect::<Vec<_>>(),
                    cluster
                        .as_ref()
                        .map(|c| c["summary"].clone())
                        .unwrap_or(Value::Null)
                ))
            }
        })
        .await
    }

    async fn reports(&self) -> Result<(Vec<Value>, Option<Value>), String> {
        let reports = self
            .emu
            .list(&format!("{REPORTS}/reports"))
            .await
            .map_err(|e| e.to_string())?;
        let cluster = self
            .emu
            .get(&format!("{REPORTS}/clusterreports/refwarden-p"))
            .await
            .map_err(|e| e.to_string())?;
        Ok((reports, cluster))
    }

    /// Waits until the controller has run `n` policy reconciles and has none in flight.
    async fn wait_reconciled(&self, n: f64) -> Result<(), String> {
        let ctl = &self.controllers[0];
        wait_until(SHORT, "policy reconciles", || async {
            let m = ctl.samples().await.map_err(|e| e.to_string())?;
            let started = m
                .value("refwarden_reconciles_total", &[("kind", "referrerpolicy")])
                .unwrap_or(0.0);
            let done = m
                .value(
                    "refwarden_reconcile_duration_seconds_count",
                    &[("kind", "referrerpolicy")],
                )
                .unwrap_or(0.0);
            if started >= n && started == done {
                Ok(())
            } else {
                Err(format!("{started} started, {done} done"))
            }
        })
        .await
    }

    async fn reconciles(&self) -> f64 {
        self.controllers[0]
            .samples()
            .await
            .expect("metrics")
            .value("refwarden_reconciles_total", &[("kind", "referrerpolicy")])
            .unwrap_or(0.0)
    }

    async fn check_rbac(&self, failures: &mut Vec<String>) {
        let entries = self.emu.authz(0).await.expect("authz log");
        let denied: Vec<String> = entries
            .iter()
            .filter(|e| e.user == SA_USER && !e.allowed)
            .map(|e| e.line())
            .collect();
        if !denied.is_empty() {
            failures.push(format!("denied by RBAC:\n  {}", denied.join("\n  ")));
        }
    }

    async fn finish(self, scenario: &str, mut failures: Vec<String>) {
        self.check_rbac(&mut failures).await;
        eprintln!(
            "[{scenario}] finished in {:.1}s",
            self.started.elapsed().as_secs_f64()
        );
        if !failures.is_empty() {
            panic!(
                "[{scenario}] {} check(s) failed:\n - {}",
                failures.len(),
                failures.join("\n - ")
            );
        }
    }
}

fn condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn report_in<'a>(reports: &'a [Value], ns: &str) -> Option<&'a Value> {
    reports.iter().find(|r| r["metadata"]["namespace"] == ns)
}

fn check(failures: &mut Vec<String>, ok: bool, msg: impl Into<String>) {
    if !ok {
        let msg = msg.into();
        eprintln!("CHECK FAILED: {msg}");
        failures.push(msg);
    }
}

fn signature() -> Value {
    json!([{"name": "signature", "preset": "signature"}])
}

// ---------------------------------------------------------------------------------------------
// The transcribed schema check itself

#[test]
fn the_transcribed_schema_rejects_what_the_published_crd_rejects() {
    let good = json!({"apiVersion": "openreports.io/v1alpha1", "kind": "Report",
        "metadata": {"name": "x", "anything": 1}, "source": "s",
        "summary": {"pass": 1}, "results": [{"policy": "p", "result": "pass",
        "timestamp": {"seconds": 1, "nanos": 0}, "properties": {"a": "b"},
        "resources": [{"kind": "Pod", "name": "x"}]}]});
    assert_eq!(validate(&good), Vec::<String>::new());
    let bad = json!({"source": 1, "extra": true, "configuration": {},
        "summary": {"pass": "1"}, "results": [{"result": "ok", "severity": "urgent",
        "timestamp": {"seconds": 1, "nanos": -1}, "properties": {"a": 1},
        "resources": [{"kind": "Pod", "podName": "x"}], "scored": "yes"}]});
    let v = validate(&bad);
    for want in [
        ".source: 1 is not of type string",
        ".extra: field not declared in schema",
        ".configuration.limits: Required value",
        ".summary.pass: \"1\" is not of type integer",
        ".results[0].policy: Required value",
        ".results[0].result: \"ok\" is not one of",
        ".results[0].severity: \"urgent\" is not one of",
        ".results[0].timestamp.nanos: -1 is not a (non-negative) int32",
        ".results[0].properties.a: 1 is not of type string",
        ".results[0].resources[0].podName: field not declared in schema",
        ".results[0].scored: \"yes\" is not of type boolean",
    ] {
        assert!(
            v.iter().any(|x| x.starts_with(want)),
            "{want} not in {v:#?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/// Reports on: a Report per namespace and the ClusterReport appear, validate, keep every field
/// written; an unchanged re-evaluation writes nothing; compliance changes rewrite only what
/// changed; deleting the policy deletes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_appear_validate_follow_changes_and_go_with_the_policy() {
    let Some(mut env) = Env::start(true).await else {
        return;
    };
    let mut f = Vec::new();
    env.namespace("team-a").await;
    env.policy(signature()).await;
    let (signed, bare) = (env.signed.clone(), env.bare.clone());
    env.pod("default", "signed", &signed, None).await;
    env.pod("default", "bare", &bare, None).await;
    env.pod("team-a", "web-0", &signed, Some(("StatefulSet", "web")))
        .await;
    env.pod("team-a", "web-1", &signed, Some(("StatefulSet", "web")))
        .await;
    env.start_controller().await;

    let first = env
        .wait_reports(
            MEDIUM,
            "Reports in default and team-a and the ClusterReport",
            |r, c| {
                report_in(r, "default").is_some_and(|d| d["summary"]["fail"] == 1)
                    && report_in(r, "team-a").is_some()
                    && c.is_some()
            },
        )
        .await;
    let Ok((reports, Some(cluster))) = first else {
        panic!("{first:?}");
    };
    let p = env
        .wait_condition("ReportsWritten=True", |c| c["status"] == "True")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let uid = p["metadata"]["uid"].clone();
    check(
        &mut f,
        condition(&p["status"], "Ready").is_some_and(|c| c["status"] == "True"),
        format!("Ready: {}", p["status"]),
    );

    // The published schema's constraints.
    for obj in reports.iter().chain([&cluster]) {
        let v = validate(obj);
        check(
            &mut f,
            v.is_empty(),
            format!("{} {}: {v:?}", obj["kind"], obj["metadata"]["namespace"]),
        );
        check(
            &mut f,
            obj["metadata"]["ownerReferences"][0]["uid"] == uid
                && obj["metadata"]["ownerReferences"][0]["kind"] == "ReferrerPolicy",
            format!("owner: {}", obj["metadata"]["ownerReferences"]),
        );
        check(
            &mut f,
            obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "refwarden"
                && obj["metadata"]["labels"]["refwarden.dev/policy"] == "p",
            format!("labels: {}", obj["metadata"]["labels"]),
        );
    }
    // Nothing refwarden wrote was pruned by a CRD built from its own types.
    let writes = env.report_writes();
    for w in writes.iter().filter(|w| w.method == "PATCH") {
        let name = w.body["metadata"]["name"].as_str().unwrap_or_default();
        let stored = match w.body["metadata"]["namespace"].as_str() {
            Some(ns) => report_in(&reports, ns).cloned(),
            None => Some(cluster.clone()),
        };
        let missing = stored
            .map(|s| missing_from(&w.body, &s))
            .unwrap_or_else(|| vec!["not stored".into()]);
        check(
            &mut f,
            missing.is_empty(),
            format!("{} {name}: {missing:?}", w.path),
        );
    }
    check(
        &mut f,
        writes.len() == 3,
        format!(
            "first evaluation: 3 applies (2 Reports, 1 ClusterReport), got {:?}",
            writes
                .iter()
                .map(|w| (&w.method, &w.path))
                .collect::<Vec<_>>()
        ),
    );

    // What a result says.
    let default = report_in(&reports, "default").cloned().unwrap_or_default();
    check(
        &mut f,
        default["summary"] == json!({"pass": 1, "fail": 1, "warn": 0, "error": 0, "skip": 0}),
        format!("default summary {}", default["summary"]),
    );
    let r0 = &default["results"][0];
    check(
        &mut f,
        r0["result"] == "fail"
            && r0["policy"] == "p"
            && r0["rule"] == "signature"
            && r0["source"] == "refwarden"
            && r0["properties"]["digest"] == env.bare.digest
            && r0["properties"]["missing"] == "signature"
            && r0["resources"][0]["kind"] == "Pod"
            && r0["resources"][0]["name"] == "bare",
        format!("first default result {r0}"),
    );
    let team = report_in(&reports, "team-a").cloned().unwrap_or_default();
    check(
        &mut f,
        team["results"].as_array().map(Vec::len) == Some(1)
            && team["results"][0]["result"] == "pass"
            && team["results"][0]["resources"][0]["kind"] == "StatefulSet"
            && team["results"][0]["properties"]["pods"] == "2"
            && team["results"][0]["properties"]["discoveryMethod"].is_string(),
        format!("team-a results {}", team["results"]),
    );
    check(
        &mut f,
        cluster["summary"]["pass"] == 2 && cluster["summary"]["fail"] == 1,
        format!("ClusterReport summary {}", cluster["summary"]),
    );

    // A re-evaluation that changes nothing writes nothing (a pod label change re-evaluates).
    let before = env.reconciles().await;
    let n = env.report_writes().len();
    env.emu
        .merge_patch(
            &pod_path("default", "signed"),
            &json!({"metadata": {"labels": {"touched": "yes"}}}),
        )
        .await
        .expect("labelling a pod");
    if let Err(e) = env.wait_reconciled(before + 1.0).await {
        check(&mut f, false, e);
    }
    let after = env.report_writes();
    check(
        &mut f,
        after.len() == n,
        format!(
            "an unchanged re-evaluation wrote {:?}",
            &after[n..].iter().map(|w| &w.path).collect::<Vec<_>>()
        ),
    );

    // Compliance change 1: the policy also requires an SBOM: every report changes.
    let n = env.report_writes().len();
    env.policy(json!([{"name": "signature", "preset": "signature"},
                      {"name": "sbom", "preset": "sbom"}]))
        .await;
    let r = env
        .wait_reports(MEDIUM, "sbom failures everywhere", |r, c| {
            report_in(r, "team-a").is_some_and(|t| t["summary"]["fail"] == 1)
                && report_in(r, "default").is_some_and(|d| d["summary"]["fail"] == 3)
                && c.is_some_and(|c| c["summary"]["fail"] == 4)
        })
        .await;
    if let Err(e) = r {
        check(&mut f, false, e);
    }
    if let Err(e) = env.wait_reconciled(0.0).await {
        check(&mut f, false, e);
    }
    let w = env.report_writes();
    check(
        &mut f,
        w.len() - n == 3,
        format!(
            "spec change: 3 applies expected, got {:?}",
            w[n..].iter().map(|w| &w.path).collect::<Vec<_>>()
        ),
    );

    // Compliance change 2: the unsigned pod goes: default and the ClusterReport change, team-a
    // does not.
    let n = env.report_writes().len();
    env.emu
        .delete(&pod_path("default", "bare"))
        .await
        .expect("deleting a pod");
    let r = env
        .wait_reports(MEDIUM, "the bare pod's results gone", |r, c| {
            report_in(r, "default").is_some_and(|d| {
                d["summary"]["fail"] == 1 && d["results"].as_array().map(Vec::len) == Some(2)
            }) && c.is_some_and(|c| c["summary"]["fail"] == 2)
        })
        .await;
    if let Err(e) = r {
        check(&mut f, false, e);
    }
    if let Err(e) = env.wait_reconciled(0.0).await {
        check(&mut f, false, e);
    }
    let w = env.report_writes();
    let paths: Vec<&String> = w[n..].iter().map(|w| &w.path).collect();
    check(
        &mut f,
        paths.len() == 2 && !paths.iter().any(|p| p.contains("/namespaces/team-a/")),
        format!("pod delete: 2 applies (default, ClusterReport), got {paths:?}"),
    );
    let (reports, cluster) = env.reports().await.expect("reports");
    for obj in reports.iter().chain(cluster.as_ref()) {
        let v = validate(obj);
        check(&mut f, v.is_empty(), format!("after changes: {v:?}"));
    }

    // Deleting the policy deletes its reports (the emulator has no garbage collector: these
    // are refwarden's own deletes).
    env.emu
        .delete(&policy_path("p"))
        .await
        .expect("deleting the policy");
    let r = env
        .wait_reports(MEDIUM, "every report deleted", |r, c| {
            r.is_empty() && c.is_none()
        })
        .await;
    if let Err(e) = r {
        check(&mut f, false, e);
    }
    env.finish("reports", f).await;
}

/// Without the OpenReports CRDs the policy says so (and its compliance status is written as
/// usual); once they are installed, the next evaluation writes the reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_crds_set_a_condition_and_reports_follow_their_installation() {
    let Some(mut env) = Env::start(false).await else {
        return;
    };
    let mut f = Vec::new();
    env.policy(signature()).await;
    let signed = env.signed.clone();
    env.pod("default", "signed", &signed, None).await;
    env.start_controller().await;
    match env
        .wait_condition("ReportsWritten=False CRDNotInstalled", |c| {
            c["status"] == "False" && c["reason"] == "CRDNotInstalled"
        })
        .await
    {
        Ok(p) => {
            let c = condition(&p["status"], "ReportsWritten")
                .cloned()
                .unwrap_or_default();
            let msg = c["message"].as_str().unwrap_or_default();
            check(
                &mut f,
                msg.contains("openreports/reports-api") && msg.contains("reports.openreports.io"),
                format!("the message says how to install the CRDs: {msg}"),
            );
            check(
                &mut f,
                condition(&p["status"], "Compliant").is_some_and(|c| c["status"] == "True")
                    && condition(&p["status"], "Ready").is_some_and(|c| c["status"] == "True"),
                format!("compliance status written regardless: {}", p["status"]),
            );
        }
        Err(e) => check(&mut f, false, e),
    }
    check(
        &mut f,
        env.controllers[0].is_running(),
        "the controller keeps running",
    );

    env.install_openreports_crds().await;
    // A pod change re-evaluates the policy.
    env.pod("default", "signed-2", &signed, None).await;
    let r = env
        .wait_reports(MEDIUM, "the Report once the CRDs are there", |r, c| {
            report_in(r, "default").is_some_and(|d| d["summary"]["pass"] == 2) && c.is_some()
        })
        .await;
    if let Err(e) = r {
        check(&mut f, false, e);
    }
    if let Err(e) = env
        .wait_condition("ReportsWritten=True", |c| c["status"] == "True")
        .await
    {
        check(&mut f, false, e);
    }
    env.finish("reports-crds-missing", f).await;
}

/// 5,000 pods (each its own workload) in one namespace: the Report stays within the bound and
/// says how many results it leaves out; its summary counts every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_pods_stay_within_the_report_size_bound() {
    let first = tempfile::tempdir().expect("tempdir");
    let Some(mut env) = Env::start_with(true, Some(first.path())).await else {
        return;
    };
    let mut f = Vec::new();
    const PODS: usize = 5_000;
    env.namespace("big").await;
    env.policy(signature()).await;
    // 5,000 pods through the API take the (Python) emulator about a minute: one pod is created
    // through it, the emulator's state is saved, the pod is copied 4,999 times in the saved
    // state, and a second emulator starts from it (the controller only ever sees that one).
    let bare = env.bare.clone();
    env.pod("big", "pod-00000", &bare, None).await;
    env.emu
        .control(reqwest::Method::POST, "/save", None)
        .await
        .expect("saving the emulator state");
    let mut state: Value = serde_json::from_slice(
        &std::fs::read(first.path().join("state.json")).expect("reading state.json"),
    )
    .expect("state.json is JSON");
    let pods = state["objects"]
        .as_array_mut()
        .expect("objects")
        .iter_mut()
        .find(|e| {
            e["storage"]
                .as_array()
                .is_some_and(|s| s.iter().any(|x| x == "pods"))
        })
        .expect("the pods' storage");
    let items = pods["items"].as_array_mut().expect("items");
    let template = items
        .iter()
        .find(|p| p["metadata"]["name"] == "pod-00000")
        .cloned()
        .expect("the template pod");
    for i in 1..PODS {
        let mut p = template.clone();
        p["metadata"]["name"] = json!(format!("pod-{i:05}"));
        p["metadata"]["uid"] = json!(format!("pod-uid-{i:05}"));
        items.push(p);
    }
    let second = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        second.path().join("state.json"),
        serde_json::to_vec(&state).expect("json"),
    )
    .expect("writing state.json");
    let t = Instant::now();
    env.emu = Emulator::start(EmulatorOptions {
        state_dir: Some(second.path().to_path_buf()),
        ..EmulatorOptions::default()
    })
    .await
    .expect("starting the emulator from the saved state");
    let listed = env
        .emu
        .list("/api/v1/namespaces/big/pods")
        .await
        .expect("pods")
        .len();
    assert_eq!(listed, PODS);
    eprintln!(
        "[reports-5000] emulator with {listed} pods up in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    env.start_controller().await;
    let r = env
        .wait_reports(
            Duration::from_secs(60),
            "the Report and the ClusterReport of 5,000 pods",
            // Both: the ClusterReport is written after the namespaced Report, so waiting for
            // the Report alone raced its write under load.
            |r, c| {
                report_in(r, "big").is_some_and(|b| b["summary"]["fail"] == PODS as u64)
                    && c.is_some_and(|c| c["summary"]["fail"] == PODS as u64)
            },
        )
        .await;
    match r {
        Ok((reports, cluster)) => {
            let big = report_in(&reports, "big").cloned().unwrap_or_default();
            // The whole stored object, the API server's metadata and managedFields included.
            let size = serde_json::to_vec(&big)
                .map(|v| v.len())
                .unwrap_or(usize::MAX);
            let kept = big["results"].as_array().map(Vec::len).unwrap_or(0);
            let omitted: usize = big["metadata"]["annotations"]["refwarden.dev/results-omitted"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            eprintln!(
                "[reports-5000] stored Report: {size} bytes, {kept} results, {omitted} omitted"
            );
            check(
                &mut f,
                size <= refwarden::openreports::MAX_REPORT_BYTES,
                format!("stored Report is {size} bytes"),
            );
            check(
                &mut f,
                kept > 0 && kept <= refwarden::openreports::MAX_RESULTS && kept + omitted == PODS,
                format!(
                    "{kept} kept (at most {}) + {omitted} omitted, expected {PODS} in all",
                    refwarden::openreports::MAX_RESULTS
                ),
            );
            check(
                &mut f,
                validate(&big).is_empty(),
                format!("{:?}", validate(&big)),
            );
            check(
                &mut f,
                cluster.is_some_and(|c| c["summary"]["fail"] == PODS as u64),
                "ClusterReport counts every pod",
            );
        }
        Err(e) => check(&mut f, false, e),
    }
    let applies = env
        .report_writes()
        .iter()
        .filter(|w| w.method == "PATCH")
        .count();
    eprintln!("[reports-5000] {applies} report applies");
    env.finish("reports-5000", f).await;
}
