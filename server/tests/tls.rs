//! HTTPS from tls.yml against the real binary, with certificates made by the `openssl` command
//! (Debian's, installed by .ci/setup): TLS 1.1 refused, the listed suites only, 1.3-only, ALPN h2,
//! HSTS and the security headers, client certificates (required: none or another CA's refused, a
//! good one accepted), SIGHUP reloads (new connections see the new certificate, a broken file
//! keeps the old one), the plain listener that only redirects, and start-up errors for bad files.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use support::{Server, config_copy, run_cli_in};

fn openssl(args: &[&str]) -> Output {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl command (Debian package openssl) runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A CA: `<dir>/<name>.crt` and `.key`.
fn ca(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (crt, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "365",
        "-subj",
        &format!("/CN={name}"),
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        crt.to_str().unwrap(),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    (crt, key)
}

/// A leaf signed by `ca`, valid for `days`: a server certificate for localhost and 127.0.0.1,
/// or a client one.
fn leaf(
    dir: &Path,
    ca: &(PathBuf, PathBuf),
    name: &str,
    client: bool,
    days: u32,
) -> (PathBuf, PathBuf) {
    let (crt, key, csr, ext) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.csr")),
        dir.join(format!("{name}.ext")),
    );
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        &format!("/CN={name}"),
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        csr.to_str().unwrap(),
    ]);
    let usage = if client {
        "extendedKeyUsage=clientAuth\n".to_string()
    } else {
        "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\ncrlDistributionPoints=URI:http://127.0.0.1/test.crl\n".to_string()
    };
    std::fs::write(
        &ext,
        format!("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n{usage}authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"),
    )
    .unwrap();
    let mut args = vec![
        "x509".to_string(),
        "-req".into(),
        "-in".into(),
        csr.display().to_string(),
        "-CA".into(),
        ca.0.display().to_string(),
        "-CAkey".into(),
        ca.1.display().to_string(),
        "-CAcreateserial".into(),
        "-out".into(),
        crt.display().to_string(),
        "-extfile".into(),
        ext.display().to_string(),
    ];
    args.extend(["-days".into(), days.to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    openssl(&args);
    (crt, key)
}

struct Setup {
    _root: tempfile::TempDir,
    dir: PathBuf,
    ca: (PathBuf, PathBuf),
    config: PathBuf,
    data: PathBuf,
}

/// A self-signed certificate for localhost that expired two days ago (`openssl` 3.0 cannot date
/// one in the past; rcgen can), written as PEM through `openssl`.
fn expired(dir: &Path) -> (PathBuf, PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(30);
    params.not_after = now - time::Duration::days(2);
    let cert = params.self_signed(&key).unwrap();
    let (der, key_der) = (dir.join("expired.der"), dir.join("expired-key.der"));
    std::fs::write(&der, cert.der()).unwrap();
    std::fs::write(&key_der, key.serialize_der()).unwrap();
    let (crt, pem_key) = (dir.join("expired.crt"), dir.join("expired.key"));
    openssl(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        der.to_str().unwrap(),
        "-out",
        crt.to_str().unwrap(),
    ]);
    openssl(&[
        "pkey",
        "-inform",
        "DER",
        "-in",
        key_der.to_str().unwrap(),
        "-out",
        pem_key.to_str().unwrap(),
    ]);
    (crt, pem_key)
}

/// A config dir with TLS on for `server` and the edits to tls.yml in `extra`.
fn setup(extra: &[(&str, &str)]) -> Setup {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().to_path_buf();
    let ca = ca(&dir, "test-ca");
    let (crt, key) = leaf(&dir, &ca, "server", false, 90);
    let mut edits = vec![
        (
            "tls.yml",
            "enabled: false\n  cert_file: \"/etc/ssl/certs/wasm-as-os.crt\"",
            format!("enabled: true\n  cert_file: \"{}\"", crt.display()),
        ),
        (
            "tls.yml",
            "\"/etc/ssl/private/wasm-as-os.key\"",
            format!("\"{}\"", key.display()),
        ),
    ];
    for (from, to) in extra {
        edits.push(("tls.yml", from, to.to_string()));
    }
    let edits: Vec<(&str, &str, &str)> =
        edits.iter().map(|(f, a, b)| (*f, *a, b.as_str())).collect();
    let config = config_copy(&dir, &edits);
    let data = dir.join("data");
    Setup {
        _root: root,
        dir,
        ca,
        config,
        data,
    }
}

fn port(server: &Server) -> String {
    server
        .url("")
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_string()
}

/// `openssl s_client` against the server: its output, and whether a session was set up.
fn s_client(server: &Server, args: &[&str]) -> (bool, String) {
    let connect = format!("127.0.0.1:{}", port(server));
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &connect, "-servername", "localhost"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"Q\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let up =
        out.status.success() && text.contains("Cipher is ") && !text.contains("Cipher is (NONE)");
    (up, text)
}

/// A client trusting `ca`, presenting the client certificate `identity` (certificate, key) if given.
fn client_with(ca: &Path, identity: Option<&(PathBuf, PathBuf)>) -> reqwest::Client {
    let roots = std::fs::read(ca).unwrap();
    let mut b = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&roots).unwrap());
    if let Some((crt, key)) = identity {
        let mut pem = std::fs::read(key).unwrap();
        pem.extend(std::fs::read(crt).unwrap());
        b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    b.build().unwrap()
}

fn client(ca: &Path) -> reqwest::Client {
    let pem = std::fs::read(ca).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_offers_only_tls12_and_13_with_the_listed_suites_and_security_headers() {
    // The spec's list without AES-128-GCM, which rustls would otherwise negotiate.
    let s = setup(&[("    - \"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"\n", "")]);
    let server = Server::start_in(&s.config, &s.data, None);
    assert!(
        server.url("/").starts_with("https://127.0.0.1:"),
        "{}",
        server.url("/")
    );
    let http = client(&s.ca.0);

    let page = http.get(server.url("/login")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let h = page.headers();
    assert_eq!(
        h["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    let csp = h["content-security-policy"].to_str().unwrap().to_string();
    assert!(
        csp.contains("'wasm-unsafe-eval'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "no-store");
    assert!(h.contains_key("referrer-policy") && h.contains_key("permissions-policy"));
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "the inline scripts carry the response's nonce"
    );

    // TLS 1.1 is refused even to a client that would accept it.
    let (up, text) = s_client(&server, &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]);
    assert!(!up, "TLS 1.1 was accepted: {text}");
    // TLS 1.2 with a listed suite works; with one outside the list it does not.
    let (up, text) = s_client(
        &server,
        &["-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384"],
    );
    assert!(up && text.contains("ECDHE-RSA-AES256-GCM-SHA384"), "{text}");
    let (up, text) = s_client(
        &server,
        &["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"],
    );
    assert!(
        !up,
        "a suite outside tls.cipher_suites was negotiated: {text}"
    );
    let (up, text) = s_client(&server, &["-tls1_3"]);
    assert!(up && text.contains("TLSv1.3"), "{text}");
    // HTTP/2 by ALPN, and HTTP/1.1.
    let (up, text) = s_client(&server, &["-alpn", "h2,http/1.1"]);
    assert!(up && text.contains("ALPN protocol: h2"), "{text}");
    let (_, text) = s_client(&server, &["-alpn", "http/1.1"]);
    assert!(text.contains("ALPN protocol: http/1.1"), "{text}");

    // Plain HTTP on the HTTPS port gets nothing served.
    let plain = reqwest::get(format!("http://127.0.0.1:{}/healthz", port(&server))).await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
    server.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls13_only_when_min_version_is_13() {
    let s = setup(&[("min_version: \"1.2\"", "min_version: \"1.3\"")]);
    let server = Server::start_in(&s.config, &s.data, None);
    let (up, text) = s_client(&server, &["-tls1_2"]);
    assert!(!up, "TLS 1.2 was accepted: {text}");
    let (up, text) = s_client(&server, &["-tls1_3"]);
    assert!(up, "{text}");
    let ok = client(&s.ca.0)
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    server.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_is_required_and_must_chain_to_the_ca() {
    let root = tempfile::tempdir().unwrap();
    let clients = ca(root.path(), "client-ca");
    let stranger_ca = ca(root.path(), "stranger-ca");
    let good = leaf(root.path(), &clients, "alice-device", true, 60);
    let foreign = leaf(root.path(), &stranger_ca, "mallory-device", true, 60);
    let ca_line = format!("ca_file: \"{}\"", clients.0.display());
    let s = setup(&[
        (
            "client_auth:\n    enabled: false",
            "client_auth:\n    enabled: true",
        ),
        ("ca_file: \"/etc/ssl/ca/client-ca.crt\"", &ca_line),
    ]);
    let server = Server::start_in(&s.config, &s.data, None);
    let with = |identity| client_with(&s.ca.0, identity);
    assert!(
        with(None).get(server.url("/healthz")).send().await.is_err(),
        "no certificate"
    );
    assert!(
        with(Some(&foreign))
            .get(server.url("/healthz"))
            .send()
            .await
            .is_err(),
        "another CA's"
    );
    let ok = with(Some(&good))
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    server.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_and_a_broken_one_keeps_the_old() {
    let s = setup(&[]);
    let server = Server::start_in(&s.config, &s.data, None);
    let (_, first) = s_client(&server, &[]);
    assert!(
        first.contains("CN=server") || first.contains("CN = server"),
        "{first}"
    );
    let http = client(&s.ca.0);
    assert_eq!(
        http.get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // A renewed certificate under the same names, then SIGHUP.
    let renewed = leaf(&s.dir, &s.ca, "renewed", false, 120);
    std::fs::copy(&renewed.0, s.dir.join("server.crt")).unwrap();
    std::fs::copy(&renewed.1, s.dir.join("server.key")).unwrap();
    server.signal("-HUP");
    assert!(server.stderr_line("reloaded the TLS certificate").is_some());
    let (_, second) = s_client(&server, &[]);
    assert!(
        second.contains("CN=renewed") || second.contains("CN = renewed"),
        "{second}"
    );
    // The connection opened before the reload still serves.
    assert_eq!(
        http.get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // A broken file: the reload is refused with the reason, the renewed certificate stays.
    std::fs::write(s.dir.join("server.crt"), "not a certificate").unwrap();
    server.signal("-HUP");
    let line = server
        .stderr_line("keeping the current TLS certificate")
        .unwrap();
    assert!(line.contains("server.crt"), "{line}");
    let (up, third) = s_client(&server, &[]);
    assert!(
        up && (third.contains("CN=renewed") || third.contains("CN = renewed")),
        "{third}"
    );
    server.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_listener_only_redirects_to_https() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let plain = free.local_addr().unwrap();
    drop(free);
    let line = format!("min_version: \"1.2\"\n  http_redirect: \"{plain}\"");
    let s = setup(&[("min_version: \"1.2\"", &line)]);
    let server = Server::start_in(&s.config, &s.data, None);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (method, path) in [
        ("GET", "/users?q=a%20b"),
        ("POST", "/api/v1/auth/login"),
        ("GET", "/healthz"),
    ] {
        let r = http
            .request(method.parse().unwrap(), format!("http://{plain}{path}"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 308, "{method} {path}");
        assert_eq!(
            r.headers()["location"],
            format!("https://127.0.0.1:{}{path}", port(&server))
        );
        assert!(
            r.text().await.unwrap().is_empty(),
            "nothing is served over plain HTTP"
        );
    }
    server.terminate();
}

/// Start-up refuses bad TLS files with one line naming the file and the problem; `config check`
/// says the same.
#[test]
fn bad_certificates_and_keys_are_refused_at_start_naming_the_file() {
    let s = setup(&[]);
    let other = leaf(&s.dir, &s.ca, "other", false, 90);
    let expired = expired(&s.dir);
    let cert = s.dir.join("server.crt");
    let key = s.dir.join("server.key");
    type Spoil = Box<dyn Fn()>;
    let cases: Vec<(Spoil, &str, PathBuf)> = vec![
        (
            Box::new({
                let k = other.1.clone();
                let key = key.clone();
                move || {
                    std::fs::copy(&k, &key).unwrap();
                }
            }),
            "does not match the certificate",
            key.clone(),
        ),
        (
            Box::new({
                let c = expired.0.clone();
                let e = expired.1.clone();
                let (cert, key) = (cert.clone(), key.clone());
                move || {
                    std::fs::copy(&c, &cert).unwrap();
                    std::fs::copy(&e, &key).unwrap();
                }
            }),
            "expired on",
            cert.clone(),
        ),
        (
            Box::new({
                let cert = cert.clone();
                move || {
                    std::fs::remove_file(&cert).unwrap();
                }
            }),
            "does not exist",
            cert.clone(),
        ),
    ];
    let good = (std::fs::read(&cert).unwrap(), std::fs::read(&key).unwrap());
    for (spoil, reason, file) in cases {
        std::fs::write(&cert, &good.0).unwrap();
        std::fs::write(&key, &good.1).unwrap();
        spoil();
        let out = run_cli_in(&s.config, &s.data, None, &["config", "check"]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{text}");
        assert!(
            text.contains(reason) && text.contains(file.to_str().unwrap()),
            "{reason}: {text}"
        );
        let out = Command::new(env!("CARGO_BIN_EXE_wasm-as-os"))
            .args([
                "--config-dir",
                s.config.to_str().unwrap(),
                "--data-dir",
                s.data.to_str().unwrap(),
                "serve",
                "--listen",
                "127.0.0.1:0",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text}");
        assert!(
            text.contains(reason) && text.contains(file.to_str().unwrap()),
            "{reason}: {text}"
        );
    }
    // An unknown suite name.
    let bad = config_copy(
        &s.dir.join("suites"),
        &[(
            "tls.yml",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_RSA_WITH_RC4_128_MD5",
        )],
    );
    let out = run_cli_in(&bad, &s.data, None, &["config", "check"]);
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && text.contains("TLS_RSA_WITH_RC4_128_MD5"),
        "{text}"
    );
}

/// The sslyze installed by .ci/setup (PyPI sslyze 6.3.1 in its own venv), else one on PATH.
fn sslyze() -> String {
    let venv = std::env::var("SSLYZE_VENV").unwrap_or_else(|_| {
        format!(
            "{}/.cache/wasm-as-os/sslyze-venv",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let bin = format!("{venv}/bin/sslyze");
    if Path::new(&bin).exists() {
        bin
    } else {
        "sslyze".to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslyze_finds_the_mozilla_intermediate_configuration() {
    let tool = sslyze();
    if !testkit::require_tool(&tool, &["--help"]) {
        return;
    }
    let s = setup(&[]);
    let server = Server::start_in(&s.config, &s.data, None);
    let target = format!("localhost:{}{{127.0.0.1}}", port(&server));
    let out = Command::new(&tool)
        .args(["--mozilla_config=intermediate", "--certinfo_ca_file"])
        .arg(&s.ca.0)
        .arg(&target)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // sslyze also exits 0 when it reached nothing; the verdict line is what counts.
    assert!(text.contains(": OK - Compliant."), "{text}");
    server.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testssl_finds_nothing_vulnerable_or_not_ok() {
    if !testkit::require_tool("testssl", &["--version"]) {
        return;
    }
    let s = setup(&[]);
    let server = Server::start_in(&s.config, &s.data, None);
    let out = Command::new("testssl")
        .args(["--quiet", "--color", "0", "--warnings", "batch", "--add-ca"])
        .arg(&s.ca.0)
        .arg(server.url("/"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // It exits 0 whatever it finds; the verdicts are in the lines.
    assert!(
        text.contains("Testing protocols"),
        "testssl did not run: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("NOT ok") || l.contains("VULNERABLE"))
        .collect();
    assert!(
        bad.is_empty(),
        "testssl complains:\n{}\n\n{text}",
        bad.join("\n")
    );
    assert!(text.contains("Strict Transport Security"), "{text}");
    server.terminate();
}

/// tls.yml `client_auth.map_to_user: subject_cn` (documented addition): a verified certificate
/// whose CN is a username signs in to the REST API without a token; one naming nobody, or a
/// disabled account, is 401; a bearer token still wins; and because the browser sends the
/// certificate by itself, a cross-site write authenticated by it is refused like a cookie one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_can_sign_in_to_the_api_as_the_account_its_cn_names() {
    let root = tempfile::tempdir().unwrap();
    let clients = ca(root.path(), "client-ca");
    let alice = leaf(root.path(), &clients, "alice", true, 60);
    let nobody = leaf(root.path(), &clients, "nobody-here", true, 60);
    let ca_line = format!(
        "ca_file: \"{}\"\n    map_to_user: \"subject_cn\"",
        clients.0.display()
    );
    let s = setup(&[
        (
            "client_auth:\n    enabled: false",
            "client_auth:\n    enabled: true",
        ),
        (
            "verify_mode: \"require_and_verify\"",
            "verify_mode: \"verify_if_given\"",
        ),
        ("ca_file: \"/etc/ssl/ca/client-ca.crt\"", &ca_line),
    ]);
    support::create_user_in(
        &s.config,
        &s.data,
        "alice",
        "AlicePassword123!",
        "developer",
    );
    let server = Server::start_in(&s.config, &s.data, None);
    let with = |identity| client_with(&s.ca.0, identity);
    let me = with(Some(&alice))
        .get(server.url("/api/v1/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let body: serde_json::Value = me.json().await.unwrap();
    assert_eq!(body["username"], "alice", "{body}");
    let stranger = with(Some(&nobody))
        .get(server.url("/api/v1/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 401);
    let anonymous = with(None)
        .get(server.url("/api/v1/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        anonymous.status(),
        401,
        "verify_if_given lets the connection in, not the request"
    );

    // A write carried by the certificate alone must come from this site.
    let cross = with(Some(&alice))
        .post(server.url("/api/v1/me/tokens"))
        .header("origin", "https://evil.example")
        .json(&serde_json::json!({"name": "x", "expires_in_days": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    let body: serde_json::Value = cross.json().await.unwrap();
    assert_eq!(body["error"]["code"], "csrf_rejected");

    // A disabled account no longer signs in by certificate.
    let out = run_cli_in(
        &s.config,
        &s.data,
        None,
        &["admin", "disable-user", "--username", "alice"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let disabled = with(Some(&alice))
        .get(server.url("/api/v1/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), 401);
    server.terminate();
}
