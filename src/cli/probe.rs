//! `refwarden probe`.

use std::process::ExitCode;

use clap::Args;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::output::{self, Output, parse_output};
use super::{EXIT_BAD_INPUT, RegistryArgs, hints};
use crate::crd::{DiscoveryMode, default_test_repository, default_test_tag};
use crate::probe::{self, ProbeOptions, status::StatusContext};

/// Arguments of `refwarden probe`.
#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// Registry base URL, e.g. `https://registry.example.com` or `http://127.0.0.1:5000` (with --plain-http).
    pub registry_url: String,
    /// Repository of the test image.
    #[arg(long, short = 'r', default_value_t = default_test_repository())]
    pub repository: String,
    /// Tag of the test image.
    #[arg(long, short = 't', default_value_t = default_test_tag())]
    pub tag: String,
    /// Repository where write probes act (default `<repository>-refwarden-probe`).
    #[arg(long)]
    pub scratch_repository: Option<String>,
    /// Skip the probes that write (upload session, cross-repo mount); they are reported Unknown.
    #[arg(long)]
    pub no_write_probes: bool,
    /// Discovery mode to report as requested (`Auto` picks from the probe).
    #[arg(long, value_enum, default_value_t = ModeArg::Auto)]
    pub mode: ModeArg,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Output: `table`, `json` / `yaml` (the RegistryProfile status), or `jsonpath=EXPR` (RFC
    /// 9535 or kubectl's `{.a.b}`, over the JSON form), e.g.
    /// `--format 'jsonpath=$.capabilities.referrersApi.state'`.
    #[arg(long, short = 'o', visible_alias = "format", default_value = "table", value_parser = parse_output::<ProbeText>)]
    pub output: Output<ProbeText>,
}

/// `refwarden probe`'s own rendering.
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub enum ProbeText {
    /// The capability matrix.
    Table,
}

/// `--mode` values.
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub enum ModeArg {
    /// Decide from the referrers API verdict.
    Auto,
    /// Referrers API.
    Native,
    /// OCI tag schema and cosign tags.
    TagFallback,
}

impl From<ModeArg> for DiscoveryMode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Auto => DiscoveryMode::Auto,
            ModeArg::Native => DiscoveryMode::Native,
            ModeArg::TagFallback => DiscoveryMode::TagFallback,
        }
    }
}

/// Runs `refwarden probe`.
pub async fn run(args: ProbeArgs) -> ExitCode {
    let structured = args.output.structured().cloned();
    let bad = |m: String| output::fail(structured.as_ref(), EXIT_BAD_INPUT, "BadInput", &m);
    if let Err(e) = crate::registry::ImageReference::parse(&format!(
        "example.com/{}:{}",
        args.repository, args.tag
    )) {
        return bad(format!("--repository/--tag: {e}"));
    }
    let client = match args.registry.client(&args.registry_url).await {
        Ok(c) => c,
        Err(e) => return bad(e),
    };
    let mut opts = ProbeOptions::new(&args.repository, &args.tag, !args.no_write_probes);
    if let Some(s) = &args.scratch_repository {
        opts.scratch_repository = s.clone();
    }
    let report = probe::run(&client, &opts).await;
    let ctx = StatusContext {
        generation: None,
        requested_mode: args.mode.into(),
        insecure_skip_tls_verify: args.registry.insecure_skip_tls_verify,
        previous: None,
        now: Time(k8s_openapi::jiff::Timestamp::now()),
    };
    let status = probe::status::from_report(&report, &ctx);
    if let Err((reason, message)) = &report.reachable {
        // Unreachable: the table still shows what was tried; structured output gets the
        // error object.
        if let Output::Text(ProbeText::Table) = &args.output {
            out!(
                "{}",
                output::probe_table(&args.registry_url, &opts, &report, &status)
            );
        }
        let m = format!("{reason}: {message}");
        let code = output::fail(structured.as_ref(), 1, "RegistryError", &m);
        hints::print_for(&m);
        return code;
    }
    match &args.output {
        Output::Structured(s) => {
            if let Err(code) = s.print(&status) {
                return code;
            }
        }
        Output::Text(ProbeText::Table) => {
            out!(
                "{}",
                output::probe_table(&args.registry_url, &opts, &report, &status)
            );
        }
    }
    ExitCode::SUCCESS
}
