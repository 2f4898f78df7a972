//! Argo CD and Flux health checks, and the Grafana dashboard's / PrometheusRule's metrics, checked
//! against what the real controller does (the emulator tier: `refwarden controller` against the
//! Kubernetes API emulator, authenticated as its ServiceAccount with the chart's RBAC).
//!
//! One controller run produces the statuses GitOps tools see — compliant, non-compliant, unknown
//! (registry down), invalid spec, reconciling (every version is recorded through a watch), a spec
//! the controller has not observed yet, a Ready and an unreachable RegistryProfile — then:
//! - the shipped Lua health checks (`charts/refwarden/argocd/`, run by lua5.1 as Argo CD would)
//!   and the documented Flux `healthCheckExprs` (docs/gitops-health.md, evaluated with a CEL
//!   interpreter as kustomize-controller does) give the verdicts docs/gitops-health.md promises,
//!   and agree with each other on every status version the controller wrote;
//! - every PromQL expression of the dashboard (panels and variables) and of the PrometheusRule
//!   names only series, and matches / groups only on labels, that this controller's `/metrics`
//!   exports, and every exported family is on the dashboard.
//!
//! Skipped when python3 or PyYAML is missing, except under `CI=true`, where that fails.

use refwarden_testkit::helm;

use refwarden_testkit::promql;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use refwarden_testkit::emulator::*;
use refwarden_testkit::gitops::{
    FluxStatus, argocd_health, documented_exprs, flux_equivalent, flux_status,
};
use refwarden_testkit::{OciRegistry, PushedImage, Quirks, SeedAuth, Seeder};
use serde_json::{Value, json};

const SIG: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
const WAIT: Duration = Duration::from_secs(20);

fn cond<'a>(o: &'a Value, t: &str) -> Option<&'a Value> {
    o["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == t)
}

fn cond_is(o: &Value, t: &str, status: &str) -> bool {
    cond(o, t).is_some_and(|c| c["status"] == status)
}

/// Evaluated for the current generation and not reconciling any more.
fn settled(o: &Value) -> bool {
    o["status"]["observedGeneration"] == o["metadata"]["generation"]
        && cond_is(o, "Reconciling", "False")
}

fn chart_rbac() -> Vec<Value> {
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

/// A port nothing listens on (bound, then released).
fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn pod(name: &str, case: &str, image: &str, image_id: &str) -> RunningPod {
    let mut p = RunningPod::new("default", name, image, image_id);
    p.labels.insert("case".into(), case.into());
    p
}

fn policy(name: &str, case: &str, extra: Value) -> Value {
    let mut spec = json!({
        "podSelector": {"matchLabels": {"case": case}},
        "require": [{"name": "signature", "preset": "signature"}],
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    json!({"apiVersion": "refwarden.dev/v1alpha1", "kind": "ReferrerPolicy",
           "metadata": {"name": name}, "spec": spec})
}

async fn wait_object(
    emu: &Emulator,
    path: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Result<Value, String> {
    let pred = &pred;
    wait_until(WAIT, what, || async move {
        match emu.get(path).await.map_err(|e| e.to_string())? {
            Some(o) if pred(&o) => Ok(o),
            Some(o) => Err(format!(
                "generation {} status {}",
                o["metadata"]["generation"], o["status"]
            )),
            None => Err("404".into()),
        }
    })
    .await
}

/// `Some(failure)` unless Argo CD says `argo` (message containing `argo_msg`) and Flux `flux`.
fn check(what: &str, obj: &Value, argo: &str, argo_msg: &str, flux: FluxStatus) -> Option<String> {
    let (a, msg, f) = verdicts(obj);
    (a != argo || !msg.contains(argo_msg) || f.as_ref() != Ok(&flux)).then(|| {
        format!(
            "{what}: Argo CD {a} {msg:?} (want {argo} containing {argo_msg:?}), Flux {f:?} (want {flux:?}); status {}",
            obj["status"]
        )
    })
}

/// What both GitOps tools make of one object: (Argo CD status, Argo CD message, Flux status).
fn verdicts(obj: &Value) -> (String, String, Result<FluxStatus, String>) {
    let kind = obj["kind"].as_str().unwrap_or("");
    let (status, message) = argocd_health(obj);
    let flux = flux_status(&documented_exprs(kind), obj);
    (status, message, flux)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argocd_and_flux_health_of_the_statuses_the_controller_writes() {
    if !availability() {
        return;
    }
    refwarden_testkit::init_tracing();
    let started = Instant::now();
    let reg = OciRegistry::start(Quirks::default()).expect("starting the OCI registry");
    let seeder = Seeder::new(&reg.url(), SeedAuth::None).expect("seeder");
    let emu = Emulator::start(EmulatorOptions::default())
        .await
        .expect("starting the emulator");
    emu.install_refwarden(&chart_rbac())
        .await
        .expect("installing CRDs, namespace and the chart's RBAC");

    // Images: signed (a referrer signature), bare (nothing), lost (on a registry that is down).
    let signed: PushedImage = seeder.push_image("emu/signed", "1.0").await.expect("push");
    seeder
        .push_artifact(
            "emu/signed",
            Some(&signed.subject()),
            SIG,
            b"signature",
            None,
        )
        .await
        .expect("pushing the signature");
    let bare: PushedImage = seeder.push_image("emu/bare", "1.0").await.expect("push");
    let host = reg.host();
    let dead = format!("127.0.0.1:{}", dead_port());
    let lost_digest = format!("sha256:{}", "ab".repeat(32));

    for p in [
        json!({"apiVersion": "refwarden.dev/v1alpha1", "kind": "RegistryProfile",
               "metadata": {"name": "local"},
               "spec": {"registryUrl": reg.url(), "plainHttp": true,
                        "testRepository": "emu/signed", "testTag": "1.0",
                        "lifecycle": {"distribution": {"version": "2.8.3",
                                      "garbageCollection": {"deleteUntagged": true}}}}}),
        json!({"apiVersion": "refwarden.dev/v1alpha1", "kind": "RegistryProfile",
               "metadata": {"name": "down"},
               "spec": {"registryUrl": format!("http://{dead}"), "plainHttp": true,
                        "testRepository": "emu/lost", "timeoutSeconds": 2}}),
    ] {
        emu.apply(&p).await.expect("applying a RegistryProfile");
    }
    // Every version of every refwarden object, from before the controller starts.
    let policy_watch = emu
        .watch("/apis/refwarden.dev/v1alpha1/referrerpolicies")
        .await
        .expect("watching policies");
    let profile_watch = emu
        .watch("/apis/refwarden.dev/v1alpha1/registryprofiles")
        .await
        .expect("watching profiles");

    // One failed status write, so the reconcile error counter has a sample too (its labels are
    // checked like every other series the dashboard reads).
    emu.add_fault(json!({
        "method": "PATCH", "path": "/referrerpolicies/non-compliant/status", "subresource": "status",
        "user": SA_USER, "status": 500, "headers": {}, "count": 1,
    }))
    .await
    .expect("adding a fault");

    let mut ctl = Controller::start(ControllerOptions::new(
        env!("CARGO_BIN_EXE_refwarden"),
        "refwarden-0",
        emu.sa_kubeconfig(),
    ))
    .expect("starting refwarden controller");
    ctl.wait_ready(WAIT).await.expect("controller ready");

    let mut failures: Vec<String> = Vec::new();
    for (name, want) in [("local", "True"), ("down", "False")] {
        if let Err(e) = wait_object(
            &emu,
            &profile_path(name),
            &format!("profile {name} Ready={want}"),
            |o| settled(o) && cond_is(o, "Ready", want),
        )
        .await
        {
            failures.push(format!("{name}: {e}"));
        }
    }
    for p in [
        pod(
            "signed",
            "signed",
            &format!("{host}/emu/signed:1.0"),
            &format!("{host}/emu/signed@{}", signed.digest),
        ),
        pod(
            "bare",
            "bare",
            &format!("{host}/emu/bare:1.0"),
            &format!("{host}/emu/bare@{}", bare.digest),
        ),
        pod(
            "lost",
            "lost",
            &format!("{dead}/emu/lost:1.0"),
            &format!("{dead}/emu/lost@{lost_digest}"),
        ),
    ] {
        emu.create_running_pod(&p)
            .await
            .expect("creating a running pod");
    }

    // Pods, then policies, once both profiles are probed. (Policies that exist before the
    // profiles are in the controller's registry directory are sometimes evaluated with the wrong
    // client — https to the plain-HTTP registry, a TLS error — and stay Compliant=Unknown until
    // the cached Unknown verdict expires: a controller start-up race this test is not about.)
    for p in [
        policy("compliant", "signed", json!({})),
        policy("non-compliant", "bare", json!({})),
        policy("unknown", "lost", json!({})),
        policy(
            "invalid-spec",
            "signed",
            json!({"registryProfiles": ["no-such-profile"]}),
        ),
        // The signed image's signature-typed referrer does not verify under this key: the
        // verification series have samples too (their labels are checked like every other).
        policy(
            "unverified",
            "signed",
            json!({"require": [{"name": "signature", "preset": "signature", "verify": {
                "keys": [{"pem": refwarden_testkit::sigstore_gen::Key::generate(
                    refwarden_testkit::sigstore_gen::Alg::P256).public_pem()}],
                "ignoreTlog": true}}]}),
        ),
    ] {
        emu.apply(&p).await.expect("applying a ReferrerPolicy");
    }
    // The stored statuses, once the controller has settled on each.
    let p = |n: &str| policy_path(n);
    let compliant = wait_object(
        &emu,
        &p("compliant"),
        "policy compliant: Compliant=True",
        |o| settled(o) && cond_is(o, "Compliant", "True") && o["status"]["summary"]["images"] == 1,
    )
    .await;
    let non_compliant = wait_object(
        &emu,
        &p("non-compliant"),
        "policy non-compliant: Compliant=False",
        |o| settled(o) && cond_is(o, "Compliant", "False"),
    )
    .await;
    let unknown = wait_object(
        &emu,
        &p("unknown"),
        "policy unknown: Compliant=Unknown",
        |o| {
            settled(o)
                && cond_is(o, "Compliant", "Unknown")
                && o["status"]["summary"]["unknown"] == 1
        },
    )
    .await;
    if let Err(e) = wait_object(
        &emu,
        &p("unverified"),
        "policy unverified: Compliant=False, one unverified image",
        |o| {
            settled(o)
                && cond_is(o, "Compliant", "False")
                && o["status"]["summary"]["unverified"] == 1
        },
    )
    .await
    {
        failures.push(format!("unverified: {e}"));
    }
    let invalid = wait_object(
        &emu,
        &p("invalid-spec"),
        "policy invalid-spec judged",
        |o| cond_is(o, "Stalled", "True"),
    )
    .await;
    let local = wait_object(&emu, &profile_path("local"), "profile local probed", |o| {
        settled(o) && cond(o, "Ready").is_some_and(|c| c["status"] != "Unknown")
    })
    .await;
    let down = wait_object(&emu, &profile_path("down"), "profile down probed", |o| {
        settled(o) && cond(o, "Ready").is_some_and(|c| c["status"] != "Unknown")
    })
    .await;
    for (name, r) in [
        ("compliant", &compliant),
        ("non-compliant", &non_compliant),
        ("unknown", &unknown),
        ("invalid-spec", &invalid),
        ("local", &local),
        ("down", &down),
    ] {
        if let Err(e) = r {
            failures.push(format!("{name}: {e}"));
        }
    }
    // What the controller wrote is what each case is about (else the verdicts prove nothing).
    let expect_cond = |failures: &mut Vec<String>, name: &str, o: &Value, t: &str, s: &str| {
        if !cond_is(o, t, s) {
            failures.push(format!("{name}: expected {t}={s} in {}", o["status"]));
        }
    };
    if let Ok(o) = &compliant {
        expect_cond(&mut failures, "compliant", o, "Compliant", "True");
        failures.extend(check(
            "ReferrerPolicy compliant",
            o,
            "Healthy",
            "AllCompliant",
            FluxStatus::Current,
        ));
    }
    if let Ok(o) = &non_compliant {
        expect_cond(&mut failures, "non-compliant", o, "Compliant", "False");
        failures.extend(check(
            "ReferrerPolicy non-compliant",
            o,
            "Degraded",
            "MissingReferrers",
            FluxStatus::Failed,
        ));
    }
    if let Ok(o) = &unknown {
        expect_cond(&mut failures, "unknown", o, "Compliant", "Unknown");
        expect_cond(&mut failures, "unknown", o, "Ready", "True");
        failures.extend(check(
            "ReferrerPolicy unknown",
            o,
            "Progressing",
            "RegistryUnavailable",
            FluxStatus::InProgress,
        ));
    }
    if let Ok(o) = &invalid {
        expect_cond(&mut failures, "invalid-spec", o, "Ready", "False");
        failures.extend(check(
            "ReferrerPolicy invalid-spec",
            o,
            "Degraded",
            "spec.registryProfiles[0]",
            FluxStatus::Failed,
        ));
    }
    if let Ok(o) = &local {
        expect_cond(&mut failures, "local", o, "Ready", "True");
        failures.extend(check(
            "RegistryProfile local",
            o,
            "Healthy",
            "",
            FluxStatus::Current,
        ));
    }
    if let Ok(o) = &down {
        expect_cond(&mut failures, "down", o, "Ready", "False");
        expect_cond(&mut failures, "down", o, "Reachable", "False");
        failures.extend(check(
            "RegistryProfile down",
            o,
            "Degraded",
            "",
            FluxStatus::Failed,
        ));
    }

    // The metrics of this controller: every series the dashboard and the alerts read exists here,
    // with the labels they match and group on (once the injected write failure was counted).
    let metrics = match wait_until(WAIT, "a reconcile error sample on /metrics", || async {
        let text = ctl.metrics().await.map_err(|e| e.to_string())?;
        if text.contains("refwarden_reconcile_errors_total{") {
            Ok(text)
        } else {
            Err("no refwarden_reconcile_errors_total sample".to_string())
        }
    })
    .await
    {
        Ok(t) => t,
        Err(e) => {
            failures.push(e);
            ctl.metrics().await.expect("/metrics")
        }
    };
    let metric_failures = check_queries_against(&metrics);

    // Every version the controller wrote: "reconciling" was among them, and the two tools agree
    // on each (a registry error is never Degraded/Failed, a violation never Healthy/Current).
    let mut reconciling_seen = BTreeSet::new();
    let mut versions = 0;
    for (ty, obj) in policy_watch
        .events()
        .iter()
        .chain(profile_watch.events().iter())
    {
        if ty == "DELETED" {
            continue;
        }
        versions += 1;
        let name = obj["metadata"]["name"].as_str().unwrap_or("?").to_string();
        let (argo, msg, flux) = verdicts(obj);
        let flux_or_waiting = match &flux {
            Ok(f) => *f,
            // No status yet: the expressions error and Flux waits, like InProgress.
            Err(_) if obj["status"].is_null() => FluxStatus::InProgress,
            Err(e) => {
                failures.push(format!(
                    "{name}: the Flux expressions fail on a written status: {e}"
                ));
                continue;
            }
        };
        if flux_or_waiting != flux_equivalent(&argo) {
            failures.push(format!(
                "{name} (rv {}): Argo CD says {argo} ({msg}), Flux {flux:?}; status {}",
                obj["metadata"]["resourceVersion"], obj["status"]
            ));
        }
        if cond_is(obj, "Reconciling", "True") {
            if argo != "Progressing" || flux_or_waiting != FluxStatus::InProgress {
                failures.push(format!("{name}: Reconciling=True is {argo} / {flux:?}"));
            }
            reconciling_seen.insert(name);
        }
    }
    for n in ["compliant", "non-compliant", "unknown"] {
        if !reconciling_seen.contains(n) {
            failures.push(format!(
                "no Reconciling=True status of policy {n} was recorded (seen for {reconciling_seen:?})"
            ));
        }
    }
    if let Some(e) = policy_watch.ended() {
        failures.push(format!("the policy watch ended early: {e}"));
    }

    // A spec the controller has not observed yet: stop it, change the spec, read the status.
    let _ = ctl.stop(Duration::from_secs(5));
    match emu
        .merge_patch(
            &p("compliant"),
            &json!({"spec": {"recheckInterval": "11m"}}),
        )
        .await
    {
        Ok(changed) => {
            if changed["metadata"]["generation"] == changed["status"]["observedGeneration"] {
                failures.push(format!(
                    "the spec change did not bump the generation: {changed}"
                ));
            }
            failures.extend(check(
                "ReferrerPolicy with an unobserved spec change",
                &changed,
                "Progressing",
                "observe generation",
                FluxStatus::InProgress,
            ));
        }
        Err(e) => failures.push(format!("changing the spec: {e}")),
    }

    eprintln!(
        "[emulator-gitops] {versions} status versions checked in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    failures.extend(metric_failures);
    if !failures.is_empty() {
        eprintln!("---- controller log ----\n{}", ctl.log_tail(40));
        panic!(
            "{} check(s) failed:\n  - {}",
            failures.len(),
            failures.join("\n  - ")
        );
    }
}

/// Checks the dashboard's and the PrometheusRule's PromQL against a `/metrics` page.
fn check_queries_against(metrics_text: &str) -> Vec<String> {
    let exported = promql::Exported::parse(metrics_text);
    let mut failures = Vec::new();
    let d: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("charts/refwarden/dashboards/refwarden.json"))
            .expect("dashboard"),
    )
    .expect("dashboard JSON");
    let mut exprs: Vec<(String, String)> = Vec::new();
    for v in d["templating"]["list"].as_array().expect("variables") {
        if v["type"] != "query" {
            continue;
        }
        let q = v["query"].as_str().unwrap_or("");
        match promql::label_values(q) {
            Some(Ok((reads, label))) => {
                for s in &reads.selectors {
                    let has = exported
                        .sampled
                        .get(&s.metric)
                        .is_some_and(|l| l.contains(&label))
                        || promql::TARGET_LABELS.contains(&label.as_str());
                    if !has {
                        failures.push(format!(
                            "variable {}: {} exports no label {label:?}",
                            v["name"], s.metric
                        ));
                    }
                }
                let selector = q.trim().trim_start_matches("label_values(");
                let selector = selector
                    .rsplit_once(',')
                    .map(|(s, _)| s)
                    .unwrap_or(selector);
                exprs.push((format!("variable {}", v["name"]), selector.to_string()));
            }
            Some(Err(e)) => failures.push(format!("variable {}: {e}", v["name"])),
            None => failures.push(format!("variable {}: not label_values(…): {q}", v["name"])),
        }
    }
    for p in d["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().into_iter().flatten() {
            exprs.push((
                format!("panel {:?}", p["title"].as_str().unwrap_or("")),
                t["expr"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    let rule_objs = helm::parse_yaml(&helm::run_ok(
        &helm::helm(),
        &[
            "template",
            "refwarden",
            "charts/refwarden",
            "--namespace",
            SA_NAMESPACE,
            "-f",
            "tests/fixtures/helm/full-values.yaml",
            "--show-only",
            "templates/prometheusrule.yaml",
        ],
    ));
    for r in helm::find(&rule_objs, "PrometheusRule", "refwarden")["spec"]["groups"][0]["rules"]
        .as_array()
        .expect("rules")
    {
        exprs.push((
            format!("alert {}", r["alert"].as_str().unwrap_or("?")),
            r["expr"].as_str().unwrap_or("").to_string(),
        ));
    }
    let mut read: BTreeSet<String> = BTreeSet::new();
    let mut unjudged: BTreeSet<String> = BTreeSet::new();
    for (at, expr) in &exprs {
        let (problems, u) = promql::check_against(expr, &exported, &["ALERTS"]);
        failures.extend(problems.into_iter().map(|p| format!("{at}: {p}")));
        unjudged.extend(u);
        if let Ok(r) = promql::reads(expr) {
            read.extend(r.selectors.into_iter().map(|s| s.metric));
        }
    }
    // Families exported without a sample in this run: their labels could not be checked.
    for u in &unjudged {
        failures.push(format!(
            "{u} had no sample in this run, so its labels were not checked: make the scenario produce one"
        ));
    }
    // Every family the controller exports is on the dashboard.
    let families = |name: &str| -> String {
        ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name)
            .to_string()
    };
    let read_families: BTreeSet<String> = read.iter().map(|m| families(m)).collect();
    for name in exported
        .declared
        .iter()
        .filter(|n| n.starts_with("refwarden_"))
    {
        if !read_families.contains(&families(name)) {
            failures.push(format!(
                "{name} is exported but no dashboard panel reads it (charts/refwarden/dashboards/refwarden.json)"
            ));
        }
    }
    failures
}
