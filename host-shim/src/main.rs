//! `host-shim`: runs the Switchboard plugin inside a stand-in Mattermost
//! server, with its data (SQLite, config, compiled cache) in one directory.

use clap::Parser;
use std::path::PathBuf;
use switchboard_host_shim::{OpenOptions, config::Config, manifest::Manifest};

#[derive(Parser)]
#[command(
    name = "host-shim",
    version,
    about = "A Mattermost stand-in server that runs the Switchboard integrations component"
)]
struct Args {
    /// Data directory: database, compiled-component cache, admin token.
    #[arg(long, default_value = "data")]
    data: PathBuf,
    /// Mattermost-style config.json; created with defaults when missing.
    /// Defaults to `<data>/config.json`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The plugin's manifest.json, naming the component to load.
    #[arg(long, default_value = "manifest.json")]
    manifest: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config_path = args.config.unwrap_or_else(|| args.data.join("config.json"));
    let config = Config::load_or_create(&config_path)?;
    switchboard_host_shim::logs::init(&config.log_settings)?;
    let manifest = Manifest::load(&args.manifest)?;
    let listen = config.service_settings.listen_address.clone();

    let (shim, bootstrap) = switchboard_host_shim::open(OpenOptions {
        data_dir: args.data.clone(),
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
                "Its personal access token is in {} (password beside it).",
                file.display()
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
