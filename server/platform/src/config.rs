//! Configuration: the spec's eleven YAML files, read in exactly the spec's shape.
//!
//! Each file is optional. A missing file, or a missing key, takes the spec's own value (the files in
//! `config/production/` are compiled in as the defaults). `${VAR}` in a value is read from the
//! environment. Unknown keys, wrong types, impossible values and the spec's placeholder secrets are
//! refused with the file, the key and the reason; [`load`] reports every problem it finds.

pub mod audit;
pub mod database;
pub mod ids;
pub mod privacy;
pub mod rate_limit;
pub mod rbac;
pub mod sandbox;
pub mod security;
pub mod soc2;
pub mod static_analysis;
pub mod tls;
pub mod units;
mod yaml;

use std::{
    fmt,
    path::{Path, PathBuf},
};

use serde::de::DeserializeOwned;

pub use self::yaml::PLACEHOLDERS;

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, as `config/<name>.yml` under the config dir.
    pub file: String,
    /// Dotted path to the key (`tls.min_version`); empty for the whole file.
    pub key: String,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file, self.reason)
        } else {
            write!(f, "{}: {}: {}", self.file, self.key, self.reason)
        }
    }
}

/// Every problem found while loading the config dir.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [one] => write!(f, "invalid configuration: {one}"),
            many => {
                write!(f, "invalid configuration ({} problems):", many.len())?;
                for p in many {
                    write!(f, "\n  {p}")?;
                }
                Ok(())
            }
        }
    }
}

/// Collects problems for one file.
pub(crate) struct Problems<'a> {
    file: &'a str,
    out: &'a mut Vec<Problem>,
}

impl Problems<'_> {
    pub(crate) fn push(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.out.push(Problem {
            file: self.file.to_string(),
            key: key.into(),
            reason: reason.into(),
        });
    }
}

/// The whole configuration.
#[derive(Debug)]
pub struct Config {
    pub dir: PathBuf,
    pub security: security::SecurityFile,
    pub rbac: rbac::RbacFile,
    pub tls: tls::TlsFile,
    pub rate_limit: rate_limit::RateLimitFile,
    pub sandbox: sandbox::SandboxFile,
    pub static_analysis: static_analysis::StaticAnalysisFile,
    /// `None` when there is no `database.yml`: the embedded SQLite database is used.
    pub database: Option<database::DatabaseFile>,
    /// Pool and timeout settings (the spec's values when `database.yml` is absent).
    pub database_defaults: database::DatabaseFile,
    pub audit: audit::AuditFile,
    pub ids: ids::IdsFile,
    pub privacy: privacy::PrivacyFile,
    pub soc2: soc2::Soc2File,
}

macro_rules! defaults {
    ($($name:literal),* $(,)?) => {
        /// The spec's files, compiled in as the built-in defaults.
        const DEFAULTS: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("../../../config/production/", $name)))),*
        ];
    };
}
defaults!(
    "security.yml",
    "rbac.yml",
    "tls.yml",
    "rate_limit.yml",
    "sandbox.yml",
    "static_analysis.yml",
    "database.yml",
    "audit.yml",
    "ids.yml",
    "privacy.yml",
    "soc2.yml",
);

/// Reads the config dir with the process environment for `${VAR}`.
pub fn load(dir: &Path) -> Result<Config, ConfigError> {
    load_with_env(dir, &|name| std::env::var(name).ok())
}

/// Reads the config dir, looking `${VAR}` up with `env`.
pub fn load_with_env(
    dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut problems = Vec::new();
    let mut loader = Loader {
        dir,
        env,
        problems: &mut problems,
    };
    let security: Option<security::SecurityFile> = loader.file("security.yml");
    let rbac: Option<rbac::RbacFile> = loader.file("rbac.yml");
    let mut tls: Option<tls::TlsFile> = loader.file("tls.yml");
    if !loader.exists("tls.yml") {
        // The spec's default turns TLS on, but without tls.yml there is no certificate to serve.
        if let Some(t) = tls.as_mut() {
            t.tls.enabled = false;
        }
    }
    let rate_limit: Option<rate_limit::RateLimitFile> = loader.file("rate_limit.yml");
    let sandbox: Option<sandbox::SandboxFile> = loader.file("sandbox.yml");
    let static_analysis: Option<static_analysis::StaticAnalysisFile> =
        loader.file("static_analysis.yml");
    let database_present = loader.has_content("database.yml");
    let database: Option<database::DatabaseFile> = if database_present {
        loader.file("database.yml")
    } else {
        None
    };
    let database_defaults: Option<database::DatabaseFile> = loader.defaults_only("database.yml");
    let audit: Option<audit::AuditFile> = loader.file("audit.yml");
    let ids: Option<ids::IdsFile> = loader.file("ids.yml");
    let privacy: Option<privacy::PrivacyFile> = loader.file("privacy.yml");
    let soc2: Option<soc2::Soc2File> = loader.file("soc2.yml");

    macro_rules! validate {
        ($($name:literal => $file:expr),* $(,)?) => {
            $(if let Some(x) = &$file {
                x.validate(&mut Problems { file: &display_name($name), out: &mut problems });
            })*
        };
    }
    validate!(
        "security.yml" => security, "rbac.yml" => rbac, "tls.yml" => tls, "rate_limit.yml" => rate_limit,
        "sandbox.yml" => sandbox, "static_analysis.yml" => static_analysis, "database.yml" => database,
        "audit.yml" => audit, "ids.yml" => ids, "privacy.yml" => privacy,
    );
    if let Some(soc2) = &soc2 {
        soc2.validate(&mut Problems {
            file: &display_name("soc2.yml"),
            out: &mut problems,
        });
    }

    match (
        security,
        rbac,
        tls,
        rate_limit,
        sandbox,
        static_analysis,
        database_defaults,
        audit,
        ids,
        privacy,
        soc2,
    ) {
        (
            Some(security),
            Some(rbac),
            Some(tls),
            Some(rate_limit),
            Some(sandbox),
            Some(static_analysis),
            Some(database_defaults),
            Some(audit),
            Some(ids),
            Some(privacy),
            Some(soc2),
        ) if problems.is_empty() && (database.is_some() || !database_present) => Ok(Config {
            dir: dir.to_path_buf(),
            security,
            rbac,
            tls,
            rate_limit,
            sandbox,
            static_analysis,
            database,
            database_defaults,
            audit,
            ids,
            privacy,
            soc2,
        }),
        _ => Err(ConfigError { problems }),
    }
}

/// privacy.yml and soc2.yml as the platform applies them: the files over the built-in
/// defaults, and each file's `overlay` (nested mapping, see [`overlay`]) over that. Read again
/// whenever the files or the dashboard's changes move (see `crate::settings`).
pub fn load_editable(
    dir: &Path,
    privacy_overlay: Option<serde_yaml_ng::Value>,
    soc2_overlay: Option<serde_yaml_ng::Value>,
) -> Result<(privacy::PrivacyFile, soc2::Soc2File), ConfigError> {
    let ((privacy, soc2), mut problems) = with_loader(dir, |loader| {
        let privacy: Option<privacy::PrivacyFile> =
            loader.file_over("privacy.yml", privacy_overlay);
        let soc2: Option<soc2::Soc2File> = loader.file_over("soc2.yml", soc2_overlay);
        (privacy, soc2)
    });
    if let Some(p) = &privacy {
        p.validate(&mut Problems {
            file: &display_name("privacy.yml"),
            out: &mut problems,
        });
    }
    if let Some(s) = &soc2 {
        s.validate(&mut Problems {
            file: &display_name("soc2.yml"),
            out: &mut problems,
        });
    }
    match (privacy, soc2) {
        (Some(privacy), Some(soc2)) if problems.is_empty() => Ok((privacy, soc2)),
        _ => Err(ConfigError { problems }),
    }
}

/// One file over the defaults, as a YAML value (what the settings page compares against).
pub fn layer_value(dir: &Path, name: &str) -> Result<serde_yaml_ng::Value, ConfigError> {
    match with_loader(dir, |loader| loader.value(name)) {
        (Some(v), problems) if problems.is_empty() => Ok(v),
        (_, problems) => Err(ConfigError { problems }),
    }
}

/// Runs `read` with a loader of `dir` that reads `${VAR}` from the process environment; what it
/// returned and the problems it found.
fn with_loader<R>(dir: &Path, read: impl FnOnce(&mut Loader<'_>) -> R) -> (R, Vec<Problem>) {
    let env = |name: &str| std::env::var(name).ok();
    let mut problems = Vec::new();
    let out = read(&mut Loader {
        dir,
        env: &env,
        problems: &mut problems,
    });
    (out, problems)
}

/// Dotted keys (`privacy.data_retention.audit_logs`) and their values as one nested mapping.
pub fn overlay<'a>(
    values: impl IntoIterator<Item = (&'a str, serde_yaml_ng::Value)>,
) -> serde_yaml_ng::Value {
    let mut root = serde_yaml_ng::Value::Mapping(Default::default());
    for (key, value) in values {
        let mut nested = value;
        for segment in key.rsplit('.') {
            let mut map = serde_yaml_ng::Mapping::new();
            map.insert(serde_yaml_ng::Value::String(segment.to_string()), nested);
            nested = serde_yaml_ng::Value::Mapping(map);
        }
        root = yaml::merge(root, nested);
    }
    root
}

fn display_name(name: &str) -> String {
    format!("config/{name}")
}

struct Loader<'a> {
    dir: &'a Path,
    env: &'a dyn Fn(&str) -> Option<String>,
    problems: &'a mut Vec<Problem>,
}

impl Loader<'_> {
    fn exists(&self, name: &str) -> bool {
        self.dir.join(name).is_file()
    }

    /// Whether the file exists and holds more than comments.
    fn has_content(&self, name: &str) -> bool {
        std::fs::read_to_string(self.dir.join(name))
            .map(|text| !matches!(yaml::parse(&text), Ok(serde_yaml_ng::Value::Mapping(m)) if m.is_empty()))
            .unwrap_or(false)
    }

    fn default_text(name: &str) -> &'static str {
        DEFAULTS
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, text)| text)
    }

    /// The spec's values alone, without reading the config dir.
    fn defaults_only<T: DeserializeOwned>(&mut self, name: &str) -> Option<T> {
        let value = yaml::parse(Self::default_text(name)).ok()?;
        self.typed(name, value)
    }

    fn file<T: DeserializeOwned>(&mut self, name: &str) -> Option<T> {
        self.file_over(name, None)
    }

    /// The file over the defaults, and `overlay` (the dashboard's changes) over both.
    fn file_over<T: DeserializeOwned>(
        &mut self,
        name: &str,
        overlay: Option<serde_yaml_ng::Value>,
    ) -> Option<T> {
        let merged = self.value(name)?;
        let merged = match overlay {
            Some(overlay) => yaml::merge(merged, overlay),
            None => merged,
        };
        self.typed(name, merged)
    }

    /// The file over the defaults with `${VAR}` replaced, not yet typed.
    fn value(&mut self, name: &str) -> Option<serde_yaml_ng::Value> {
        let file = display_name(name);
        let path = self.dir.join(name);
        let defaults = match yaml::parse(Self::default_text(name)) {
            Ok(v) => v,
            Err(reason) => {
                self.problems.push(Problem {
                    file,
                    key: String::new(),
                    reason: format!("built-in defaults: {reason}"),
                });
                return None;
            }
        };
        let user = match std::fs::read_to_string(&path) {
            Ok(text) => match yaml::parse(&text) {
                Ok(v) => Some(v),
                Err(reason) => {
                    self.problems.push(Problem {
                        file,
                        key: String::new(),
                        reason,
                    });
                    return None;
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                self.problems.push(Problem {
                    file,
                    key: String::new(),
                    reason: format!("cannot read {}: {e}", path.display()),
                });
                return None;
            }
        };
        let merged = match user {
            None => yaml::without_placeholders(defaults),
            Some(user) => {
                let before = self.problems.len();
                let mut report = |key, reason| {
                    self.problems.push(Problem {
                        file: file.clone(),
                        key,
                        reason,
                    })
                };
                yaml::find_placeholders(&user, &mut Vec::new(), &mut report);
                let mut merged = yaml::merge(yaml::without_placeholders(defaults), user);
                yaml::interpolate(&mut merged, &mut Vec::new(), self.env, &mut report);
                if self.problems.len() > before {
                    return None;
                }
                merged
            }
        };
        Some(merged)
    }

    fn typed<T: DeserializeOwned>(&mut self, name: &str, value: serde_yaml_ng::Value) -> Option<T> {
        match serde_path_to_error::deserialize(value) {
            Ok(v) => Some(v),
            Err(e) => {
                let key = e.path().to_string();
                let key = if key == "." { String::new() } else { key };
                self.problems.push(Problem {
                    file: display_name(name),
                    key,
                    reason: e.into_inner().to_string(),
                });
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
