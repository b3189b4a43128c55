//! `sessiontrace keys | projects | users`: credentials, written straight into the store that `serve`
//! uses (the same `--data-dir`, or `--store clickhouse --clickhouse-url`). A running server sees a new
//! key, a revocation or the first credential (which turns authentication on) within seconds.
//! Secrets are printed once and never stored: keys as SHA-256, passwords as argon2id.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use sessiontrace_auth::{password, secret};
use sessiontrace_model::auth::{ApiKey, KeyKind, ProjectInfo, Role, User};
use sessiontrace_model::project::Project;
use sessiontrace_server::config::{ServerConfig, StoreKind};
use sessiontrace_store::{Store, StoreError};

/// Which store to open: the same settings as `serve`.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// TOML config file (as for `serve`).
    #[arg(long, env = "SESSIONTRACE_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Data folder of the embedded store [default: ./sessiontrace-data].
    #[arg(long, env = "SESSIONTRACE_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// `sqlite` or `clickhouse`.
    #[arg(long, env = "SESSIONTRACE_STORE", global = true)]
    store: Option<StoreKind>,
    #[arg(long, env = "SESSIONTRACE_CLICKHOUSE_URL", global = true)]
    clickhouse_url: Option<String>,
    #[arg(long, env = "SESSIONTRACE_CLICKHOUSE_DATABASE", global = true)]
    clickhouse_database: Option<String>,
}

impl StoreArgs {
    async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        let mut config = ServerConfig::load(self.config.as_deref())?;
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(store) = self.store {
            config.store = store;
        }
        if let Some(url) = &self.clickhouse_url {
            config.clickhouse_url = Some(url.clone());
        }
        if let Some(database) = &self.clickhouse_database {
            config.clickhouse_database = database.clone();
        }
        sessiontrace_server::open_store(&config).await
    }
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key; prints the secret once, alone on stdout's first line.
    Create(CreateKey),
    /// List keys (never their secrets).
    List {
        /// Only this project's keys.
        #[arg(long)]
        project: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a key by id (refused by every server within seconds).
    Revoke {
        id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Args)]
pub struct CreateKey {
    /// The project the key writes to or reads from (created if missing).
    #[arg(long, default_value = "default")]
    project: String,
    /// ingest (public, write-only), read, or admin.
    #[arg(long)]
    kind: KeyKind,
    /// A name to recognize the key by.
    #[arg(long)]
    name: Option<String>,
    /// A browser origin allowed to send this ingest key (e.g. https://shop.example.com); repeatable.
    #[arg(long = "allowed-origin")]
    allowed_origins: Vec<String>,
    /// Requests per second this key may make.
    #[arg(long)]
    rate: Option<u64>,
    /// Bytes per second this key may send (the burst is at least the request body limit).
    #[arg(long)]
    bytes_per_second: Option<u64>,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Subcommand)]
pub enum ProjectsCommand {
    /// Create a project.
    Create {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List projects.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Add a UI user (or set a user's password and role); the password is asked for, or read from
    /// standard input with --password-stdin.
    Add {
        name: String,
        #[arg(long, default_value = "member")]
        role: Role,
        /// Read the password from standard input's first line.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List users.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn now_ms() -> i64 {
    sessiontrace_pipeline::clock::now_ms()
}

async fn ensure_project(store: &dyn Store, project: &Project) -> anyhow::Result<()> {
    match store.create_project(&ProjectInfo { project: project.clone(), created_at_ms: now_ms() }).await {
        Ok(()) => {
            eprintln!("project {project} created");
            Ok(())
        }
        Err(StoreError::Conflict) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

fn origin(text: &str) -> anyhow::Result<String> {
    let trimmed = text.trim_end_matches('/');
    let Some((scheme, host)) = trimmed.split_once("://") else {
        bail!("--allowed-origin {text:?} must be an origin such as https://shop.example.com");
    };
    if !matches!(scheme, "http" | "https") || host.is_empty() || host.contains('/') {
        bail!("--allowed-origin {text:?} must be scheme://host[:port], with no path");
    }
    Ok(trimmed.to_string())
}

pub async fn keys(command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Create(args) => {
            let project = Project::new(&args.project).map_err(anyhow::Error::msg)?;
            let allowed_origins = args.allowed_origins.iter().map(|o| origin(o)).collect::<anyhow::Result<Vec<_>>>()?;
            if args.kind != KeyKind::Ingest && !allowed_origins.is_empty() {
                bail!("--allowed-origin is for ingest keys (the only kind meant to sit in web pages)");
            }
            let store = args.store.open().await?;
            ensure_project(store.as_ref(), &project).await?;
            let new = secret::generate_key(args.kind);
            let key = ApiKey {
                id: format!("k_{}", secret::random_hex(6)),
                project: project.clone(),
                kind: args.kind,
                name: args.name,
                hash: new.hash,
                prefix: new.prefix,
                allowed_origins,
                bytes_per_second: args.bytes_per_second,
                requests_per_second: args.rate,
                created_at_ms: now_ms(),
                revoked_at_ms: None,
                last_used_ms: None,
            };
            store.put_key(&key).await?;
            store.close().await?;
            println!("{}", new.secret);
            eprintln!(
                "{} key {} for project {project} created; the key above is shown only now: keep it somewhere safe",
                key.kind, key.id
            );
            if key.kind == KeyKind::Ingest && key.allowed_origins.is_empty() {
                eprintln!("note: no --allowed-origin, so browsers cannot use this key (servers and SDKs can)");
            }
        }
        KeysCommand::List { project, store } => {
            let project = project.map(|p| Project::new(&p)).transpose().map_err(anyhow::Error::msg)?;
            let store = store.open().await?;
            let keys = store.keys(project.as_ref()).await?;
            println!(
                "{:<16} {:<12} {:<7} {:<18} {:<9} {:<14} origins",
                "id", "project", "kind", "prefix", "state", "last used"
            );
            for key in keys {
                let state = if key.is_revoked() { "revoked" } else { "active" };
                let used = key.last_used_ms.map_or("never".to_string(), format_ms);
                println!(
                    "{:<16} {:<12} {:<7} {:<18} {:<9} {:<14} {}",
                    key.id,
                    key.project,
                    key.kind,
                    format!("{}…", key.prefix),
                    state,
                    used,
                    key.allowed_origins.join(" ")
                );
            }
        }
        KeysCommand::Revoke { id, store } => {
            let store = store.open().await?;
            if !store.revoke_key(&id, now_ms()).await? {
                bail!("no key with id {id:?} (see `sessiontrace keys list`)");
            }
            store.close().await?;
            eprintln!("key {id} revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn format_ms(ms: i64) -> String {
    let age = (now_ms() - ms).max(0) / 1000;
    match age {
        0..60 => format!("{age}s ago"),
        60..3600 => format!("{}m ago", age / 60),
        3600..86_400 => format!("{}h ago", age / 3600),
        _ => format!("{}d ago", age / 86_400),
    }
}

pub async fn projects(command: ProjectsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ProjectsCommand::Create { name, store } => {
            let project = Project::new(&name).map_err(anyhow::Error::msg)?;
            let store = store.open().await?;
            match store.create_project(&ProjectInfo { project: project.clone(), created_at_ms: now_ms() }).await {
                Ok(()) => eprintln!("project {project} created"),
                Err(StoreError::Conflict) => bail!("project {project} already exists"),
                Err(error) => return Err(error.into()),
            }
            store.close().await?;
        }
        ProjectsCommand::List { store } => {
            let store = store.open().await?;
            for info in store.projects().await? {
                println!("{}", info.project);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn users(command: UsersCommand) -> anyhow::Result<ExitCode> {
    match command {
        UsersCommand::Add { name, role, password_stdin, store } => {
            if name.is_empty() || name.len() > 64 || name.chars().any(char::is_whitespace) {
                bail!("a user name is 1 to 64 characters without spaces");
            }
            let password = read_password(password_stdin)?;
            if password.chars().count() < 8 {
                bail!("the password needs at least 8 characters");
            }
            let password_hash = tokio::task::spawn_blocking(move || password::hash_password(&password))
                .await?
                .map_err(anyhow::Error::msg)?;
            let store = store.open().await?;
            let user = User { name: name.clone(), role, password_hash, created_at_ms: now_ms(), disabled: false };
            store.put_user(&user).await?;
            store.close().await?;
            eprintln!("user {name} ({role}) saved");
        }
        UsersCommand::List { store } => {
            let store = store.open().await?;
            for user in store.users().await? {
                println!("{:<24} {:<7} {}", user.name, user.role, if user.disabled { "disabled" } else { "active" });
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !from_stdin && stdin.is_terminal() {
        eprint!("password (shown as you type; prefer --password-stdin in scripts): ");
    } else if !from_stdin {
        bail!("no terminal to ask for the password: pass --password-stdin and pipe it in");
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).context("cannot read the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
