//! Compiled-component cache on disk. Compiling with Cranelift is the slow part
//! of a start; the artifact is keyed by the engine's compatibility hash and the
//! component's bytes, so a rebuilt component or an upgraded engine recompiles.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Loads `bytes` as a component, from the cache when a matching artifact is
/// there. Returns the component and whether it came from the cache.
pub fn load(
    engine: &Engine,
    bytes: &[u8],
    cache_dir: Option<&Path>,
) -> anyhow::Result<(Component, bool)> {
    let Some(dir) = cache_dir else {
        return Ok((Component::new(engine, bytes)?, false));
    };
    let path = artifact_path(engine, bytes, dir);
    if path.exists() {
        // SAFETY: the file is one this function wrote with `precompile_component`
        // for an engine with the same compatibility hash (it is in the name),
        // in a directory owned by the shim. wasmtime still checks the header and
        // refuses an artifact for another engine configuration.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok((component, true)),
            Err(e) => tracing::warn!("ignoring unusable cached component {}: {e}", path.display()),
        }
    }
    let artifact = engine.precompile_component(bytes)?;
    std::fs::create_dir_all(dir)?;
    // Write then rename, so a concurrent start never maps a half-written file.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, &artifact)?;
    std::fs::rename(&tmp, &path)?;
    // SAFETY: as above; the file was just written from this engine's output.
    let component = unsafe { Component::deserialize_file(engine, &path)? };
    Ok((component, false))
}

fn artifact_path(engine: &Engine, bytes: &[u8], dir: &Path) -> PathBuf {
    let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    let component_hash = Sha256::digest(bytes);
    dir.join(format!(
        "switchboard-{:016x}-{}.cwasm",
        engine_hash.finish(),
        hex::encode(&component_hash[..12])
    ))
}
