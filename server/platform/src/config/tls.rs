//! `tls.yml`: HTTPS for the dashboard and API.

use std::{net::SocketAddr, path::PathBuf};

use serde::Deserialize;

use super::{Problems, units::Span};

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
    /// Documented addition: a plain-HTTP listener that only redirects to HTTPS (308).
    #[serde(default)]
    pub http_redirect: Option<SocketAddr>,
    /// Documented addition: `Strict-Transport-Security` max-age on HTTPS responses; one year when
    /// left out, none with `"0s"`.
    #[serde(default)]
    pub hsts_max_age: Option<Span>,
}

impl Tls {
    /// The HSTS max-age in seconds (`None`: no header).
    pub fn hsts_seconds(&self) -> Option<u64> {
        match self.hsts_max_age {
            None => Some(365 * 86_400),
            Some(span) if span.duration().is_zero() => None,
            Some(span) => Some(span.duration().as_secs()),
        }
    }
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
    /// Documented addition: a verified client certificate signs in to the REST API as the
    /// account it names (no bearer token needed). Left out: certificates only gate connections.
    #[serde(default)]
    pub map_to_user: Option<CertificateMapping>,
}

/// How a client certificate names an account.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CertificateMapping {
    /// The subject's common name is the username.
    SubjectCn,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum VerifyMode {
    /// A client certificate must be presented and chain to `ca_file`.
    RequireAndVerify,
    /// A certificate is verified when presented, but not required.
    VerifyIfGiven,
}

/// Suites the server can offer (IANA names; the spec's short CHACHA20 names are accepted too).
/// Listing TLS 1.2 suites only leaves every TLS 1.3 suite on; listing TLS 1.3 ones restricts 1.3.
pub const KNOWN_CIPHER_SUITES: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
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
        if tls.cipher_suites.is_empty() {
            p.push("tls.cipher_suites", "list at least one suite");
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
