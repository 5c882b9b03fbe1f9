//! A throwaway PostgreSQL server for the cluster's tests, started from the
//! Debian binaries (as the `postgres` user when run as root) on a free
//! loopback port, and stopped when dropped.

use std::path::PathBuf;
use std::process::Command;

/// A PostgreSQL server in a temp dir on a free loopback port; stopped and
/// removed when dropped.
pub(crate) struct TestServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl TestServer {
    pub(crate) fn start() -> TestServer {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed (`make postgres`)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let dir = tempfile::tempdir().unwrap();
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        if root {
            // PostgreSQL refuses to run as root.
            let chown = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(chown.success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = TestServer {
            dir,
            bin,
            port,
            as_postgres: root,
        };
        let data = server.dir.path().join("data");
        server.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c max_connections=100",
            server.dir.path().display()
        );
        let log = server.dir.path().join("log");
        server.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        server
    }

    fn run(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let output = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&path)
                .args(args)
                .output()
        } else {
            Command::new(&path).args(args).output()
        }
        .unwrap();
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    /// A fresh database holding the bus's tables, as migration 17 makes
    /// them; returns its data source.
    pub(crate) async fn database(&self) -> String {
        let name = format!("t{}", crate::store::new_id());
        self.sql("postgres", &format!("CREATE DATABASE {name}"))
            .await;
        self.sql(
            &name,
            "CREATE TABLE cluster_events (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                 kind TEXT NOT NULL, payload TEXT NOT NULL, node TEXT NOT NULL, create_at BIGINT NOT NULL);
             CREATE TABLE configurations (id TEXT PRIMARY KEY, value TEXT NOT NULL,
                 create_at BIGINT NOT NULL, active BIGINT)",
        )
        .await;
        self.url(&name)
    }

    pub(crate) async fn client(&self, database: &str) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(&self.url(database), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(connection);
        client
    }

    pub(crate) async fn sql(&self, database: &str, sql: &str) {
        self.client(database)
            .await
            .batch_execute(sql)
            .await
            .unwrap();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
    }
}
