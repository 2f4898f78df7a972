//! The emulator tier: the real `refwarden controller` binary against the Kubernetes API
//! emulator (`e2e/emulator/kube_emulator.py`) and the in-process spec registry, with the
//! controller authenticated as its ServiceAccount so the RBAC of `config/rbac` (or of the Helm
//! chart) is enforced.
//!
//! Each scenario starts its own registry, emulator and controller(s). They assert the correct
//! behaviour of the operator; every wait is bounded; failures print the controllers' logs and
//! the emulator's request log (see `refwarden_testkit::emulator`).
//!
//! Skipped when python3 or PyYAML is missing, except under `CI=true`, where that fails.

use refwarden_testkit::helm;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use refwarden_testkit::emulator::*;
use refwarden_testkit::{OciRegistry, PushedImage, Quirks, SeedAuth, Seeder, media};
use serde_json::{Value, json};

/// cosign's OCI 1.1 signature artifact type (the `signature` preset accepts it).
const SIG: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
const PROFILE: &str = "local";
const LEASE: &str = "refwarden-leader";

const SHORT: Duration = Duration::from_secs(10);
const MEDIUM: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Checks: every failed expectation of a scenario is collected, then the scenario fails with all
// of them (so one defect does not hide the next one).

struct Checks {
    scenario: &'static str,
    failures: Vec<String>,
}

impl Checks {
    fn new(scenario: &'static str) -> Self {
        Self {
            scenario,
            failures: Vec::new(),
        }
    }

    fn check(&mut self, ok: bool, msg: impl Into<String>) -> bool {
        if !ok {
            let msg = msg.into();
            eprintln!("[{}] CHECK FAILED: {msg}", self.scenario);
            self.failures.push(msg);
        }
        ok
    }

    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, got: T, want: T) -> bool {
        let ok = got == want;
        self.check(ok, format!("{what}: got {got:?}, expected {want:?}"))
    }

    /// Records a bounded wait that timed out; returns its value otherwise.
    fn wait<T>(&mut self, r: Result<T, String>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.check(false, e);
                None
            }
        }
    }

    fn finish(self) {
        if !self.failures.is_empty() {
            panic!(
                "[{}] {} check(s) failed:\n  - {}",
                self.scenario,
                self.failures.len(),
                self.failures.join("\n  - ")
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The environment of one scenario

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rbac {
    /// `config/rbac/*.yaml` (kustomization.yaml skipped).
    ConfigDir,
    /// The chart's RBAC and ServiceAccount, rendered with `helm template`.
    HelmChart,
}

fn rbac_objects(rbac: Rbac) -> Vec<Value> {
    match rbac {
        Rbac::ConfigDir => {
            let mut out = Vec::new();
            for f in yaml_files(&root().join("config/rbac")).expect("listing config/rbac") {
                out.extend(load_yaml_docs(&f).expect("reading config/rbac"));
            }
            out
        }
        Rbac::HelmChart => {
            let rendered = helm::run_ok(
                &helm::helm(),
                &[
                    "template",
                    "refwarden",
                    "charts/refwarden",
                    "--namespace",
                    SA_NAMESPACE,
                    "--show-only",
                    "templates/rbac.yaml",
                    "--show-only",
                    "templates/serviceaccount.yaml",
                ],
            );
            parse_yaml_docs(&rendered).expect("helm template output is YAML")
        }
    }
}

/// A pushed image and how pods name it.
#[derive(Clone, Debug)]
struct Img {
    repo: String,
    pushed: PushedImage,
    /// `127.0.0.1:PORT/repo:tag`
    image: String,
    /// `127.0.0.1:PORT/repo@sha256:…`
    image_id: String,
}

impl Img {
    fn digest(&self) -> &str {
        &self.pushed.digest
    }
}

struct Env {
    // Dropped first: the controllers print their logs on a panic, then are killed.
    controllers: Vec<Controller>,
    /// Proxies between controllers and the emulator (dropped after the controllers).
    proxies: Vec<RecordingProxy>,
    emu: Emulator,
    reg: OciRegistry,
    seeder: Seeder,
    signed: Img,
    bare: Img,
    started: Instant,
}

impl Env {
    /// Registry with `emu/signed:1.0` (a native signature referrer) and `emu/bare:1.0`
    /// (nothing); the emulator with CRDs, `refwarden-system` and the RBAC; the RegistryProfile
    /// `local`. `None` when the tier is skipped.
    async fn start(rbac: Rbac) -> Option<Env> {
        if !availability() {
            return None;
        }
        refwarden_testkit::init_tracing();
        let started = Instant::now();
        let reg = OciRegistry::start(Quirks::default()).expect("starting the OCI registry");
        let seeder = Seeder::new(&reg.url(), SeedAuth::None).expect("seeder");
        let emu = Emulator::start(EmulatorOptions::default())
            .await
            .expect("starting the emulator");
        emu.install_refwarden(&rbac_objects(rbac))
            .await
            .expect("installing CRDs, namespace and RBAC");
        let mut env = Env {
            controllers: Vec::new(),
            proxies: Vec::new(),
            signed: push(&reg, &seeder, "emu/signed", "1.0").await,
            bare: push(&reg, &seeder, "emu/bare", "1.0").await,
            emu,
            reg,
            seeder,
            started,
        };
        env.seeder
            .push_artifact(
                "emu/signed",
                Some(&env.signed.pushed.subject()),
                SIG,
                b"signature",
                None,
            )
            .await
            .expect("pushing the signature");
        env.apply_profile().await;
        env.started = started;
        Some(env)
    }

    async fn apply_profile(&self) {
        self.emu
            .apply(&json!({
                "apiVersion": "refwarden.dev/v1alpha1", "kind": "RegistryProfile",
                "metadata": {"name": PROFILE},
                "spec": {
                    "registryUrl": self.reg.url(),
                    "plainHttp": true,
                    "testRepository": "emu/signed",
                    "testTag": "1.0",
                    "lifecycle": {"distribution": {"version": "2.8.3",
                                   "garbageCollection": {"deleteUntagged": true}}},
                },
            }))
            .await
            .expect("applying the RegistryProfile");
    }

    /// Applies a ReferrerPolicy over every pod with these requirements.
    async fn apply_policy(&self, name: &str, require: Value) -> Value {
        self.emu
            .apply(&json!({
                "apiVersion": "refwarden.dev/v1alpha1", "kind": "ReferrerPolicy",
                "metadata": {"name": name},
                "spec": {"require": require},
            }))
            .await
            .expect("applying the ReferrerPolicy")
    }

    async fn add_pod(&self, name: &str, img: &Img) {
        self.emu
            .create_running_pod(&RunningPod::new("default", name, &img.image, &img.image_id))
            .await
            .expect("creating a running pod");
    }

    /// Starts a controller as the ServiceAccount (the emulator's SA kubeconfig).
    fn start_controller(&mut self, identity: &str, leader_election: bool) -> usize {
        let opts = ControllerOptions::new(
            env!("CARGO_BIN_EXE_refwarden"),
            identity,
            self.emu.sa_kubeconfig(),
        )
        .leader_election(leader_election);
        self.start_controller_with(opts)
    }

    /// Starts a controller; the test registry is named plain HTTP (`--insecure-registry`), as
    /// an admin would, for scenarios whose images have no RegistryProfile.
    fn start_controller_with(&mut self, opts: ControllerOptions) -> usize {
        let opts = opts.insecure_registry(&self.reg.host());
        let c = Controller::start(opts).expect("starting refwarden controller");
        self.controllers.push(c);
        self.controllers.len() - 1
    }

    async fn ready(&mut self, i: usize) {
        self.controllers[i]
            .wait_ready(MEDIUM)
            .await
            .expect("controller ready");
    }

    fn ctl(&self, i: usize) -> &Controller {
        &self.controllers[i]
    }

    /// Waits until the stored RegistryProfile `local` satisfies `pred`.
    async fn wait_for_profile(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let pred = &pred;
        wait_until(timeout, what, || async move {
            match self
                .emu
                .get(&profile_path(PROFILE))
                .await
                .map_err(|e| e.to_string())?
            {
                Some(o) if pred(&o) => Ok(o),
                Some(o) => Err(format!("status {}", o["status"])),
                None => Err("404".into()),
            }
        })
        .await
    }

    async fn policy(&self, name: &str) -> Option<Value> {
        self.emu.get(&policy_path(name)).await.expect("GET policy")
    }

    /// Waits until the stored policy satisfies `pred`.
    async fn wait_policy(
        &self,
        name: &str,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let path = policy_path(name);
        let pred = &pred;
        wait_until(timeout, what, || {
            let path = path.clone();
            async move {
                match self.emu.get(&path).await.map_err(|e| e.to_string())? {
                    Some(o) if pred(&o) => Ok(o),
                    Some(o) => Err(format!(
                        "generation {} status {}",
                        o["metadata"]["generation"], o["status"]
                    )),
                    None => Err("404".into()),
                }
            }
        })
        .await
    }

    /// Waits until the policy's status describes its current generation and is evaluated
    /// (`Reconciling=False`), then until the controller `i` is idle.
    async fn wait_evaluated(&self, i: usize, name: &str) -> Result<Value, String> {
        let p = self
            .wait_policy(name, MEDIUM, &format!("policy {name} evaluated"), |o| {
                let s = &o["status"];
                s["observedGeneration"] == o["metadata"]["generation"]
                    && cond(s, "Reconciling").is_some_and(|c| c["status"] == "False")
                    && cond(s, "Compliant").is_some()
            })
            .await?;
        self.wait_idle(i, &["referrerpolicy", "registryprofile"])
            .await?;
        Ok(p)
    }

    /// Waits until controller `i` has finished at least one reconcile of each kind and has none
    /// in flight (`reconciles_total == reconcile_duration_seconds_count`).
    async fn wait_idle(&self, i: usize, kinds: &[&str]) -> Result<Metrics, String> {
        let ctl = self.ctl(i);
        wait_until(
            SHORT,
            &format!("controller {} idle", ctl.identity()),
            || async {
                let m = ctl.samples().await.map_err(|e| e.to_string())?;
                let busy: Vec<String> = kinds
                    .iter()
                    .filter(|k| {
                        let started = m
                            .value("refwarden_reconciles_total", &[("kind", k)])
                            .unwrap_or(0.0);
                        let done = m
                            .value("refwarden_reconcile_duration_seconds_count", &[("kind", k)])
                            .unwrap_or(0.0);
                        started < 1.0 || started != done
                    })
                    .map(|k| k.to_string())
                    .collect();
                if busy.is_empty() {
                    Ok(m)
                } else {
                    Err(format!("busy or never reconciled: {busy:?}"))
                }
            },
        )
        .await
    }

    /// Waits until `/metrics` of controller `i` satisfies `pred`; `Err` shows the refwarden lines.
    async fn wait_metrics(
        &self,
        i: usize,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Metrics) -> bool,
    ) -> Result<Metrics, String> {
        let ctl = self.ctl(i);
        let pred = &pred;
        wait_until(timeout, what, || async move {
            let m = ctl.samples().await.map_err(|e| e.to_string())?;
            if pred(&m) {
                Ok(m)
            } else {
                Err(format!("\n{}", m.refwarden_lines()))
            }
        })
        .await
    }

    /// Waits until the Events satisfy `pred`.
    async fn wait_events(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Result<Vec<Value>, String> {
        let pred = &pred;
        wait_until(timeout, what, || async move {
            let evs = self.emu.events().await.map_err(|e| e.to_string())?;
            if pred(&evs) {
                Ok(evs)
            } else {
                Err(events_summary(&evs))
            }
        })
        .await
    }

    async fn events(&self) -> Vec<Value> {
        self.emu.events().await.expect("listing events")
    }

    /// Status PATCHes of `resource` (`referrerpolicies`, `registryprofiles`) after `since`.
    async fn status_patches(&self, since: u64, resource: &str, name: &str) -> Vec<RequestEntry> {
        self.emu
            .requests(since)
            .await
            .expect("request log")
            .into_iter()
            .filter(|r| r.is_status_patch(resource, name))
            .collect()
    }

    /// Every request of the controller's ServiceAccount was allowed (authz log).
    async fn check_rbac(&self, c: &mut Checks) {
        let entries = self.emu.authz(0).await.expect("authz log");
        let sa: Vec<&AuthzEntry> = entries.iter().filter(|e| e.user == SA_USER).collect();
        c.check(
            !sa.is_empty(),
            "the authz log has no decision for the ServiceAccount",
        );
        let denied: Vec<String> = sa.iter().filter(|e| !e.allowed).map(|e| e.line()).collect();
        c.check(
            denied.is_empty(),
            format!(
                "{} request(s) of {SA_USER} were denied by RBAC:\n      {}",
                denied.len(),
                denied.join("\n      ")
            ),
        );
    }

    /// Ends a scenario: the RBAC check, then every collected failure.
    async fn finish(self, mut c: Checks) {
        self.check_rbac(&mut c).await;
        eprintln!(
            "[{}] finished in {:.1}s",
            c.scenario,
            self.started.elapsed().as_secs_f64()
        );
        // On failure the controllers' logs and the emulator's request log are printed as the
        // panic drops them.
        c.finish();
    }
}

async fn push(reg: &OciRegistry, seeder: &Seeder, repo: &str, tag: &str) -> Img {
    let pushed = seeder
        .push_image(repo, tag)
        .await
        .expect("pushing an image");
    Img {
        repo: repo.to_string(),
        image: format!("{}/{repo}:{tag}", reg.host()),
        image_id: format!("{}/{repo}@{}", reg.host(), pushed.digest),
        pushed,
    }
}

// ---------------------------------------------------------------------------------------------
// Small readers

fn cond<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn cond_status(status: &Value, type_: &str) -> String {
    cond(status, type_)
        .and_then(|c| c["status"].as_str())
        .unwrap_or("<absent>")
        .to_string()
}

fn violations(status: &Value) -> Vec<Value> {
    status["violations"].as_array().cloned().unwrap_or_default()
}

fn violation_for<'a>(status: &'a Value, digest: &str) -> Option<&'a Value> {
    status["violations"]
        .as_array()?
        .iter()
        .find(|v| v["digest"] == digest)
}

fn missing_of(v: &Value) -> Vec<String> {
    v["missing"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Events with `reason` about the object named `regarding`.
fn events_for<'a>(events: &'a [Value], reason: &str, regarding: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["reason"] == reason && e["regarding"]["name"] == regarding)
        .collect()
}

/// How many occurrences an Event stands for (`series.count`, else 1).
fn occurrences(e: &Value) -> u64 {
    e["series"]["count"].as_u64().unwrap_or(1)
}

/// Total occurrences of `reason` about `regarding`.
fn occurrence_count(events: &[Value], reason: &str, regarding: &str) -> u64 {
    events_for(events, reason, regarding)
        .into_iter()
        .map(occurrences)
        .sum()
}

/// When an Event was last observed (`series.lastObservedTime`, else `eventTime`).
fn last_seen(e: &Value) -> String {
    e["series"]["lastObservedTime"]
        .as_str()
        .or_else(|| e["eventTime"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The most recently observed Event of `reason` about `regarding`.
fn latest<'a>(events: &'a [Value], reason: &str, regarding: &str) -> Option<&'a Value> {
    events_for(events, reason, regarding)
        .into_iter()
        .max_by_key(|e| last_seen(e))
}

fn note(e: &Value) -> String {
    e["note"].as_str().unwrap_or_default().to_string()
}

fn events_summary(events: &[Value]) -> String {
    let lines: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{} {} {}/{} x{} by {}: {}",
                e["type"].as_str().unwrap_or_default(),
                e["reason"].as_str().unwrap_or_default(),
                e["regarding"]["kind"].as_str().unwrap_or_default(),
                e["regarding"]["name"].as_str().unwrap_or_default(),
                occurrences(e),
                e["reportingInstance"].as_str().unwrap_or_default(),
                note(e)
            )
        })
        .collect();
    format!("{} events:\n    {}", lines.len(), lines.join("\n    "))
}

/// `(reason, regarding name, occurrences)` of every Event, for before/after comparisons.
fn event_counts(events: &[Value]) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for e in events {
        let k = (
            e["reason"].as_str().unwrap_or_default().to_string(),
            e["regarding"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        *out.entry(k).or_insert(0) += occurrences(e);
    }
    out
}

fn policy_gauges(m: &Metrics, policy: &str) -> BTreeMap<String, f64> {
    m.find("refwarden_policy_images", &[("policy", policy)])
        .into_iter()
        .map(|s| (s.labels["state"].clone(), s.value))
        .collect()
}

fn gauges(compliant: f64, non_compliant: f64, unknown: f64) -> BTreeMap<String, f64> {
    BTreeMap::from([
        ("compliant".to_string(), compliant),
        ("non_compliant".to_string(), non_compliant),
        ("unknown".to_string(), unknown),
    ])
}

fn profile_series(m: &Metrics, profile: &str) -> Vec<String> {
    m.with_label("refwarden_", "registry_profile", profile)
        .into_iter()
        .map(|s| format!("{}{:?} {}", s.name, s.labels, s.value))
        .collect()
}

fn signature_only() -> Value {
    json!([{"name": "signature", "preset": "signature"}])
}

/// The standard steady state: policy `p` (signature required), pods `signed` and `bare`,
/// controller 0 evaluated, both Events published.
async fn steady(env: &mut Env, identity: &str, leader_election: bool) -> Value {
    env.apply_policy("p", signature_only()).await;
    env.add_pod("signed", &env.signed.clone()).await;
    env.add_pod("bare", &env.bare.clone()).await;
    let i = env.start_controller(identity, leader_election);
    env.ready(i).await;
    let p = env
        .wait_evaluated(i, "p")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    env.wait_events(SHORT, "MissingReferrers and ImageNonCompliant", |evs| {
        !events_for(evs, "MissingReferrers", "bare").is_empty()
            && !events_for(evs, "ImageNonCompliant", "p").is_empty()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    p
}

// ---------------------------------------------------------------------------------------------
// Harness self-checks (pure)

#[test]
fn tier_skips_without_python_and_fails_under_ci() {
    let all = Prerequisites {
        python3: true,
        pyyaml: true,
    };
    let no_yaml = Prerequisites {
        python3: true,
        pyyaml: false,
    };
    let nothing = Prerequisites {
        python3: false,
        pyyaml: false,
    };
    assert_eq!(decide(all, false), Ok(true));
    assert_eq!(decide(all, true), Ok(true));
    assert_eq!(decide(no_yaml, false), Ok(false));
    assert_eq!(decide(nothing, false), Ok(false));
    let e = decide(no_yaml, true).unwrap_err();
    assert!(e.contains("PyYAML") && !e.contains("python3 and"), "{e}");
    let e = decide(nothing, true).unwrap_err();
    assert!(e.contains("python3 and PyYAML"), "{e}");
}

#[test]
fn harness_helpers_parse_metrics_and_walk_schemas() {
    let m = Metrics::parse(
        "# HELP x y\nrefwarden_policy_images{policy=\"p\",state=\"non_compliant\"} 1\n\
         refwarden_leader 0\nrefwarden_registry_reachable{registry_profile=\"a\\\"b\"} 1\n",
    );
    assert_eq!(
        m.value(
            "refwarden_policy_images",
            &[("policy", "p"), ("state", "non_compliant")]
        ),
        Some(1.0)
    );
    assert_eq!(m.value("refwarden_leader", &[]), Some(0.0));
    assert_eq!(
        m.with_label("refwarden_registry", "registry_profile", "a\"b")
            .len(),
        1
    );
    let schema = json!({"properties": {"a": {"type": "string"},
        "m": {"additionalProperties": {"type": "string"}},
        "b": {"items": {"properties": {"c": {}}}}}});
    assert_eq!(
        undeclared_fields(
            &schema,
            &json!({"a": "x", "m": {"k": "v"}, "b": [{"c": 1, "d": 2}], "e": 1})
        ),
        vec![".b[0].d".to_string(), ".e".to_string()]
    );
    assert_eq!(
        missing_from(
            &json!({"a": 1, "b": {"c": 2}, "n": null}),
            &json!({"a": 1, "b": {}})
        ),
        vec![".b.c (written 2, not stored)".to_string()]
    );
}

// ---------------------------------------------------------------------------------------------
// 1. First evaluation

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_evaluation_status_events_metrics_and_nothing_pruned() {
    let Some(mut env) = Env::start(Rbac::ConfigDir).await else {
        return;
    };
    let mut c = Checks::new("first-evaluation");
    env.apply_policy("p", signature_only()).await;
    env.add_pod("signed", &env.signed.clone()).await;
    env.add_pod("bare", &env.bare.clone()).await;
    // Through a recording proxy: what the controller sent, before the API server pruned it.
    let proxy = RecordingProxy::start(&env.emu).expect("recording proxy");
    let kubeconfig = env
        .emu
        .write_kubeconfig("proxied.kubeconfig", Some(&proxy.url()), SA_TOKEN)
        .expect("kubeconfig");
    env.proxies.push(proxy);
    let i = env.start_controller_with(ControllerOptions::new(
        env!("CARGO_BIN_EXE_refwarden"),
        "refwarden-0",
        &kubeconfig,
    ));
    env.ready(i).await;
    let p = env
        .wait_evaluated(i, "p")
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // RegistryProfile: probed, Ready, referrers API found.
    let prof = env
        .emu
        .get_ok(&profile_path(PROFILE))
        .await
        .expect("profile");
    let ps = &prof["status"];
    c.eq("profile Ready", cond_status(ps, "Ready"), "True".into());
    c.eq(
        "profile observedGeneration",
        ps["observedGeneration"].clone(),
        json!(1),
    );
    c.check(
        ps["lastProbeTime"].is_string(),
        format!("profile lastProbeTime missing: {ps}"),
    );
    c.eq(
        "profile referrersApi",
        ps["capabilities"]["referrersApi"]["state"].clone(),
        json!("Supported"),
    );

    // ReferrerPolicy status.
    let s = &p["status"];
    c.eq(
        "observedGeneration",
        s["observedGeneration"].clone(),
        json!(1),
    );
    c.eq("Compliant", cond_status(s, "Compliant"), "False".into());
    c.eq("Ready", cond_status(s, "Ready"), "True".into());
    c.eq("Stalled", cond_status(s, "Stalled"), "False".into());
    c.eq(
        "summary",
        s["summary"].clone(),
        json!({"pods": 2, "images": 2, "compliant": 1, "nonCompliant": 1, "unknown": 0}),
    );
    let vs = violations(s);
    c.eq("violations", vs.len(), 1);
    if let Some(v) = violation_for(s, env.bare.digest()) {
        c.check(
            v["image"]
                .as_str()
                .is_some_and(|i| i.ends_with(&env.bare.repo)),
            format!(
                "violation image {} does not name {}",
                v["image"], env.bare.repo
            ),
        );
        c.eq("violation missing", missing_of(v), vec!["signature".into()]);
        c.eq(
            "violation workloads",
            v["workloads"].clone(),
            json!([{"namespace": "default", "kind": "Pod", "name": "bare"}]),
        );
    } else {
        c.check(
            false,
            format!("no violation for {}: {vs:?}", env.bare.digest()),
        );
    }

    // Events: a Warning on the unsigned pod and one on the policy, none about the signed pod.
    let evs = env.events().await;
    match latest(&evs, "MissingReferrers", "bare") {
        Some(e) => {
            c.eq("MissingReferrers type", e["type"].clone(), json!("Warning"));
            c.eq(
                "MissingReferrers regarding",
                (
                    e["regarding"]["kind"].clone(),
                    e["regarding"]["namespace"].clone(),
                ),
                (json!("Pod"), json!("default")),
            );
            c.check(
                note(e).contains(env.bare.digest()),
                format!("MissingReferrers note lacks the digest: {}", note(e)),
            );
            c.eq(
                "reportingController",
                e["reportingController"].clone(),
                json!("refwarden.dev/controller"),
            );
            c.eq(
                "reportingInstance",
                e["reportingInstance"].clone(),
                json!("refwarden-0"),
            );
        }
        None => {
            c.check(
                false,
                format!(
                    "no MissingReferrers Event for pod bare: {}",
                    events_summary(&evs)
                ),
            );
        }
    }
    match latest(&evs, "ImageNonCompliant", "p") {
        Some(e) => {
            c.eq(
                "ImageNonCompliant regarding kind",
                e["regarding"]["kind"].clone(),
                json!("ReferrerPolicy"),
            );
            c.check(
                note(e).contains(env.bare.digest()) && note(e).contains("signature"),
                format!("ImageNonCompliant note: {}", note(e)),
            );
        }
        None => {
            c.check(
                false,
                format!("no ImageNonCompliant Event: {}", events_summary(&evs)),
            );
        }
    }
    c.eq(
        "MissingReferrers about the signed pod",
        events_for(&evs, "MissingReferrers", "signed").len(),
        0,
    );

    // Metrics.
    let m = c.wait(
        env.wait_metrics(i, SHORT, "policy gauges", |m| {
            policy_gauges(m, "p") == gauges(1.0, 1.0, 0.0)
        })
        .await,
    );
    if let Some(m) = m {
        c.eq(
            "refwarden_policy_images{policy=\"p\",state=\"non_compliant\"}",
            m.value(
                "refwarden_policy_images",
                &[("policy", "p"), ("state", "non_compliant")],
            ),
            Some(1.0),
        );
        c.eq(
            "refwarden_registry_reachable",
            m.value(
                "refwarden_registry_reachable",
                &[("registry_profile", PROFILE)],
            ),
            Some(1.0),
        );
        c.eq(
            "referrersApi Supported gauge",
            m.value(
                "refwarden_registry_capability",
                &[
                    ("registry_profile", PROFILE),
                    ("capability", "referrersApi"),
                    ("state", "Supported"),
                ],
            ),
            Some(1.0),
        );
    }

    // Nothing the controller wrote into a status was pruned: every field it sent is declared by
    // the CRD, and the stored status holds every field it sent.
    let writes = env.proxies[0].writes();
    for (plural, name, file, stored) in [
        (
            "referrerpolicies",
            "p",
            "referrerpolicies.refwarden.dev.yaml",
            env.policy("p").await.expect("policy"),
        ),
        (
            "registryprofiles",
            PROFILE,
            "registryprofiles.refwarden.dev.yaml",
            env.emu
                .get_ok(&profile_path(PROFILE))
                .await
                .expect("profile"),
        ),
    ] {
        let schema = crd_schema(file).expect("CRD schema");
        let path = format!("/apis/refwarden.dev/v1alpha1/{plural}/{name}/status");
        let sent: Vec<&RecordedWrite> = writes
            .iter()
            .filter(|w| w.method == "PATCH" && w.path.starts_with(&path))
            .collect();
        c.check(
            !sent.is_empty(),
            format!("no status write of {plural}/{name} recorded"),
        );
        for w in &sent {
            let undeclared = undeclared_fields(&schema, &w.body);
            c.check(
                undeclared.is_empty(),
                format!("{plural}/{name}: status fields the CRD does not declare (pruned): {undeclared:?}"),
            );
        }
        if let Some(last) = sent.iter().rev().find(|w| w.status == 200) {
            let lost = missing_from(&last.body["status"], &stored["status"]);
            c.check(
                lost.is_empty(),
                format!("{plural}/{name}: written status fields not stored: {lost:?}"),
            );
        }
    }
    env.finish(c).await;
}

// ---------------------------------------------------------------------------------------------
// 2. Spec change: Reconciling, observedGeneration 2, lastTransitionTime never backwards

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_change_reconciles_and_transition_times_never_go_backwards() {
    let Some(mut env) = Env::start(Rbac::ConfigDir).await else {
        return;
    };
    let mut c = Checks::new("spec-change");
    let p1 = steady(&mut env, "refwarden-0", false).await;
    let watch = env
        .emu
        .watch("/apis/refwarden.dev/v1alpha1/referrerpolicies?fieldSelector=metadata.name%3Dp")
        .await
        .expect("watching the policy");

    // Let the clock pass the generation-1 transition times by more than a second, so a
    // transition time written from a stale status is distinguishable from a fresh one.
    let latest_transition = p1["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["lastTransitionTime"].as_str())
        .filter_map(|t| t.parse::<jiff::Timestamp>().ok())
        .max()
        .expect("generation 1 has conditions with lastTransitionTime");
    wait_for(
        SHORT,
        "the clock to pass generation 1's transitions by 2 s",
        || async {
            let now = jiff::Timestamp::now();
            if now.duration_since(latest_transition).as_secs_f64() >= 2.0 {
                Ok(())
            } else {
                Err(format!("now {now}, last transition {latest_transition}"))
            }
        },
    )
    .await;

    env.emu
        .apply(&json!({
            "apiVersion": "refwarden.dev/v1alpha1", "kind": "ReferrerPolicy",
            "metadata": {"name": "p"},
            "spec": {"require": signature_only(), "maxReportedViolations": 40},
        }))
        .await
        .expect("changing the spec");
    let p2 = c.wait(
        env.wait_policy(
            "p",
            MEDIUM,
            "observedGeneration 2, Reconciling=False",
            |o| {
                o["metadata"]["generation"] == 2
                    && o["status"]["observedGeneration"] == 2
                    && cond(&o["status"], "Reconciling").is_some_and(|c| c["status"] == "False")
            },
        )
        .await,
    );
    if let Some(p2) = &p2 {
        for t in ["Ready", "Compliant", "Reconciling", "Stalled"] {
            c.eq(
                &format!("{t}.observedGeneration"),
                cond(&p2["status"], t).map(|c| c["observedGeneration"].clone()),
                Some(json!(2)),
            );
        }
    }
    let _ = env.wait_idle(0, &["referrerpolicy"]).await;

    // Every status version the watch saw, in order.
    let versions: Vec<Value> = watch
        .events()
        .into_iter()
        .map(|(_, o)| o)
        .filter(|o| o["status"].is_object())
        .collect();
    let saw_reconciling = versions.iter().any(|o| {
        cond(&o["status"], "Reconciling")
            .is_some_and(|c| c["status"] == "True" && c["message"] == "evaluating generation 2")
    });
    c.check(
        saw_reconciling,
        format!(
            "no status with Reconciling=True for generation 2 among {} versions",
            versions.len()
        ),
    );
    let mut last: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    let mut backwards = Vec::new();
    for o in &versions {
        let rv = o["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        for cnd in o["status"]["conditions"].as_array().into_iter().flatten() {
            let t = cnd["type"].as_str().unwrap_or_default().to_string();
            let ltt = cnd["lastTransitionTime"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let st = cnd["status"].as_str().unwrap_or_default().to_string();
            if let Some((prev_ltt, prev_st, prev_rv)) = last.get(&t) {
                let (a, b) = (
                    prev_ltt.parse::<jiff::Timestamp>().ok(),
                    ltt.parse::<jiff::Timestamp>().ok(),
                );
                if let (Some(a), Some(b)) = (a, b)
                    && b < a
                {
                    backwards.push(format!(
                        "{t}: {prev_st} @ {prev_ltt} (rv {prev_rv}) -> {st} @ {ltt} (rv {rv})"
                    ));
                }
            }
            last.insert(t, (ltt, st, rv.clone()));
        }
    }
    c.check(
        backwards.is_empty(),
        format!(
            "lastTransitionTime moved backwards across {} observed statuses: {}",
            versions.len(),
            backwards.join("; ")
        ),
    );
    env.finish(c).await;
}

// ---------------------------------------------------------------------------------------------
// 3. Pod add / graceful delete

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_added_then_deleted_gracefully_updates_violations_and_counts() {
    let Some(mut env) = Env::start(Rbac::ConfigDir).await else {
        return;
    };
    let mut c = Checks::new("pod-add-delete");
    env.apply_policy("p", signature_only()).await;
    env.add_pod("signed", &env.signed.clone()).await;
    let i = env.start_controller("refwarden-0", false);
    env.ready(i).await;
    let p = env
        .wait_evaluated(i, "p")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.eq(
        "summary before",
        p["status"]["summary"].clone(),
        json!({"pods": 1, "images": 1, "compliant": 1, "nonCompliant": 0, "unknown": 0}),
    );

    env.add_pod("bare", &env.bare.clone()).await;
    let digest = env.bare.digest().to_string();
    let with = c.wait(
        env.wait_policy("p", MEDIUM, "a violation for the new pod", |o| {
            violation_for(&o["status"], &digest).is_some()
                && o["status"]["summary"]["nonCompliant"] == 1
        })
        .await,
    );
    if let Some(o) = with {
        c.eq(
            "summary with the unsigned pod",
            o["status"]["summary"].clone(),
            json!({"pods": 2, "images": 2, "compliant": 1, "nonCompliant": 1, "unknown": 0}),
        );
        c.eq(
            "Compliant",
            cond_status(&o["status"], "Compliant"),
            "False".into(),
        );
    }
    c.wait(
        env.wait_metrics(i, SHORT, "non_compliant 1", |m| {
            policy_gauges(m, "p") == gauges(1.0, 1.0, 0.0)
        })
        .await,
    );

    // Graceful: the pod is kept with a deletionTimestamp for the grace period, then removed.
    let deleted = env
        .emu
        .delete(&pod_path("default", "bare"))
        .await
        .expect("deleting the pod");
    c.check(
        deleted["metadata"]["deletionTimestamp"].is_string(),
        format!("DELETE did not start a graceful deletion: {deleted}"),
    );
    c.wait(
        wait_until(
            SHORT,
            "the pod to be gone after its grace period",
            || async {
                match env.emu.get(&pod_path("default", "bare")).await {
                    Ok(None) => Ok(()),
                    Ok(Some(p)) => Err(format!(
                        "still there, deletionTimestamp {}",
                        p["metadata"]["deletionTimestamp"]
                    )),
                    Err(e) => Err(e.to_string()),
                }
            },
        )
        .await,
    );
    let without = c.wait(
        env.wait_policy("p", MEDIUM, "the violation gone", |o| {
            violations(&o["status"]).is_empty() && o["status"]["summary"]["pods"] == 1
        })
        .await,
    );
    if let Some(o) = without {
        c.eq(
            "summary after the delete",
            o["status"]["summary"].clone(),
            json!({"pods": 1, "images": 1, "compliant": 1, "nonCompliant": 0, "unknown": 0}),
        );
        c.eq(
            "Compliant",
            cond_status(&o["status"], "Compliant"),
            "True".into(),
        );
    }
    c.wait(
        env.wait_metrics(i, SHORT, "non_compliant 0", |m| {
            policy_gauges(m, "p") == gauges(1.0, 0.0, 0.0)
        })
        .await,
    );
    env.finish(c).await;
}

// ---------------------------------------------------------------------------------------------
// 4. A repeated Event carries the current missing list

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_non_compliance_event_carries_the_current_missing_list() {
    let Some(mut env) = Env::start(Rbac::ConfigDir).await else {
        return;
    };
    let mut c = Checks::new("repeated-event-note");
    // An image with an SBOM and nothing else.
    let app = push(&env.reg, &env.seeder, "emu/app", "1.0").await;
    env.seeder
        .push_artifact(
            "emu/app",
            Some(&app.pushed.subject()),
            media::SPDX_JSON,
            b"{\"spdxVersion\":\"SPDX-2.3\"}",
            None,
        )
        .await
        .expect("pushing the SBOM");
    env.apply_policy("p", signature_only()).await;
    env.add_pod("app", &app).await;
    let i = env.start_controller("refwarden-0", false);
    env.ready(i).await;
    let digest = app.digest().to_string();

    // 1: missing [signature].
    env.wait_policy("p", MEDIUM, "missing [signature]", |o| {
        violation_for(&o["status"], &digest).is_some_and(|v| missing_of(v) == ["signature"])
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    env.wait_events(
        SHORT,
        "the first ImageNonCompliant and MissingReferrers",
        |evs| {
            latest(evs, "ImageNonCompliant", "p")
                .is_some_and(|e| note(e).contains("(missing: signature)"))
                && latest(evs, "MissingReferrers", "app")
                    .is_some_and(|e| note(e).contains("(missing: signature)"))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    // 2: compliant (only the SBOM is required).
    env.apply_policy("p", json!([{"name": "sbom", "preset": "sbom"}]))
        .await;
    env.wait_policy("p", MEDIUM, "compliant at generation 2", |o| {
        o["status"]["observedGeneration"] == 2
            && violations(&o["status"]).is_empty()
            && o["status"]["summary"]["compliant"] == 1
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    c.wait(
        env.wait_events(SHORT, "ImageCompliant", |evs| {
            !events_for(evs, "ImageCompliant", "p").is_empty()
        })
        .await,
    );

    // 3: non-compliant again, with a different missing list.
    env.apply_policy(
        "p",
        json!([{"name": "signature", "preset": "signature"},
               {"name": "vex", "preset": "openvex"}]),
    )
    .await;
    env.wait_policy(
        "p",
        MEDIUM,
        "missing [signature, vex] at generation 3",
        |o| {
            o["status"]["observedGeneration"] == 3
                && violation_for(&o["status"], &digest)
                    .is_some_and(|v| missing_of(v) == ["signature", "vex"])
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let _ = env.wait_idle(i, &["referrerpolicy"]).await;

    // The latest Event (or series) about the image must say what is missing now.
    for (reason, regarding) in [("ImageNonCompliant", "p"), ("MissingReferrers", "app")] {
        let r = env
            .wait_events(
                Duration::from_secs(5),
                &format!("the latest {reason} about {regarding} to name the current missing list"),
                |evs| {
                    latest(evs, reason, regarding)
                        .is_some_and(|e| note(e).contains("(missing: signature, vex)"))
                },
            )
            .await;
        if r.is_err() {
            let evs = env.events().await;
            let l = latest(&evs, reason, regarding);
            c.check(
                false,
                format!(
                    "latest {reason} about {regarding} (occurrences {}, {} Event object(s)) has note {:?}; \
                     expected it to contain \"(missing: signature, vex)\"",
                    l.map(occurrences).unwrap_or(0),
                    events_for(&evs, reason, regarding).len(),
                    l.map(note).unwrap_or_default()
                ),
            );
        }
    }
    env.finish(c).await;
}

// ---------------------------------------------------------------------------------------------
// 5. Policy delete: its gauges go

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_policy_gauges_disappear() {
    let Some(mut env) = Env::start(Rbac::ConfigDir).await else {
        return;
    };
    let mut c = Checks::new("policy-delete");
    steady(&mut env, "refwarden-0", false).await;
    c.wait(
        env.wait_metrics(0, SHORT, "policy gauges", |m| {
            policy_gauges(m, "p") == gauges(1.0, 1.0, 0.0)
        })
        .await,
    );
    env.emu
        .delete(&policy_path("p"))
        .await
        .expect("deleting the policy");
    c.wait(
        wait_until(SHORT, "the policy to be gone", || async {
            match env.policy("p").await {
                None => Ok(()),
                Some(_) => Err("still there".to_string()),
            }
        })
        .await,
    );
    let r = env
        .wait_metrics(
            0,
            SHORT,
            "refwarden_policy_images{policy=\"p\"} to disappear",
            |m| {
                m.find("refwarden_policy_images", &[("policy", "p")])
                    .is_empty()
            },
        )
        .await;
    if r.is_err() {
        let m = env.ctl(0).samples().await.expect("metrics");
        c.check(
            false,
            format!(
                "10 s after the ReferrerPolicy was deleted /metrics still has {:?}",
                policy_gauges(&m, "p")
            ),
        );
    }
    env.finish(c).await;
}

// ---------------------------------------------------------------------------------------------
// 6. Profile delete: its metrics go

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_profile_metrics_disappear() {
    let Some(mut env) = Env::start(Rbac::ConfigDir).await else {
        return;
    };
    let mut c = Checks::new("profile-delete");
    let i = env.start_controller("refwarden-0", false);
    env.ready(i).await;
    c.wait(
        env.wait_metrics(i, MEDIUM, "the profile's registry metrics", |m| {
            m.value(
                "refwarden_registry_reachable",
                &[("registry_profile", PROFILE)],
            ) == Some(1.0)
                && !m
                    .find(
                        "refwarden_registry_capability",
                        &[("registry_profile", PROFILE)],
                    )
                    .is_empty()
        })
        .await,
    );
    env.emu
        .delete(&profile_path(PROFILE))
        .await
        .expect("deleting the profile");
    let r = env
        .wait_metrics(
            i,
            SHORT,
            "refwarden_registry_*{registry_profile=\"local\"} to disappear",
            |m| profile_series(m, PROFILE).is_empty(),
        )
        .await;
    if r.is_err() {
        let m = env.ctl(i).samples().await.expect("metrics");
        let left = profile_series(&m, PROFILE);
        c.check(
            false,
            format!(
                "10 s after the RegistryProfile was deleted /metrics still has {} series: {}",
                left.len(),
                left.join(", ")
            ),
        );
    }
    env.finish(c).await;
}

// ---------------------------------------------------------------------------------------------
// 7. Controller restart (SIGKILL)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_restart_keeps_events_status_and_gauges() {
    let Some(mut env) = Env::start(Rbac::ConfigDir).await else {
        return;
    };
    let mut c = Checks::new("controller-restart");
    steady(&mut env, "refwarden-0", false).await;
    let before = env.ctl(0).samples().await.expect("metrics");
    let lifecycle_before: BTreeMap<String, f64> = before
        .find(
            "refwarden_lifecycle_findings",
            &[("registry_profile", PROFILE)],
        )
        .into_iter()
        .map(|s| (s.labels["severity"].clone(), s.value))
        .collect();
    c.check(
        !lifecycle_before.is_empty(),
        "no refwarden_lifecycle_findings before the restart",
    );
    let events_before = event_counts(&env.events().await);

    env.controllers[0].kill();
    let seq = env.emu.request_seq().await.expect("request log");
    env.reg.clear_access_log();
    let i = env.start_controller("refwarden-1", false);
    env.ready(i).await;
    c.wait(
        env.wait_metrics(i, MEDIUM, "the new controller's policy gauges", |m| {
            policy_gauges(m, "p") == gauges(1.0, 1.0, 0.0)
        })
        .await,
    );
    let m = c.wait(
        env.wait_idle(i, &["referrerpolicy", "registryprofile"])
            .await,
    );

    // Gauges right after the restart, before any new probe (the interval is 1 h).
    let probes = env.reg.count_requests("POST", "/blobs/uploads/");
    c.eq("write probes since the restart", probes, 0);
    if let Some(m) = m {
        c.eq(
            "refwarden_registry_reachable after the restart",
            m.value(
                "refwarden_registry_reachable",
                &[("registry_profile", PROFILE)],
            ),
            Some(1.0),
        );
        let lifecycle_after: BTreeMap<String, f64> = m
            .find(
                "refwarden_lifecycle_findings",
                &[("registry_profile", PROFILE)],
            )
            .into_iter()
            .map(|s| (s.labels["severity"].clone(), s.value))
            .collect();
        c.eq(
            "refwarden_lifecycle_findings after the restart",
            lifecycle_after,
            lifecycle_before,
        );
        c.check(
            !m.find(
                "refwarden_registry_capability",
                &[("registry_profile", PROFILE)],
            )
            .is_empty(),
            "no refwarden_registry_capability after the restart",
        );
    }

    // No duplicate Events, no status rewrite.
    let events_after = event_counts(&env.events().await);
    c.eq(
        "Event occurrences after the restart",
        events_after,
        events_before,
    );
    for plural in ["referrerpolicies", "registryprofiles"] {
        let patches = env.status_patches(seq, plural, "").await;
        c.check(
            patches.is_empty(),
            format!(
                "{} {plural} status write(s) after the restart though nothing changed: {:?}",
                patches.len(),
                patches.iter().map(RequestEntry::line).collect::<Vec<_>>()
            ),
        );
    }
    env.finish(c).await;
}

// ---------------------------------------------------------------------------------------------
// 8. API server restart with compaction

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_restart_with_compaction_relists_without_duplicates() {
    let Some(mut env) = Env::start(Rbac::ConfigDir).await else {
        return;
    };
    let mut c = Checks::new("api-restart");
    steady(&mut env, "refwarden-0", false).await;
    let events_before = event_counts(&env.events().await);
    let seq = env.emu.request_seq().await.expect("request log");
    let r = env.emu.restart().await.expect("restarting the emulator");
    c.check(
        r["restartGeneration"].as_u64().unwrap_or(0) >= 1,
        format!("restart answer: {r}"),
    );

    // Every watcher of the controller lists again and watches from the new list.
    let resources = ["pods", "namespaces", "referrerpolicies", "registryprofiles"];
    let relisted = wait_until(MEDIUM, "the controller to re-list and re-watch", || async {
        let log = env.emu.requests(seq).await.map_err(|e| e.to_string())?;
        let ours: Vec<&RequestEntry> = log.iter().filter(|r| r.user == SA_USER).collect();
        let pending: Vec<String> = resources
            .iter()
            .filter(|res| {
                let list_at = ours
                    .iter()
                    .position(|r| r.resource == **res && r.verb == "list" && r.status == 200);
                let watch_after = list_at.is_some_and(|i| {
                    ours[i..]
                        .iter()
                        .any(|r| r.resource == **res && r.watch && r.status == 200)
                });
                !watch_after
            })
            .map(|s| s.to_string())
            .collect();
        if pending.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "not yet re-listed and re-watched: {pending:?}; requests since the restart:\n{}",
                ours.iter().map(|r| r.line()).collect::<Vec<_>>().join("\n")
            ))
        }
    })
    .await;
    c.wait(relisted);
    let _ = c.wait(
        env.wait_idle(0, &["referrerpolicy", "registryprofile"])
            .await,
    );
    c.check(
        env.controllers[0].is_running(),
        "the controller exited after the API restart",
    );
    c.eq(
        "/readyz after the restart",
        env.ctl(0).readyz().await.ok(),
        Some(200),
    );

    let events_after = event_counts(&env.events().await);
    c.eq(
        "Event occurrences after the API restart",
        events_after,
        events_before,
    );
    for plural in ["referrerpolicies", "registryprofiles"] {
        let patches = env.status_patches(seq, plural, "").await;
        c.check(
            patches.is_empty(),
            format!(
                "{} {plural} status write(s) after the API restart though nothing changed: {:?}",
                patches.len(),
                patches.iter().map(RequestEntry::line).collect::<Vec<_>>()
            ),
        );
    }
    // And the controller still works: a new unsigned pod is reported.
    let other = push(&env.reg, &env.seeder, "emu/other", "1.0").await;
    env.add_pod("other", &other).await;
    let d = other.digest().to_string();
    c.wait(
        env.wait_policy(
            "p",
            MEDIUM,
            "a violation for a pod added after the restart",
            |o| violation_for(&o["status"], &d).is_some(),
        )
        .await,
    );
    env.finish(c).await;
}

// ---------------------------------------------------------------------------------------------
// 9. Two replicas with leader election

/// Status writes and Event writes in the authz log, by replica marker group.
fn writers(authz: &[AuthzEntry]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in authz.iter().filter(|e| e.user == SA_USER) {
        let write = (e.subresource == "status" && e.verb == "patch")
            || (e.resource == "events" && (e.verb == "create" || e.verb == "patch"));
        if !write {
            continue;
        }
        let replica = e
            .groups
            .iter()
            .find_map(|g| g.strip_prefix("refwarden.test/replica:"))
            .unwrap_or("?")
            .to_string();
        out.entry(replica).or_default().push(format!(
            "{} {}{}{}/{}",
            e.verb,
            e.resource,
            if e.subresource.is_empty() { "" } else { "/" },
            e.subresource,
            e.name
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_only_the_leader_writes_and_the_standby_takes_over() {
    let Some(mut env) = Env::start(Rbac::ConfigDir).await else {
        return;
    };
    let mut c = Checks::new("leader-election");
    env.apply_policy("p", signature_only()).await;
    env.add_pod("signed", &env.signed.clone()).await;
    env.add_pod("bare", &env.bare.clone()).await;
    for replica in ["a", "b"] {
        let kc = env
            .emu
            .replica_kubeconfig(replica, None)
            .await
            .expect("replica token");
        let i = env.start_controller_with(
            ControllerOptions::new(
                env!("CARGO_BIN_EXE_refwarden"),
                &format!("refwarden-{replica}"),
                &kc,
            )
            .leader_election(true),
        );
        env.ready(i).await;
    }
    let holder = wait_for(MEDIUM, "a Lease holder", || async {
        match env.emu.lease_holder(LEASE).await {
            Ok(Some(h)) => Ok(h),
            Ok(None) => Err("no holder".into()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
    let (li, si) = if holder == "refwarden-a" {
        (0, 1)
    } else {
        (1, 0)
    };
    let (leader, standby) = (
        env.ctl(li).identity().to_string(),
        env.ctl(si).identity().to_string(),
    );
    let (leader_marker, standby_marker) = (
        leader.trim_start_matches("refwarden-").to_string(),
        standby.trim_start_matches("refwarden-").to_string(),
    );
    env.wait_evaluated(li, "p")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    env.wait_events(SHORT, "the leader's Events", |evs| {
        !events_for(evs, "MissingReferrers", "bare").is_empty()
            && !events_for(evs, "ImageNonCompliant", "p").is_empty()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    c.wait(
        env.wait_metrics(li, SHORT, "refwarden_leader 1 on the leader", |m| {
            m.value("refwarden_leader", &[]) == Some(1.0)
        })
        .await,
    );
    c.wait(
        env.wait_metrics(si, SHORT, "refwarden_leader 0 on the standby", |m| {
            m.value("refwarden_leader", &[]) == Some(0.0)
        })
        .await,
    );

    // Only the leader wrote.
    let evs = env.events().await;
    let instances: Vec<String> = evs
        .iter()
        .map(|e| {
            e["reportingInstance"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    c.check(
        instances.iter().all(|i| *i == leader),
        format!("Events not from the leader {leader}: {instances:?}"),
    );
    let w = writers(&env.emu.authz(0).await.expect("authz"));
    c.check(
        w.contains_key(&leader_marker) && w.keys().all(|k| *k == leader_marker),
        format!("status/Event writes by replica other than the leader {leader_marker}: {w:?}"),
    );

    // Gauges on both: the leader from its evaluation, the standby from the stored status.
    for (i, who) in [(li, "leader"), (si, "standby")] {
        let r = env
            .wait_metrics(i, SHORT, &format!("full gauges on the {who}"), |m| {
                policy_gauges(m, "p") == gauges(1.0, 1.0, 0.0)
                    && m.value(
                        "refwarden_registry_reachable",
                        &[("registry_profile", PROFILE)],
                    ) == Some(1.0)
                    && !m
                        .find(
                            "refwarden_lifecycle_findings",
                            &[("registry_profile", PROFILE)],
                        )
                        .is_empty()
                    && !m
                        .find(
                            "refwarden_registry_capability",
                            &[("registry_profile", PROFILE)],
                        )
                        .is_empty()
            })
            .await;
        if r.is_err() {
            let m = env.ctl(i).samples().await.expect("metrics");
            c.check(
                false,
                format!(
                    "{who} {}: policy gauges {:?} (expected {:?}), registry_reachable {:?}, \
                     lifecycle_findings {} series, registry_capability {} series",
                    env.ctl(i).identity(),
                    policy_gauges(&m, "p"),
                    gauges(1.0, 1.0, 0.0),
                    m.value(
                        "refwarden_registry_reachable",
                        &[("registry_profile", PROFILE)]
                    ),
                    m.find(
                        "refwarden_lifecycle_findings",
                        &[("registry_profile", PROFILE)]
                    )
                    .len(),
                    m.find(
                        "refwarden_registry_capability",
                        &[("registry_profile", PROFILE)]
                    )
                    .len(),
                ),
            );
        }
    }
    let authz_seq = env
        .emu
        .authz(0)
        .await
        .expect("authz")
        .last()
        .map(|e| e.seq)
        .unwrap_or(0);

    // Failover: SIGKILL the leader; the standby holds the Lease within its duration.
    let killed = Instant::now();
    env.controllers[li].kill();
    let took_over = wait_until(
        Duration::from_secs(30),
        "the standby to take the Lease and lead",
        || async {
            let h = env
                .emu
                .lease_holder(LEASE)
                .await
                .map_err(|e| e.to_string())?;
            let m = env.ctl(si).samples().await.map_err(|e| e.to_string())?;
            let leading = m.value("refwarden_leader", &[]);
            if h.as_deref() == Some(standby.as_str()) && leading == Some(1.0) {
                Ok(())
            } else {
                Err(format!(
                    "holder {h:?}, standby refwarden_leader {leading:?}"
                ))
            }
        },
    )
    .await;
    let took_over = c.wait(took_over).is_some();
    eprintln!(
        "[leader-election] failover took {:.1}s",
        killed.elapsed().as_secs_f64()
    );
    if took_over {
        // It keeps writing: a new unsigned pod gets a violation and a Warning from the new leader.
        let extra = push(&env.reg, &env.seeder, "emu/extra", "1.0").await;
        env.add_pod("extra", &extra).await;
        let d = extra.digest().to_string();
        c.wait(
            env.wait_policy("p", MEDIUM, "the new leader to report the new pod", |o| {
                violation_for(&o["status"], &d).is_some()
            })
            .await,
        );
        let evs = c.wait(
            env.wait_events(SHORT, "a MissingReferrers from the new leader", |evs| {
                events_for(evs, "MissingReferrers", "extra")
                    .iter()
                    .any(|e| e["reportingInstance"] == standby.as_str())
            })
            .await,
        );
        if let Some(evs) = evs {
            c.eq(
                "MissingReferrers about bare after the failover (no duplicate)",
                occurrence_count(&evs, "MissingReferrers", "bare"),
                1,
            );
        }
        let w = writers(&env.emu.authz(authz_seq).await.expect("authz"));
        c.check(
            w.contains_key(&standby_marker) && w.keys().all(|k| *k == standby_marker),
            format!("writes after the failover should all come from {standby_marker}: {w:?}"),
        );
        c.wait(
            env.wait_metrics(si, SHORT, "the new leader's gauges", |m| {
                policy_gauges(m, "p") == gauges(1.0, 2.0, 0.0)
            })
            .await,
        );
    }
    env.finish(c).await;
}

// ---------------------------------------------------------------------------------------------
// 10. API faults on status writes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_write_faults_are_retried_a_bounded_number_of_times() {
    let Some(mut env) = Env::start(Rbac::ConfigDir).await else {
        return;
    };
    let mut c = Checks::new("api-faults");
    env.apply_policy("p", signature_only()).await;
    env.add_pod("signed", &env.signed.clone()).await;
    let i = env.start_controller("refwarden-0", false);
    env.ready(i).await;
    env.wait_evaluated(i, "p")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let seq = env.emu.request_seq().await.expect("request log");
    for (status, headers) in [
        (429, json!({"Retry-After": "1"})),
        (500, json!({})),
        (409, json!({})),
    ] {
        env.emu
            .add_fault(json!({
                "method": "PATCH", "path": "/referrerpolicies/p/status", "subresource": "status",
                "user": SA_USER, "status": status, "headers": headers, "count": 1,
            }))
            .await
            .expect("adding a fault");
    }
    let started = Instant::now();
    env.add_pod("bare", &env.bare.clone()).await;
    let d = env.bare.digest().to_string();
    let done = c.wait(
        env.wait_policy(
            "p",
            Duration::from_secs(30),
            "the status after the faults",
            |o| violation_for(&o["status"], &d).is_some(),
        )
        .await,
    );
    eprintln!(
        "[api-faults] status right after {:.1}s",
        started.elapsed().as_secs_f64()
    );
    if let Some(o) = done {
        c.eq(
            "summary",
            o["status"]["summary"].clone(),
            json!({"pods": 2, "images": 2, "compliant": 1, "nonCompliant": 1, "unknown": 0}),
        );
    }
    let left = env.emu.faults().await.expect("faults");
    c.check(left.is_empty(), format!("fault rules not used: {left:?}"));
    let _ = env.wait_idle(i, &["referrerpolicy"]).await;
    let attempts: Vec<u16> = env
        .status_patches(seq, "referrerpolicies", "p")
        .await
        .iter()
        .map(|r| r.status)
        .collect();
    eprintln!("[api-faults] status write attempts: {attempts:?}");
    c.check(
        attempts.len() >= 4 && attempts[..3] == [429, 500, 409] && attempts[3] == 200,
        format!("status write attempts: {attempts:?}, expected [429, 500, 409, 200]"),
    );
    c.check(
        attempts.len() <= 5,
        format!(
            "{} status write attempts for one change (bound 5): {attempts:?}",
            attempts.len()
        ),
    );
    let evs = c.wait(
        env.wait_events(SHORT, "the Events once the status is written", |evs| {
            !events_for(evs, "MissingReferrers", "bare").is_empty()
                && !events_for(evs, "ImageNonCompliant", "p").is_empty()
        })
        .await,
    );
    if let Some(evs) = evs {
        c.eq(
            "MissingReferrers occurrences",
            occurrence_count(&evs, "MissingReferrers", "bare"),
            1,
        );
        c.eq(
            "ImageNonCompliant occurrences",
            occurrence_count(&evs, "ImageNonCompliant", "p"),
            1,
        );
    }
    env.finish(c).await;
}

// ---------------------------------------------------------------------------------------------
// 11. RBAC: config/rbac and the chart's RBAC allow everything the controller does

/// A whole run: leader election, probe, evaluation, Events (created and repeated as a series),
/// a spec change, a pod deleted, a graceful stop (Lease released).
async fn rbac_run(rbac: Rbac, scenario: &'static str) {
    let Some(mut env) = Env::start(rbac).await else {
        return;
    };
    let mut c = Checks::new(scenario);
    env.apply_policy("p", signature_only()).await;
    env.add_pod("signed", &env.signed.clone()).await;
    env.add_pod("bare", &env.bare.clone()).await;
    let i = env.start_controller("refwarden-0", true);
    env.ready(i).await;
    c.wait(env.wait_evaluated(i, "p").await);
    // The unsigned image left out, then checked again: its Events are repeated (EventSeries
    // patches).
    let bare_repo = format!("{}/{}", env.reg.host(), env.bare.repo);
    env.emu
        .apply(&json!({
            "apiVersion": "refwarden.dev/v1alpha1", "kind": "ReferrerPolicy",
            "metadata": {"name": "p"},
            "spec": {"require": signature_only(), "images": {"exclude": [bare_repo]}},
        }))
        .await
        .expect("excluding the unsigned image");
    c.wait(
        env.wait_policy("p", MEDIUM, "generation 2 without violations", |o| {
            o["status"]["observedGeneration"] == 2 && violations(&o["status"]).is_empty()
        })
        .await,
    );
    env.apply_policy("p", signature_only()).await;
    c.wait(
        env.wait_policy("p", MEDIUM, "generation 3 evaluated", |o| {
            o["status"]["observedGeneration"] == 3 && violations(&o["status"]).len() == 1
        })
        .await,
    );
    c.wait(
        env.wait_events(SHORT, "a repeated MissingReferrers", |evs| {
            occurrence_count(evs, "MissingReferrers", "bare") >= 2
        })
        .await,
    );
    env.emu
        .delete(&pod_path("default", "bare"))
        .await
        .expect("deleting the pod");
    c.wait(
        env.wait_policy("p", MEDIUM, "the deleted pod's violation gone", |o| {
            violations(&o["status"]).is_empty()
        })
        .await,
    );
    let status = env.controllers[i].stop(Duration::from_secs(10));
    c.check(
        status.is_some_and(|s| s.success()),
        format!("graceful stop: exit status {status:?}"),
    );

    // What was exercised (so "all allowed" means something).
    let authz = env.emu.authz(0).await.expect("authz");
    let verbs: std::collections::BTreeSet<String> = authz
        .iter()
        .filter(|e| e.user == SA_USER && e.resource_request)
        .map(|e| {
            format!(
                "{} {}{}{}",
                e.verb,
                e.resource,
                if e.subresource.is_empty() { "" } else { "/" },
                e.subresource
            )
        })
        .collect();
    for needed in [
        "list pods",
        "watch pods",
        "list namespaces",
        "list referrerpolicies",
        "list registryprofiles",
        "patch referrerpolicies/status",
        "patch registryprofiles/status",
        "create events",
        "patch events",
        "create leases",
    ] {
        c.check(
            verbs.contains(needed),
            format!("the run never did {needed:?} (did: {verbs:?})"),
        );
    }
    env.finish(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_of_config_dir_allows_every_request_of_a_whole_run() {
    rbac_run(Rbac::ConfigDir, "rbac-config").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_of_helm_chart_allows_every_request_of_a_whole_run() {
    rbac_run(Rbac::HelmChart, "rbac-chart").await;
}

// ---------------------------------------------------------------------------------------------
// 12. A deleted RegistryProfile takes its client and credentials along

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_profile_takes_its_credentials_along() {
    let Some(mut env) = Env::start(Rbac::ConfigDir).await else {
        return;
    };
    let mut c = Checks::new("profile-delete-credentials");
    // The registry now wants Basic credentials; the profile carries them in a Secret.
    env.reg
        .update_quirks(|q| q.require_basic_auth = Some(("robot".into(), "emu-S3cret-7c1d".into())));
    env.emu
        .apply(&json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "local-pull", "namespace": "refwarden-system"},
            "type": "kubernetes.io/basic-auth",
            "stringData": {"username": "robot", "password": "emu-S3cret-7c1d"},
        }))
        .await
        .expect("applying the Secret");
    env.emu
        .merge_patch(
            &profile_path(PROFILE),
            &json!({"spec": {"credentialsSecretRef": {"namespace": "refwarden-system", "name": "local-pull"}}}),
        )
        .await
        .expect("pointing the profile at the Secret");
    env.apply_policy("p", signature_only()).await;
    let signed = env.signed.clone();
    env.add_pod("signed", &signed).await;
    let i = env.start_controller("refwarden-0", false);
    env.ready(i).await;
    c.wait(
        env.wait_policy(
            "p",
            MEDIUM,
            "compliant with the profile's credentials",
            |o| o["status"]["summary"]["compliant"] == 1,
        )
        .await,
    );
    env.emu
        .delete(&profile_path(PROFILE))
        .await
        .expect("deleting the profile");
    env.reg.clear_access_log();
    // Without the profile the image is looked up anonymously: Unknown (AuthFailed), and no
    // request carries the deleted profile's credentials any more.
    c.wait(
        env.wait_policy("p", MEDIUM, "Unknown without the deleted profile", |o| {
            o["status"]["summary"]["unknown"] == 1
        })
        .await,
    );
    let with_auth: Vec<String> = env
        .reg
        .access_log()
        .into_iter()
        .filter(|e| e.auth_scheme.is_some())
        .map(|e| format!("{} {}", e.method, e.path))
        .collect();
    c.check(
        with_auth.is_empty(),
        format!("after the delete, requests still carried credentials: {with_auth:?}"),
    );
    env.finish(c).await;
}

// ---------------------------------------------------------------------------------------------
// 13. A registry whose referrers answer changes is probed again without waiting for the interval

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_fixes_its_answer_is_probed_again() {
    let Some(mut env) = Env::start(Rbac::ConfigDir).await else {
        return;
    };
    let mut c = Checks::new("re-probe-on-change");
    // Harbor 2.9: the referrers index with `Content-Type: application/json`.
    env.reg
        .update_quirks(|q| q.referrers = refwarden_testkit::ReferrersMode::WrongContentTypeJson);
    env.apply_policy("p", signature_only()).await;
    let signed = env.signed.clone();
    env.add_pod("signed", &signed).await;
    let i = env.start_controller("refwarden-0", false);
    env.ready(i).await;
    let reason = |o: &Value| {
        o["status"]["capabilities"]["referrersApi"]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    c.wait(
        env.wait_for_profile(MEDIUM, "probed: Supported, non-conformant", |o| {
            reason(o) == "NonConformantContentType"
        })
        .await,
    );
    c.wait(
        env.wait_policy("p", MEDIUM, "compliant through the JSON answer", |o| {
            o["status"]["summary"]["compliant"] == 1
        })
        .await,
    );
    // The upgrade to 2.10; a new image is deployed (its discovery sees the new answer).
    env.reg
        .update_quirks(|q| q.referrers = refwarden_testkit::ReferrersMode::Native);
    let next = push(&env.reg, &env.seeder, "emu/next", "1.0").await;
    env.add_pod("next", &next).await;
    c.wait(
        env.wait_for_profile(MEDIUM, "probed again before its 1 h interval", |o| {
            reason(o) == "IndexReturned"
        })
        .await,
    );
    env.finish(c).await;
}

// ---------------------------------------------------------------------------------------------
// 14. The controller finds cosign 2 `.sig` tags on a registry with the referrers API

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_finds_cosign2_tag_signatures() {
    let Some(mut env) = Env::start(Rbac::ConfigDir).await else {
        return;
    };
    let mut c = Checks::new("cosign2-tags");
    let tagged = push(&env.reg, &env.seeder, "emu/cosign2", "1.0").await;
    refwarden_testkit::tools::cosign2_sign(&env.seeder, "emu/cosign2", tagged.digest())
        .await
        .expect("cosign 2 signature tag");
    env.apply_policy("p", signature_only()).await;
    let signed = env.signed.clone();
    let bare = env.bare.clone();
    env.add_pod("native", &signed).await;
    env.add_pod("tagged", &tagged).await;
    env.add_pod("bare", &bare).await;
    let i = env.start_controller("refwarden-0", false);
    env.ready(i).await;
    if let Some(o) = c.wait(env.wait_evaluated(i, "p").await) {
        let s = &o["status"];
        c.eq("compliant", s["summary"]["compliant"].clone(), json!(2));
        c.eq(
            "non-compliant",
            s["summary"]["nonCompliant"].clone(),
            json!(1),
        );
        c.eq(
            "the violation",
            violations(s)
                .first()
                .map(|v| v["digest"].clone())
                .unwrap_or_default(),
            json!(bare.digest()),
        );
    }
    env.finish(c).await;
}

// ---------------------------------------------------------------------------------------------
// Verification: the controller verifies signatures with a key it reads from a ConfigMap

/// A policy whose signature requirement `verify`s with a key in a ConfigMap (read with the
/// RBAC of `config/rbac`): the image signed by that key is compliant and listed as verified
/// (which key, which referrer); the image whose signature-typed referrer holds no verifiable
/// signature is a violation that says why (`InvalidPayload`); gauges and counters say the same. A policy naming a
/// ConfigMap that does not exist is `Ready=False` naming the field, and turns Ready once the
/// ConfigMap is created (retried without a spec change).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_verifies_signatures_with_a_key_from_a_configmap() {
    use refwarden_testkit::sigstore_gen::{Alg, Key};
    let Some(mut env) = Env::start(Rbac::ConfigDir).await else {
        return;
    };
    let mut c = Checks::new("verify");
    let key = Key::generate(Alg::P256);
    let keyed = push(&env.reg, &env.seeder, "emu/keyed", "1.0").await;
    let (sig, _) = refwarden_testkit::tools::cosign2_sign_with_key(
        &env.seeder,
        "emu/keyed",
        keyed.digest(),
        keyed.digest(),
        &key,
    )
    .await
    .expect("cosign 2 signature by the key");
    let verify = |cm: &str| {
        json!([{"name": "signature", "preset": "signature", "verify": {
            "keys": [{"configMapRef": {"namespace": SA_NAMESPACE, "name": cm, "key": "cosign.pub"}}],
            "ignoreTlog": true,
        }}])
    };
    env.apply_policy("p", verify("cosign-key")).await;
    env.add_pod("keyed", &keyed).await;
    env.add_pod("signed", &env.signed.clone()).await;
    let i = env.start_controller("refwarden-0", false);
    env.ready(i).await;

    // The ConfigMap does not exist yet: Ready=False naming the field.
    if let Some(o) = c.wait(
        env.wait_policy("p", MEDIUM, "Ready=False for the missing key", |o| {
            cond(&o["status"], "Ready").is_some_and(|r| r["status"] == "False")
        })
        .await,
    ) {
        let ready = cond(&o["status"], "Ready").cloned().unwrap_or_default();
        c.check(
            ready["message"].as_str().is_some_and(|m| {
                m.contains("spec.require[0].verify.keys[0].configMapRef")
                    && m.contains("ConfigMap refwarden-system/cosign-key")
            }),
            format!("Ready names the field and the ConfigMap: {ready}"),
        );
    }
    env.emu
        .apply(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cosign-key", "namespace": SA_NAMESPACE},
            "data": {"cosign.pub": key.public_pem()}}))
        .await
        .expect("creating the ConfigMap");
    // Retried within TRUST_RETRY (60 s) without a spec change.
    let evaluated = env
        .wait_policy(
            "p",
            Duration::from_secs(90),
            "evaluated with the key",
            |o| o["status"]["summary"]["images"] == 2,
        )
        .await;
    if let Some(o) = c.wait(evaluated) {
        let s = &o["status"];
        c.eq("compliant", s["summary"]["compliant"].clone(), json!(1));
        c.eq("verified", s["summary"]["verified"].clone(), json!(1));
        c.eq("unverified", s["summary"]["unverified"].clone(), json!(1));
        let fp = format!(
            "sha256:{}",
            hex::encode(refwarden_testkit::sigstore_gen::sha256(&key.spki_der()))
        );
        c.eq(
            "verified referrer",
            s["verified"][0]["referrers"][0].clone(),
            json!({"requirement": "signature", "referrer": sig, "format": "cosign-simple-signing",
                   "signer": format!("key {fp}")}),
        );
        let v = violation_for(s, env.signed.digest())
            .cloned()
            .unwrap_or_default();
        c.eq("missing", missing_of(&v), vec!["signature".to_string()]);
        c.eq(
            "why",
            v["unverified"][0]["reason"].clone(),
            // Its one layer (b"signature") is read as cosign reads a `.sig` layer: not a
            // simple-signing payload.
            json!("InvalidPayload"),
        );
    }
    c.wait(
        env.wait_metrics(i, SHORT, "verification gauges and counters", |m| {
            m.value(
                "refwarden_policy_verification_images",
                &[("policy", "p"), ("state", "verified")],
            ) == Some(1.0)
                && m.value(
                    "refwarden_policy_verification_images",
                    &[("policy", "p"), ("state", "unverified")],
                ) == Some(1.0)
                && m.value("refwarden_verifications_total", &[("outcome", "verified")]) == Some(1.0)
        })
        .await,
    );
    env.finish(c).await;
}
