//! A real, throwaway PostgreSQL for tests: one server per test run, a fresh
//! database per test.
//!
//! `make test` runs the test binaries under `tests/postgres/with-postgres`
//! (`postgres.sh with`), which starts one server for the whole run and names
//! it in `SWITCHBOARD_TEST_POSTGRES` (`postgres://postgres@127.0.0.1:PORT`);
//! every test process then shares it. When that variable is unset (a bare
//! `cargo test`), the first test that asks starts a server for its own
//! process with `postgres.sh serve`, which stops it and removes its
//! directory when the process is gone, however it ended: a test binary never
//! drops its statics, so the server's lifetime hangs on a pipe whose write
//! end only this process holds, and the kernel closes it at exit (SIGKILL
//! included).
//!
//! The binaries are Debian's (`/usr/lib/postgresql/*/bin`, `make postgres`
//! installs them; `SWITCHBOARD_PG_BIN` names others). No docker, nothing
//! downloaded.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

/// The script that starts and stops the server; the same file
/// `tests/postgres/with-postgres` runs, embedded so that the harness works
/// from any crate that depends on the shim.
const SCRIPT: &str = include_str!("postgres.sh");

/// Names the run's server (`postgres://postgres@127.0.0.1:PORT`, no
/// database); set by `postgres.sh with`.
pub const SERVER_ENV: &str = "SWITCHBOARD_TEST_POSTGRES";

/// The test PostgreSQL server of this test run.
pub struct TestPostgres {
    base_url: String,
    /// The write end of the pipe `postgres.sh serve` waits on, when this
    /// process started the server: kept open until the process exits.
    _lifeline: Option<Mutex<ChildStdin>>,
}

impl TestPostgres {
    /// The run's server: the one `SWITCHBOARD_TEST_POSTGRES` names, else one
    /// started for this process on first use (a few seconds: initdb).
    pub fn shared() -> anyhow::Result<&'static TestPostgres> {
        static SHARED: OnceLock<Result<TestPostgres, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| match std::env::var(SERVER_ENV) {
                Ok(url) if !url.trim().is_empty() => Ok(TestPostgres {
                    base_url: url.trim().trim_end_matches('/').to_string(),
                    _lifeline: None,
                }),
                _ => TestPostgres::start_own().map_err(|e| format!("{e:#}")),
            })
            .as_ref()
            .map_err(|e| anyhow::anyhow!("no test PostgreSQL: {e}"))
    }

    /// Starts a server that lives as long as this process (see the module's
    /// documentation). Tests use [`TestPostgres::shared`].
    fn start_own() -> anyhow::Result<TestPostgres> {
        let dir = tempfile::Builder::new()
            .prefix("switchboard-pg.")
            .tempdir()?
            // `postgres.sh serve` removes it, after the server has stopped.
            .keep();
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(SCRIPT)
            .arg("postgres.sh")
            .arg("serve")
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // Its own process group: a Ctrl-C for the tests must not stop
            // it before it has cleaned up (it waits for the pipe instead).
            .process_group(0)
            .spawn()
            .map_err(|e| anyhow::anyhow!("running bash for postgres.sh: {e}"))?;
        let lifeline = child.stdin.take().expect("piped stdin");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line)?;
        let base_url = line.trim().to_string();
        if !base_url.starts_with("postgres://") {
            drop(lifeline);
            let _ = child.wait();
            anyhow::bail!(
                "postgres.sh could not start a server in {} (its output is above)",
                dir.display()
            );
        }
        Ok(TestPostgres {
            base_url,
            _lifeline: Some(Mutex::new(lifeline)),
        })
    }

    /// `postgres://postgres@127.0.0.1:PORT`, without a database.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The data source (`SqlSettings.DataSource`) of database `name` on this server.
    pub fn data_source(&self, name: &str) -> String {
        format!("{}/{name}?sslmode=disable", self.base_url)
    }

    /// A new, empty database, dropped when the last clone of the handle is.
    pub fn create_database(&'static self) -> anyhow::Result<Arc<TestDatabase>> {
        let name = format!("switchboard_{}", crate::store::new_id());
        self.psql(&format!("CREATE DATABASE {name}"))?;
        Ok(Arc::new(TestDatabase {
            data_source: self.data_source(&name),
            name,
            server: self,
        }))
    }

    /// Runs SQL through `psql` on the server's `postgres` database; its
    /// output (unaligned, tuples only).
    pub fn psql(&self, sql: &str) -> anyhow::Result<String> {
        psql(&format!("{}/postgres?sslmode=disable", self.base_url), sql)
    }
}

/// Runs `sql` through `psql` on the database `url` names; the output
/// (unaligned, tuples only). Stops at the first error.
pub fn psql(url: &str, sql: &str) -> anyhow::Result<String> {
    let output = Command::new(bin_dir()?.join("psql"))
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| anyhow::anyhow!("running psql: {e}"))?;
    if !output.status.success() {
        anyhow::bail!(
            "psql failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Every byte of the files of the database `url` names, after a checkpoint
/// has written to them what was only in the server's memory. The server
/// runs on this machine and this process may read its files (it is root or
/// the server's user); `url`'s user is a superuser (`CHECKPOINT`).
pub fn database_bytes(url: &str) -> anyhow::Result<Vec<u8>> {
    psql(url, "CHECKPOINT")?;
    let dir = psql(
        url,
        "SELECT current_setting('data_directory') || '/base/' || oid \
         FROM pg_database WHERE datname = current_database()",
    )?;
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| anyhow::anyhow!("reading {dir}: {e}"))? {
        let path = entry?.path();
        if path.is_file() {
            bytes.extend(std::fs::read(&path)?);
        }
    }
    Ok(bytes)
}

/// Debian's PostgreSQL binaries (the newest version installed), or
/// `SWITCHBOARD_PG_BIN`.
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("SWITCHBOARD_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut found: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(|part| part.parse::<u32>().ok())
                .collect::<Option<Vec<u32>>>()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).ok_or_else(|| {
        anyhow::anyhow!(
            "no PostgreSQL under /usr/lib/postgresql/*/bin; `make postgres` installs it"
        )
    })
}

/// One test's database on the [`TestPostgres`] server.
pub struct TestDatabase {
    /// Its `SqlSettings.DataSource`.
    pub data_source: String,
    pub name: String,
    server: &'static TestPostgres,
}

impl Drop for TestDatabase {
    /// Drops the database, closing what is still connected to it (a shim's
    /// pool outlives the test's handle on it by a moment): a run of hundreds
    /// of tests would otherwise keep hundreds of databases on disk.
    fn drop(&mut self) {
        if let Err(e) = self.server.psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )) {
            eprintln!("dropping the test database {}: {e:#}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn each_database_is_fresh_and_dropped_after_use() {
        let server = TestPostgres::shared().unwrap();
        let first = server.create_database().unwrap();
        let second = server.create_database().unwrap();
        assert_ne!(first.data_source, second.data_source);
        assert!(
            first
                .data_source
                .starts_with("postgres://postgres@127.0.0.1:")
                && first.data_source.ends_with("?sslmode=disable"),
            "{}",
            first.data_source
        );
        psql(
            &first.data_source,
            "CREATE TABLE mark (n int); INSERT INTO mark VALUES (7)",
        )
        .unwrap();
        assert_eq!(psql(&first.data_source, "SELECT n FROM mark").unwrap(), "7");
        let tables = "SELECT count(*) FROM pg_tables WHERE tablename = 'mark'";
        assert_eq!(psql(&second.data_source, tables).unwrap(), "0");

        let exists = format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{}'",
            first.name
        );
        assert_eq!(server.psql(&exists).unwrap(), "1");
        drop(first);
        assert_eq!(server.psql(&exists).unwrap(), "0");
    }

    #[test]
    fn a_database_s_bytes_hold_what_was_just_written_and_no_other_database_s() {
        let server = TestPostgres::shared().unwrap();
        let (one, other) = (
            server.create_database().unwrap(),
            server.create_database().unwrap(),
        );
        let written = format!("needle-{}", crate::store::new_id());
        let has = |bytes: Vec<u8>| {
            bytes
                .windows(written.len())
                .any(|w| w == written.as_bytes())
        };
        assert!(!has(database_bytes(&one.data_source).unwrap()));
        let sql = format!("CREATE TABLE t (v text); INSERT INTO t VALUES ('{written}')");
        psql(&one.data_source, &sql).unwrap();
        assert!(has(database_bytes(&one.data_source).unwrap()));
        assert!(!has(database_bytes(&other.data_source).unwrap()));
    }

    #[test]
    fn the_server_allows_several_nodes_with_pools() {
        let server = TestPostgres::shared().unwrap();
        let max: u32 = server
            .psql("SHOW max_connections")
            .unwrap()
            .parse()
            .unwrap();
        assert!(max >= 300, "max_connections {max}");
        assert_eq!(server.psql("SHOW listen_addresses").unwrap(), "127.0.0.1");
    }

    /// Set in the child process of the test below.
    const CHILD_ENV: &str = "SWITCHBOARD_PG_TEST_CHILD";

    /// Not a test of its own: the process the next test starts and kills.
    /// It starts its own server and says where, then waits to be killed.
    #[test]
    #[ignore = "run by own_server_goes_away_with_its_process"]
    fn own_server_child() {
        if std::env::var_os(CHILD_ENV).is_none() {
            return;
        }
        let server = TestPostgres::start_own().unwrap();
        let dir = server.psql("SHOW data_directory").unwrap();
        println!("SERVER {} {dir}", server.base_url);
        std::thread::sleep(Duration::from_secs(600));
    }

    #[test]
    fn own_server_goes_away_with_its_process() {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "harness::postgres::tests::own_server_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .env_remove(SERVER_ENV)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // libtest writes `test <name> ... ` before what the test prints.
        let mut said = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        while !said.contains("SERVER ") {
            said.clear();
            if out.read_line(&mut said).unwrap() == 0 {
                let _ = child.kill();
                panic!("the child ended without a server");
            }
        }
        let mut words = said[said.find("SERVER ").unwrap()..]
            .split_whitespace()
            .skip(1);
        let (url, data) = (words.next().unwrap(), PathBuf::from(words.next().unwrap()));
        let dir = data.parent().unwrap().to_path_buf();
        let postgres = format!("{url}/postgres?sslmode=disable");
        assert_eq!(psql(&postgres, "SELECT 1").unwrap(), "1");
        assert!(data.is_dir());

        // SIGKILL: nothing of the test process runs after it.
        child.kill().unwrap();
        child.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while dir.exists() || psql(&postgres, "SELECT 1").is_ok() {
            assert!(
                Instant::now() < deadline,
                "the server at {url} in {} outlived its process",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
