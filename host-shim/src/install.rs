//! Where an unpacked release keeps its files. `<install>/bin/host-shim` with
//! `<install>/manifest.json` beside `bin/` is an install: with no flags it
//! reads `<install>/manifest.json` and `<install>/config/config.json` and keeps
//! its data in `<install>/data` (or `FileSettings.Directory`), whatever the
//! working directory. Anywhere else (a source checkout's `target/`), the
//! defaults stay relative to the working directory.

use crate::config::Config;
use crate::manifest::{Manifest, SUPPORTED_API_VERSIONS};
use std::path::{Path, PathBuf};

/// The install folder of the binary at `exe`, when it is one.
pub fn install_dir(exe: &Path) -> Option<PathBuf> {
    let bin = exe.parent()?;
    if bin.file_name()? != "bin" {
        return None;
    }
    let root = bin.parent()?;
    root.join("manifest.json")
        .is_file()
        .then(|| root.to_path_buf())
}

/// The install folder of the running binary, when it is one.
pub fn current_install() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?.canonicalize().ok()?;
    install_dir(&exe)
}

/// The manifest: `--manifest`, else the install's, else `./manifest.json`.
pub fn manifest_path(install: Option<&Path>, flag: Option<PathBuf>) -> PathBuf {
    flag.unwrap_or_else(|| match install {
        Some(root) => root.join("manifest.json"),
        None => PathBuf::from("manifest.json"),
    })
}

/// The config file: `--config`, else the install's `config/config.json`,
/// else `config.json` in the data directory (`--data`, else `./data`).
pub fn config_path(install: Option<&Path>, data: Option<&Path>, flag: Option<PathBuf>) -> PathBuf {
    flag.unwrap_or_else(|| match (install, data) {
        (_, Some(data)) if install.is_none() => data.join("config.json"),
        (Some(root), _) => root.join("config").join("config.json"),
        (None, _) => PathBuf::from("data").join("config.json"),
    })
}

/// The data directory: `--data`, else for an install `FileSettings.Directory`
/// (Mattermost's key; relative to the install folder) or `<install>/data`,
/// else `./data`.
pub fn data_dir(install: Option<&Path>, flag: Option<PathBuf>, config: &Config) -> PathBuf {
    if let Some(flag) = flag {
        return flag;
    }
    let Some(root) = install else {
        return PathBuf::from("data");
    };
    let named = config.document()["FileSettings"]["Directory"]
        .as_str()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);
    match named {
        Some(dir) => root.join(dir),
        None => root.join("data"),
    }
}

/// What `host-shim --version` prints: this shim's version, the WIT API
/// versions it accepts and the component the manifest at `manifest` names.
pub fn version_text(manifest: &Path) -> String {
    let mut text = format!(
        "host-shim {}\nWIT API versions accepted: {}\nDatabase schema: {}\n",
        env!("CARGO_PKG_VERSION"),
        SUPPORTED_API_VERSIONS
            .iter()
            .map(|v| format!("switchboard:plugin@{v}"))
            .collect::<Vec<_>>()
            .join(", "),
        crate::store::migrations::latest_version(),
    );
    match Manifest::read(manifest) {
        Ok(m) => {
            let path = m.component_path();
            let found = if path.is_file() {
                ""
            } else {
                " (the file is missing)"
            };
            let runs = match m.check() {
                Ok(()) => String::new(),
                Err(err) => format!("\n  cannot run it: {err}"),
            };
            text.push_str(&format!(
                "Plugin: {} {} targeting switchboard:plugin@{}\n  component {}{found}{runs}\n",
                m.id,
                m.version,
                m.api_version,
                path.display()
            ));
        }
        Err(err) => text.push_str(&format!("Plugin: not found ({err})\n")),
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("bin/host-shim"), "").unwrap();
        crate::manifest::tests::write_release_manifest(dir.path());
        dir
    }

    #[test]
    fn an_unpacked_release_is_found_from_its_binary_and_a_build_tree_is_not() {
        let root = release();
        let exe = root.path().join("bin/host-shim");
        assert_eq!(install_dir(&exe), Some(root.path().to_path_buf()));
        // A `bin/` without a manifest beside it, and cargo's target folder.
        let bare = tempfile::tempdir().unwrap();
        std::fs::create_dir(bare.path().join("bin")).unwrap();
        assert_eq!(install_dir(&bare.path().join("bin/host-shim")), None);
        assert_eq!(install_dir(Path::new("/src/target/perf/host-shim")), None);
    }

    #[test]
    fn an_install_uses_its_own_folders_and_flags_still_win() {
        let root = release();
        let install = Some(root.path());
        let config = Config::default();
        assert_eq!(
            manifest_path(install, None),
            root.path().join("manifest.json")
        );
        assert_eq!(
            config_path(install, None, None),
            root.path().join("config/config.json")
        );
        assert_eq!(data_dir(install, None, &config), root.path().join("data"));
        // Explicit flags win.
        assert_eq!(
            manifest_path(install, Some("m.json".into())),
            PathBuf::from("m.json")
        );
        assert_eq!(
            config_path(install, None, Some("c.json".into())),
            PathBuf::from("c.json")
        );
        assert_eq!(
            data_dir(install, Some("d".into()), &config),
            PathBuf::from("d")
        );
        // FileSettings.Directory names the data, relative to the install.
        let named =
            Config::from_document(serde_json::json!({"FileSettings": {"Directory": "./state/"}}))
                .unwrap();
        assert_eq!(
            data_dir(install, None, &named),
            root.path().join("./state/")
        );
        let absolute = Config::from_document(
            serde_json::json!({"FileSettings": {"Directory": "/var/lib/sb"}}),
        )
        .unwrap();
        assert_eq!(
            data_dir(install, None, &absolute),
            PathBuf::from("/var/lib/sb")
        );
    }

    #[test]
    fn a_source_checkout_keeps_the_working_directorys_defaults() {
        let config = Config::default();
        assert_eq!(manifest_path(None, None), PathBuf::from("manifest.json"));
        assert_eq!(
            config_path(None, None, None),
            PathBuf::from("data/config.json")
        );
        assert_eq!(
            config_path(None, Some(Path::new("d")), None),
            PathBuf::from("d/config.json")
        );
        assert_eq!(data_dir(None, None, &config), PathBuf::from("data"));
    }

    #[test]
    fn the_version_names_the_shim_the_api_versions_and_the_component() {
        let root = release();
        let text = version_text(&root.path().join("manifest.json"));
        assert!(
            text.starts_with(&format!("host-shim {}\n", env!("CARGO_PKG_VERSION"))),
            "{text}"
        );
        for v in SUPPORTED_API_VERSIONS {
            assert!(text.contains(&format!("switchboard:plugin@{v}")), "{text}");
        }
        let named = Manifest::read(&root.path().join("manifest.json")).unwrap();
        let expected = format!(
            "Plugin: switchboard {} targeting switchboard:plugin@{}\n  component {}",
            named.version,
            named.api_version,
            root.path().join("plugin/switchboard_plugin.wasm").display()
        );
        assert!(text.contains(&expected), "{text}");
        assert!(text.contains("(the file is missing)"), "{text}");
        let text = version_text(&root.path().join("nowhere.json"));
        assert!(
            text.contains("Plugin: not found (reading manifest"),
            "{text}"
        );
    }
}
