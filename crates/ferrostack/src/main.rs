//! `ferrostack`: one binary for the whole cloud.

mod agent;
mod bench;
mod config;
mod datadir;
mod server;

use clap::{Parser, Subcommand};

use config::{CommonOpts, Config};

#[derive(Parser)]
#[command(
    name = "ferrostack",
    version,
    about = "An OpenStack-compatible cloud in one binary"
)]
struct Cli {
    #[command(flatten)]
    common: CommonOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every API, the scheduler and the local agents in one process (SQLite and local
    /// files by default; --compute-hosts 0 for no local agent).
    AllInOne,
    /// Run the APIs and the scheduler, without local agents (multi-node: point --db at
    /// PostgreSQL shared by all controllers; run `ferrostack agent` on each compute host).
    Controller,
    /// Run the agent of this compute host: it dials the controller over HTTP(S) and converges
    /// the hypervisor driver (--compute-driver) to what the controller wants. Credentials come
    /// from the OS_* variables (source an openrc of a user with the admin or service role;
    /// OS_CACERT adds a CA bundle for HTTPS).
    Agent(agent::AgentOpts),
    /// Create the region, default domain, admin project/user, roles and catalog; write openrc.
    Bootstrap,
    /// Database operations.
    Db {
        #[command(subcommand)]
        op: DbOp,
    },
    /// Fernet key repository operations.
    Fernet {
        #[command(subcommand)]
        op: FernetOp,
    },
    /// Benchmarks that print figures (they start their own cloud on a free port).
    Bench {
        #[command(subcommand)]
        what: bench::BenchWhat,
    },
}

#[derive(Subcommand)]
enum DbOp {
    /// Apply pending migrations.
    Migrate,
}

#[derive(Subcommand)]
enum FernetOp {
    /// Create the key repository if it has no keys.
    Setup,
    /// Promote the staged key to primary and stage a new one (run on one node, then copy the
    /// repository to the others).
    Rotate,
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERROSTACK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if format == "json" {
        b.json().init();
    } else {
        b.init();
    }
}

/// mimalloc instead of glibc's malloc: listing 1,000 servers allocates and frees some
/// hundred thousand small values (row copies, JSON trees), and glibc's malloc/free and its
/// consolidation were a fifth of the CPU time of such requests.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let cfg = Config::resolve(&cli.common)?;
    init_logging(&cfg.log_format);
    // Before anything is written: every file the cloud creates is its user's alone.
    let modes = datadir::modes_for(cfg.data_group.as_deref())?;
    datadir::set_umask(modes);
    if !matches!(cli.command, Command::Bench { .. } | Command::Agent(_)) {
        secure_data_dir(&cfg, modes)?;
    }
    match cli.command {
        Command::AllInOne => server::run(cfg, server::Mode::AllInOne).await,
        Command::Controller => server::run(cfg, server::Mode::Controller).await,
        Command::Agent(opts) => agent::run(&cfg, opts).await,
        Command::Bootstrap => {
            let cloud = server::open(&cfg).await?;
            let out = server::bootstrap(&cloud, &cfg).await?;
            println!("bootstrap done; credentials in {}", out.display());
            Ok(())
        }
        Command::Db { op: DbOp::Migrate } => {
            let db = ferrostack_store::Db::connect_without_migrating(&cfg.db).await?;
            db.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Fernet { op } => {
            let repo = ferrostack_identity::token::keys::KeyRepository::new(
                cfg.key_repository(),
                cfg.max_active_keys,
            );
            match op {
                FernetOp::Setup => {
                    repo.setup()?;
                    println!("key repository ready at {}", repo.dir().display());
                }
                FernetOp::Rotate => {
                    repo.setup()?;
                    let n = repo.rotate()?;
                    println!(
                        "rotated: key {n} is now primary in {}",
                        repo.dir().display()
                    );
                }
            }
            Ok(())
        }
        Command::Bench { what } => bench::run(what).await,
    }
}

/// Closes the data directory (and a SQLite database kept elsewhere) to other users, saying
/// what had to change.
fn secure_data_dir(cfg: &Config, modes: datadir::Modes) -> anyhow::Result<()> {
    let n = datadir::secure(&cfg.data_dir, modes)?;
    if n > 0 {
        tracing::warn!(
            dir = %cfg.data_dir.display(),
            paths = n,
            file_mode = format!("{:o}", modes.file()),
            dir_mode = format!("{:o}", modes.dir()),
            "the data directory was readable by other users: modes fixed"
        );
    }
    if let Some(db) = cfg.db.strip_prefix("sqlite://") {
        let file = std::path::Path::new(db.split('?').next().unwrap_or(db));
        if !file.starts_with(&cfg.data_dir) {
            for suffix in ["", "-wal", "-shm"] {
                let p = std::path::PathBuf::from(format!("{}{suffix}", file.display()));
                if p.exists() && datadir::secure_file(&p, modes)? {
                    tracing::warn!(file = %p.display(), "database file was readable by other users: mode fixed");
                }
            }
        }
    }
    Ok(())
}
