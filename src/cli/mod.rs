//! Command-line interface: `refwarden <command>`.
//!
//! Exit codes are part of the interface and documented per command:
//! 2 always means bad input (arguments, files).

mod controller;
/// Writes to stdout. A closed pipe (`refwarden … | head`) ends the output quietly
/// instead of panicking, so the documented exit code still holds.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($t)*);
    }};
}

/// [`out!`] with a newline.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

mod discover;
pub mod evaluate;
mod hints;
mod image_arg;
mod lifecycle;
mod output;
mod probe;
mod progress;
mod registry_args;
mod reports;
mod verify;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

pub use registry_args::RegistryArgs;

/// Exit code for bad input.
pub const EXIT_BAD_INPUT: u8 = 2;

/// refwarden: OCI referrers (signatures, SBOMs, attestations) for what runs in Kubernetes.
#[derive(Parser, Debug)]
#[command(name = "refwarden", version, about, long_about = None)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "REFWARDEN_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `refwarden=debug`.
    #[arg(long, global = true, default_value = "warn", env = "REFWARDEN_LOG")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Probe a registry's capabilities (referrers API, uploads, mount, delete) and print the matrix.
    ///
    /// Exit codes: 0 the probe ran (whatever the score), 1 the registry could not be reached, 2 bad arguments.
    Probe(probe::ProbeArgs),
    /// List the referrers (signatures, SBOMs, attestations) of an image, like `oras discover`.
    ///
    /// Exit codes: 0 the registry answered (even with no referrers), 1 registry error, 2 bad input.
    Discover(discover::DiscoverArgs),
    /// Verify an image's signatures and attestations (cosign keys or keyless identities, sigstore
    /// bundles, Notation trust stores), like `cosign verify` / `notation verify`.
    ///
    /// Exit codes: 0 every requested kind has a verified referrer, 1 none verified (each reason printed), 2 bad input (no trust configured, unreadable key), 3 Unknown (registry error or evidence unreadable).
    Verify(verify::VerifyArgs),
    /// Evaluate ReferrerPolicies against workloads in files, as the controller would (CI gate).
    ///
    /// Exit codes: 0 all compliant, 1 violations found, 3 some images Unknown and no violations, 2 bad input.
    Evaluate(evaluate::EvaluateArgs),
    /// Lifecycle / GC risk analysis: rules that delete, orphan, count or hide referrers.
    ///
    /// Exit codes: 0 no findings, 1 findings, 2 bad input, 3 the rules could not be read (AWS API error).
    #[command(subcommand)]
    Lifecycle(lifecycle::LifecycleCommand),
    /// Run the operator: reconcile RegistryProfiles and ReferrerPolicies (see `refwarden controller --help`).
    ///
    /// Exit codes: 0 after SIGTERM/Ctrl-C, 1 on failure (e.g. CRDs not installed).
    Controller(controller::ControllerArgs),
    /// Print the CustomResourceDefinitions as YAML (or write one file per CRD with --output-dir).
    ///
    /// Exit codes: 0 printed or written, 1 a file could not be written, 2 bad arguments.
    Crds {
        /// Write `<plural>.<group>.yaml` files into this directory instead of printing.
        #[arg(long)]
        output_dir: Option<std::path::PathBuf>,
    },
    /// Print a shell completion script: `source <(refwarden completions bash)`, or save it where
    /// your shell loads completions (`~/.local/share/bash-completion/completions/refwarden`,
    /// a directory in zsh's `$fpath` as `_refwarden`, `~/.config/fish/completions/refwarden.fish`).
    ///
    /// Exit codes: 0 printed, 2 bad arguments.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Whether stderr gets ANSI colours: only on a terminal, and never with `NO_COLOR` set
/// (<https://no-color.org>: any non-empty value).
pub fn colour_on_stderr() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

fn init_tracing(format: LogFormat, filter: &str) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| format!("--log {filter:?}: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour_on_stderr())
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    // A second init (e.g. in tests) is not an error worth failing for.
    let _ = result;
    Ok(())
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = init_tracing(cli.log_format, &cli.log) {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    crate::registry::ensure_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli.command))
}

/// Runs one command and returns its exit code.
pub async fn run(command: Command) -> ExitCode {
    match command {
        Command::Probe(args) => probe::run(args).await,
        Command::Evaluate(args) => evaluate::run(args).await,
        Command::Discover(args) => discover::run(args).await,
        Command::Verify(args) => verify::run(args).await,
        Command::Lifecycle(cmd) => lifecycle::run(cmd).await,
        Command::Controller(args) => controller::run(args).await,
        Command::Crds { output_dir } => crds(output_dir),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "refwarden", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
    }
}

fn crds(output_dir: Option<std::path::PathBuf>) -> ExitCode {
    match output_dir {
        None => match crate::crdgen::render_all() {
            Ok(yaml) => {
                let mut out = std::io::stdout().lock();
                if out.write_all(yaml.as_bytes()).is_err() {
                    return ExitCode::FAILURE;
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot render CRDs: {e}");
                ExitCode::FAILURE
            }
        },
        Some(dir) => {
            let docs = match crate::crdgen::generate() {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("error: cannot render CRDs: {e}");
                    return ExitCode::FAILURE;
                }
            };
            if let Err(e) = std::fs::create_dir_all(&dir) {
                eprintln!("error: --output-dir {}: {e}", dir.display());
                return ExitCode::from(EXIT_BAD_INPUT);
            }
            for d in docs {
                let path = dir.join(&d.file_name);
                if let Err(e) = std::fs::write(&path, d.yaml) {
                    eprintln!("error: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
                outln!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
    }
}
