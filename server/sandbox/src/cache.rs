//! The on-disk cache of precompiled modules.
//!
//! A file is `<key>.cwasm` holding the sha256 of the artifact followed by the artifact, where
//! `key` hashes the original bytes, the instrumentation version and policy and the engine's
//! compatibility hash. Files are written to a temporary name and renamed, in a 0700 directory.

use std::fs::{self, DirBuilder};
use std::hash::{Hash, Hasher};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

use crate::instrument::{self, Policy};

/// Feeds `Hash` output into sha256.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The cache key of `bytes` instrumented with `policy` for `engine`.
pub(crate) fn key(bytes_sha256: &str, policy: Policy, engine: &Engine) -> String {
    let mut h = ShaHasher(Sha256::new());
    bytes_sha256.hash(&mut h);
    instrument::VERSION.hash(&mut h);
    policy.max_stack_depth.hash(&mut h);
    policy.max_iterations.hash(&mut h);
    engine.precompile_compatibility_hash().hash(&mut h);
    hex::encode(h.0.finalize())
}

#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    /// Creates (or tightens) the cache directory to mode 0700.
    pub(crate) fn open(dir: &Path) -> std::io::Result<Self> {
        DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.cwasm"))
    }

    /// The cached module, if a file with an intact checksum is there and wasmtime accepts it.
    pub(crate) fn load(&self, engine: &Engine, key: &str) -> Option<Module> {
        self.load_with(key, |artifact| deserialize(engine, artifact))
    }

    /// The cached component, under the same conditions as [`DiskCache::load`].
    pub(crate) fn load_component(&self, engine: &Engine, key: &str) -> Option<Component> {
        self.load_with(key, |artifact| deserialize_component(engine, artifact))
    }

    fn load_with<T>(
        &self,
        key: &str,
        deserialize: impl FnOnce(&[u8]) -> wasmtime::Result<T>,
    ) -> Option<T> {
        let path = self.path(key);
        let file = fs::read(&path).ok()?;
        let (sum, artifact) = file.split_at_checked(32)?;
        if Sha256::digest(artifact).as_slice() != sum {
            tracing::warn!(path = %path.display(), "corrupt cache entry removed");
            let _ = fs::remove_file(&path);
            return None;
        }
        match deserialize(artifact) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "stale cache entry removed");
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores a module's or component's artifact (its `serialize()`); failures only cost a
    /// recompilation later.
    pub(crate) fn store(&self, key: &str, serialized: wasmtime::Result<Vec<u8>>) {
        let result = serialized.map_err(|e| e.to_string()).and_then(|artifact| {
            let mut file = Sha256::digest(&artifact).to_vec();
            file.extend_from_slice(&artifact);
            let tmp = self.dir.join(format!("{key}.{}.tmp", std::process::id()));
            fs::write(&tmp, &file)
                .and_then(|()| fs::rename(&tmp, self.path(key)))
                .map_err(|e| e.to_string())
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not cache a compiled module");
        }
    }
}

/// Loads a precompiled artifact.
///
/// SAFETY: `Module::deserialize` trusts its input to be code wasmtime produced, since it maps
/// it as executable. The bytes come only from this cache: written by `DiskCache::store` from
/// `Module::serialize` of a module this process compiled, named by a key that includes the
/// sha256 of the source, the instrumentation and the engine's compatibility hash, kept in a
/// directory created with mode 0700 (not writable by other users), and read back only when
/// the sha256 stored in front of the artifact matches (so truncation or corruption is caught).
/// wasmtime itself still checks the engine version and configuration in the artifact header.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Module> {
    unsafe { Module::deserialize(engine, artifact) }
}

/// Loads a precompiled component artifact.
///
/// SAFETY: as for [`deserialize`]: the bytes come only from this cache, written from
/// `Component::serialize` of a component this process compiled, under the same key, directory
/// and checksum protections; wasmtime checks the engine version, configuration and that the
/// artifact is a component.
#[allow(unsafe_code)]
fn deserialize_component(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    unsafe { Component::deserialize(engine, artifact) }
}
