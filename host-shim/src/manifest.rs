//! `manifest.json`: which component to load and which contract it targets.
//! The shim refuses a component built for a WIT API version it does not link.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The plugin id the shim routes `/plugins/<id>/...` to and keys settings by.
pub const PLUGIN_ID: &str = "switchboard";

/// Versions of the `switchboard:plugin` WIT package this host implements.
/// 0.3.1 (kv with expiry, a redelivery signed anew) and 0.3.2 (`transforms`)
/// only add imports, so an older 0.3.x component links as before (wasmtime
/// matches 0.3.x imports to the newest definitions).
pub const SUPPORTED_API_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.3.2"];

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub id: String,
    pub name: String,
    pub version: String,
    pub api_version: String,
    /// Path of the component, relative to the manifest's folder.
    pub component: PathBuf,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub settings_schema: serde_json::Value,
    /// Where the manifest was read from; relative paths resolve against it.
    #[serde(skip)]
    pub dir: PathBuf,
}

impl Manifest {
    pub fn load(path: &Path) -> anyhow::Result<Manifest> {
        let manifest = Manifest::read(path)?;
        manifest.check()?;
        Ok(manifest)
    }

    /// Reads a manifest without checking it (`host-shim --version` reports
    /// what a manifest names even when this host cannot run it). A relative
    /// `component` resolves against the manifest's own folder, whatever the
    /// working directory.
    pub fn read(path: &Path) -> anyhow::Result<Manifest> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading manifest {}: {e}", path.display()))?;
        let mut manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("parsing manifest {}: {e}", path.display()))?;
        let path = std::path::absolute(path)
            .map_err(|e| anyhow::anyhow!("resolving {}: {e}", path.display()))?;
        manifest.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(manifest)
    }

    /// Refuses what this host cannot run, saying what it can.
    pub fn check(&self) -> anyhow::Result<()> {
        if !SUPPORTED_API_VERSIONS.contains(&self.api_version.as_str()) {
            anyhow::bail!(
                "plugin {} targets switchboard:plugin@{}, but this host supports only {}",
                self.id,
                self.api_version,
                SUPPORTED_API_VERSIONS
                    .iter()
                    .map(|v| format!("switchboard:plugin@{v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if self.id != PLUGIN_ID {
            anyhow::bail!(
                "this host serves the plugin `{PLUGIN_ID}`, not `{}`",
                self.id
            );
        }
        Ok(())
    }

    pub fn component_path(&self) -> PathBuf {
        self.dir.join(&self.component)
    }

    pub fn allows(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn manifest(api: &str) -> Manifest {
        Manifest {
            id: PLUGIN_ID.into(),
            name: "x".into(),
            version: "0.1.0".into(),
            api_version: api.into(),
            component: "x.wasm".into(),
            permissions: vec![],
            settings_schema: serde_json::Value::Null,
            dir: PathBuf::new(),
        }
    }

    #[test]
    fn refuses_unsupported_api_versions_naming_the_supported_ones() {
        assert!(manifest("0.3.0").check().is_ok());
        assert!(manifest("0.3.1").check().is_ok());
        assert!(manifest("0.3.2").check().is_ok());
        // 0.2.0 plugins have no `interactive` export.
        assert!(manifest("0.2.0").check().is_err());
        // 0.1.0 plugins waited on the network inside the instance (`egress.send`).
        let err = manifest("0.1.0").check().unwrap_err().to_string();
        assert!(err.contains("switchboard:plugin@0.1.0"), "{err}");
        assert!(
            err.contains("supports only switchboard:plugin@0.3.0, switchboard:plugin@0.3.1, switchboard:plugin@0.3.2"),
            "{err}"
        );
    }

    /// Writes the repository's manifest into `dir` as a release unpacks it:
    /// naming its component `plugin/switchboard_plugin.wasm`, relative to `dir`.
    pub(crate) fn write_release_manifest(dir: &Path) {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifest.json"))
                .unwrap()
                .replace(
                    "target/wasm32-wasip2/release/switchboard_plugin.wasm",
                    "plugin/switchboard_plugin.wasm",
                );
        std::fs::write(dir.join("manifest.json"), text).unwrap();
    }

    #[test]
    fn the_repository_manifest_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifest.json");
        let m = Manifest::load(&path).unwrap();
        assert!(m.allows("egress"));
        assert!(m.component_path().ends_with("switchboard_plugin.wasm"));
    }

    /// An unpacked release names its component relative to the manifest; it
    /// is found there, not under the working directory.
    #[test]
    fn a_relative_component_resolves_against_the_manifests_folder() {
        let dir = tempfile::tempdir().unwrap();
        write_release_manifest(dir.path());
        let m = Manifest::load(&dir.path().join("manifest.json")).unwrap();
        assert_eq!(
            m.component_path(),
            dir.path().join("plugin/switchboard_plugin.wasm")
        );
        assert!(m.component_path().is_absolute());
    }
}
