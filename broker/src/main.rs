//! The `shale` binary: parse the command line, set up logging and traces, hand over to the
//! library.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use shale_broker::telemetry::{Telemetry, TraceSettings};
use shale_broker::BrokerConfig;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "shale",
    version,
    about = "A Kafka-compatible, object-storage-first broker"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: ConfigArgs,
}

#[derive(Args, Clone, Default)]
struct ConfigArgs {
    /// Kafka server.properties file.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// key=value pairs applied over the file (repeatable).
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker (the default).
    Run(ConfigArgs),
    /// Format the log directories, like kafka-storage.sh format.
    Format {
        #[arg(long, short = 't')]
        cluster_id: String,
        /// Leave directories that are already formatted as they are (kafka-storage.sh's
        /// --ignore-formatted), so a container can format on every start.
        #[arg(long, short = 'g')]
        ignore_formatted: bool,
        /// This controller alone is the initial voter set of a dynamic quorum (KIP-853).
        #[arg(long, short = 's')]
        standalone: bool,
        /// The initial voters of a dynamic quorum: id@host:port:directory-id,...
        #[arg(long, short = 'I', value_name = "VOTERS")]
        initial_controllers: Option<String>,
        /// A SCRAM user for the bootstrap metadata: 'SCRAM-SHA-256=[name=alice,password=…]'
        /// (repeatable), as kafka-storage.sh format --add-scram.
        #[arg(long = "add-scram", short = 'S', value_name = "CREDENTIAL")]
        add_scram: Vec<String>,
        /// This controller joins a dynamic quorum later (refused: not supported yet).
        #[arg(long, short = 'N')]
        no_initial_controllers: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Print a new random cluster id, like kafka-storage.sh random-uuid.
    RandomUuid,
    /// Print the contents of log, index, time-index, snapshot or checkpoint files.
    DumpLog {
        files: Vec<PathBuf>,
        /// Also print every record of .log files.
        #[arg(long)]
        print_data_log: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run(cli.run)) {
        Command::Run(args) => run(args),
        Command::Format {
            cluster_id,
            ignore_formatted,
            standalone,
            initial_controllers,
            no_initial_controllers,
            add_scram,
            config,
        } => {
            let cfg = load(&config)?;
            let flags = shale_broker::format::QuorumFlags {
                add_scram,
                standalone,
                initial_controllers,
                no_initial_controllers,
            };
            match shale_broker::format::run(&cfg, &cluster_id, ignore_formatted, &flags)? {
                0 => println!("All of the log directories are already formatted."),
                n => println!(
                    "Formatted {n} director{} with cluster id {cluster_id}",
                    if n == 1 { "y" } else { "ies" }
                ),
            }
            Ok(())
        }
        Command::RandomUuid => {
            println!(
                "{}",
                shale_raft::format::random_uuid(shale_common::SeededRng::from_entropy().as_ref())
            );
            Ok(())
        }
        Command::DumpLog {
            files,
            print_data_log,
        } => {
            let mut out = std::io::stdout().lock();
            for f in files {
                shale_local_log::dump::dump_file(&f, print_data_log, &mut out)
                    .with_context(|| format!("dumping {}", f.display()))?;
            }
            Ok(())
        }
    }
}

/// Loads the configuration; a configuration error ends the process with its message (exit code
/// 1) and no backtrace: it is the operator's to fix, not a fault in the program.
fn load(args: &ConfigArgs) -> anyhow::Result<BrokerConfig> {
    match BrokerConfig::load(args.config.as_deref(), &args.overrides) {
        Ok(config) => Ok(config),
        Err(e) => {
            eprintln!("Error: {e}");
            std::process::exit(1);
        }
    }
}

fn run(args: ConfigArgs) -> anyhow::Result<()> {
    let config = load(&args)?;
    let traces = match TraceSettings::from_env(&|name| std::env::var(name).ok()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::exit(1);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The trace exporter's I/O runs on this runtime: set it up inside, flush before it stops.
    let telemetry = {
        let _inside = runtime.enter();
        Telemetry::init(&config.log_level, traces.as_ref())?
    };
    runtime.block_on(async move {
        let result = shale_broker::run(config, shutdown_signal()).await;
        let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
        result
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
