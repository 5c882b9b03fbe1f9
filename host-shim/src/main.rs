//! `host-shim`: runs the Switchboard plugin inside a stand-in Mattermost
//! server, with its data (SQLite, config, compiled cache) in one directory.

use clap::Parser;
use std::path::PathBuf;
use switchboard_host_shim::{OpenOptions, config::Config, install, manifest::Manifest};

#[derive(Parser)]
#[command(
    name = "host-shim",
    disable_version_flag = true,
    about = "A Mattermost stand-in server that runs the Switchboard integrations component"
)]
struct Args {
    /// Data directory: database, compiled-component cache, admin token.
    /// Defaults to `./data`, or in an unpacked release to `<install>/data`
    /// (or the config's `FileSettings.Directory`).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Mattermost-style config.json; created with defaults when missing.
    /// Defaults to `<data>/config.json`, or in an unpacked release to
    /// `<install>/config/config.json`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The plugin's manifest.json, naming the component to load. Defaults to
    /// `./manifest.json`, or in an unpacked release to `<install>/manifest.json`.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Prints this shim's version, the WIT API versions it accepts and the
    /// component the manifest names, and exits without starting.
    #[arg(long, short = 'V')]
    version: bool,
    /// Prints the default config.json (without the at-rest key, which the
    /// first start generates) and exits.
    #[arg(long)]
    default_config: bool,
    /// Copies the SQLite installation (`--data`, `--config`) into the empty
    /// PostgreSQL database this data source names (a libpq URL or
    /// `key=value` string), prints the rows copied per table, and exits.
    #[arg(long, value_name = "DATA_SOURCE")]
    copy_database_to: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let install = install::current_install();
    let install = install.as_deref();
    let manifest_path = install::manifest_path(install, args.manifest);
    if args.version {
        print!("{}", install::version_text(&manifest_path));
        return Ok(());
    }
    if args.default_config {
        println!(
            "{}",
            serde_json::to_string_pretty(&Config::default().document())?
        );
        return Ok(());
    }
    let config_path = install::config_path(install, args.data.as_deref(), args.config);
    let config = Config::load_or_create(&config_path)?;
    if let Some(target) = args.copy_database_to {
        return copy_database(install, args.data, &config, &target);
    }
    switchboard_host_shim::logs::init(&config.log_settings)?;
    let data = install::data_dir(install, args.data, &config);
    let manifest = Manifest::load(&manifest_path)?;
    let listen = config.service_settings.listen_address.clone();

    let (shim, bootstrap) = switchboard_host_shim::open(OpenOptions {
        data_dir: data.clone(),
        config,
        config_path: Some(config_path.clone()),
        manifest,
        runtime: None,
        clock: switchboard_host_shim::app::Clock::system(),
    })
    .await?;
    tracing::info!(
        "plugin loaded in {:.0} ms ({})",
        shim.runtime.load_time.as_secs_f64() * 1000.0,
        if shim.runtime.loaded_from_cache {
            "from the compiled cache"
        } else {
            "compiled"
        }
    );
    if let Some(first) = bootstrap {
        println!(
            "First start: created team `{}` with channels town-square and off-topic,",
            first.team_name
        );
        println!("and system admin `{}`.", first.admin_username);
        if let Some(file) = first.token_file {
            println!(
                "Its personal access token is in {}{}.",
                file.display(),
                if first.password_file.is_some() {
                    " (password beside it)"
                } else {
                    ""
                }
            );
        }
    }

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!(
        "Switchboard host shim {} listening on http://{} (config {})",
        env!("CARGO_PKG_VERSION"),
        listener.local_addr()?,
        config_path.display()
    );
    switchboard_host_shim::serve(listener, shim, switchboard_host_shim::stop_signal()).await?;
    // What was acknowledged is committed and the leases are given back; a
    // task still running (a delivery on the wire) is not waited for.
    std::process::exit(0)
}

/// `--copy-database-to`: the installation's SQLite file into PostgreSQL.
fn copy_database(
    install: Option<&std::path::Path>,
    data: Option<PathBuf>,
    config: &Config,
    target: &str,
) -> anyhow::Result<()> {
    if config.sql_settings.is_postgres() {
        anyhow::bail!(
            "this installation's SqlSettings.DriverName is already `postgres`: \
             --copy-database-to copies an SQLite installation"
        );
    }
    let data = install::data_dir(install, data, config);
    let sqlite = data.join("switchboard.db");
    let copied = switchboard_host_shim::store::copy::copy_to_postgres(
        &sqlite,
        &config.sql_settings.at_rest_encrypt_key,
        target,
    )?;
    println!("Copied {} into PostgreSQL:", sqlite.display());
    for table in &copied {
        println!("  {:<28} {:>9} rows", table.table, table.rows);
    }
    println!(
        "Point every node at it (SqlSettings.DriverName \"postgres\", the same DataSource) \
         with this installation's AtRestEncryptKey."
    );
    Ok(())
}
