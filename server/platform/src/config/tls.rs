//! `tls.yml`: HTTPS for the dashboard and API.

use std::path::PathBuf;

use serde::Deserialize;

use super::Problems;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    pub tls: Tls,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub enabled: bool,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub min_version: TlsVersion,
    pub cipher_suites: Vec<String>,
    pub client_auth: ClientAuth,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum TlsVersion {
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAuth {
    pub enabled: bool,
    pub ca_file: PathBuf,
    pub verify_mode: VerifyMode,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum VerifyMode {
    /// A client certificate must be presented and chain to `ca_file`.
    RequireAndVerify,
    /// A certificate is verified when presented, but not required.
    VerifyIfGiven,
}

/// TLS 1.2 suites the server can offer (IANA names; the spec's short CHACHA20 name is accepted too).
pub const KNOWN_CIPHER_SUITES: &[&str] = &[
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
];

impl TlsFile {
    pub(super) fn validate(&self, p: &mut Problems) {
        let tls = &self.tls;
        for (i, suite) in tls.cipher_suites.iter().enumerate() {
            if !KNOWN_CIPHER_SUITES.contains(&suite.as_str()) {
                p.push(
                    format!("tls.cipher_suites[{i}]"),
                    format!("unknown or insecure cipher suite \"{suite}\""),
                );
            }
        }
        if !tls.enabled {
            return;
        }
        let mut files = vec![
            ("tls.cert_file", &tls.cert_file),
            ("tls.key_file", &tls.key_file),
        ];
        if tls.client_auth.enabled {
            files.push(("tls.client_auth.ca_file", &tls.client_auth.ca_file));
        }
        for (key, path) in files {
            if !path.is_file() {
                p.push(
                    key,
                    format!(
                        "{} does not exist or is not a file (TLS is enabled)",
                        path.display()
                    ),
                );
            }
        }
    }
}
