//! Outgoing HTTP for components (`wasi:http/outgoing-handler`), behind `network_access`.
//!
//! Every request is checked twice before anything connects: its authority (host and port, the
//! default port of the scheme if none is given) must match an `allowed_hosts` entry
//! ([`NetworkPolicy::permits_authority`]), and every address the host resolves to must pass the
//! socket check ([`NetworkPolicy::check`], which refuses loopback, private, link-local and
//! metadata addresses unless that address is listed). A refusal is recorded (the run ends in
//! `sandbox.capability_denied` naming `network_access`) and the guest's request fails with
//! `error-code.HTTP-request-denied`.
//!
//! The sandbox then connects the TCP stream itself, to the checked addresses in the order they
//! resolved (the first that accepts), never to a fresh resolution of the name, so DNS rebinding
//! cannot redirect it. For `https` the TLS handshake (rustls) sends the request's host as SNI and
//! verifies the certificate against that host: the name for a host name, the IP for an IP
//! literal. The trust roots are the Mozilla roots of `webpki-roots` (compiled in, nothing is
//! fetched at run time) plus [`crate::SandboxOptions::extra_tls_roots`]; the client configuration
//! is built once per sandbox ([`client_config`]). HTTP/1.1 then runs over that stream (plain
//! `http` takes the same path without TLS), with the URI reduced to path and query and `Host`
//! set to the request's authority.
//!
//! Failures reach the guest as `wasi:http` error codes: connecting fails with
//! `connection-refused` or `connection-timeout`, an untrusted or mismatched certificate with
//! `TLS-certificate-error`, an alert from the server with `TLS-alert-received`, another TLS
//! failure with `TLS-protocol-error`. The timeouts of the guest's `request-options` apply
//! (connect, which covers the TLS handshake; first byte; between bytes) and the deadline of the
//! run bounds every request. Response bodies are capped at [`MAX_RESPONSE_BODY_BYTES`].

use std::future::{Future, poll_fn};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HOST, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, TlsAlertReceivedPayload};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::error::SandboxError;
use crate::network::NetworkPolicy;
use crate::wasi::Denials;

/// The largest response body a guest can read; past it the body stream fails with
/// `HTTP-response-body-size`.
pub(crate) const MAX_RESPONSE_BODY_BYTES: usize = 16 << 20;

/// The timeouts wasmtime-wasi-http uses when the guest sets none (the run's deadline is
/// usually much shorter).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// The longest timeout a guest can set; longer ones are shortened to it, so that adding one to
/// the current time cannot overflow (the run's deadline ends the request long before).
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
type ResponseFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send>;

/// The TLS client configuration shared by every run of a sandbox: TLS 1.2 and 1.3 with the ring
/// provider, trusting the `webpki-roots` roots and `extra_roots`.
pub(crate) fn client_config(
    extra_roots: &[CertificateDer<'static>],
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for root in extra_roots {
        roots.add(root.clone())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The `wasi:http` hooks of one run: the run's network policy, where refusals are recorded, and
/// the sandbox's TLS client configuration.
pub(crate) struct HttpHooks {
    policy: NetworkPolicy,
    denials: Denials,
    tls: TlsConnector,
}

impl HttpHooks {
    pub(crate) fn new(policy: NetworkPolicy, denials: Denials, tls: Arc<ClientConfig>) -> Self {
        Self {
            policy,
            denials,
            tls: TlsConnector::from(tls),
        }
    }
}

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> ResponseFuture {
        let policy = self.policy.clone();
        let denials = self.denials.clone();
        let tls = self.tls.clone();
        Box::new(async move {
            let target = checked_target(request.uri(), &policy, &denials).await?;
            send(request, &target, options.unwrap_or_default(), tls).await
        })
    }

    /// Tells the guest more than `TLS-protocol-error` when rustls says why the handshake failed.
    fn p2_error_from_tls(&mut self, err: &io::Error) -> ErrorCode {
        tracing::debug!(error = %err, "outgoing TLS failed");
        match err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
        {
            Some(rustls::Error::InvalidCertificate(_)) => ErrorCode::TlsCertificateError,
            Some(rustls::Error::AlertReceived(alert)) => {
                ErrorCode::TlsAlertReceived(TlsAlertReceivedPayload {
                    alert_id: Some(u8::from(*alert)),
                    alert_message: Some(format!("{alert:?}")),
                })
            }
            _ => ErrorCode::TlsProtocolError,
        }
    }
}

/// Where a checked request goes.
#[derive(Debug)]
struct Target {
    /// Whether to speak TLS.
    https: bool,
    /// The request's host (an IPv6 literal without brackets): what TLS verifies.
    host: String,
    /// The request's authority as the guest gave it, for the `Host` header.
    authority: Authority,
    /// Every address the host resolved to, each checked by the policy; tried in order.
    addrs: Vec<SocketAddr>,
}

/// Checks the authority of `uri` against `policy` and returns where to connect; a refusal is
/// recorded in `denials`.
async fn checked_target(
    uri: &Uri,
    policy: &NetworkPolicy,
    denials: &Denials,
) -> Result<Target, Error> {
    let https = match uri.scheme() {
        Some(s) if *s == Scheme::HTTPS => true,
        Some(s) if *s == Scheme::HTTP => false,
        _ => return Err(Error::HttpProtocolError),
    };
    let authority = uri.authority().ok_or(Error::HttpRequestUriInvalid)?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let refuse = |detail: String| {
        denials.push(SandboxError::CapabilityDenied {
            capability: "network_access",
            detail,
        });
        Error::HttpRequestDenied
    };
    if !policy.permits_authority(host, port) {
        return Err(refuse(format!("to HTTP host {host}:{port}")));
    }
    let literal = host.parse::<IpAddr>().ok();
    let addrs: Vec<SocketAddr> = match literal {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| Error::DnsError {
                rcode: Some("address unavailable".into()),
                info_code: None,
            })?
            .collect(),
    };
    for addr in &addrs {
        if policy.check(*addr).await.is_err() {
            return Err(refuse(format!("to HTTP host {host}:{port} at {addr}")));
        }
    }
    if addrs.is_empty() {
        return Err(Error::DestinationNotFound);
    }
    Ok(Target {
        https,
        host: host.to_owned(),
        authority: authority.clone(),
        addrs,
    })
}

/// The name a TLS handshake with `host` sends (SNI) and verifies the certificate against: an IP
/// literal is its IP, anything else must be a valid DNS name.
fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(ServerName::IpAddress(ip.into())),
        Err(_) => Ok(ServerName::try_from(host.to_owned())?),
    }
}

/// Connects to the first of `addrs` that accepts.
async fn connect(addrs: &[SocketAddr]) -> Result<TcpStream, Error> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or(Error::DestinationNotFound, Error::Connect))
}

/// Sends `request` to `target` (already checked) and returns the response, whose body is
/// capped and timed, and the future that drives the rest of the connection.
async fn send(
    mut request: http::Request<WasiBody>,
    target: &Target,
    options: RequestOptions,
    tls: TlsConnector,
) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
    let timeout = |t: Option<Duration>| t.unwrap_or(DEFAULT_TIMEOUT).min(MAX_TIMEOUT);
    let connect_timeout = timeout(options.connect_timeout);
    let first_byte_timeout = timeout(options.first_byte_timeout);
    let between_bytes_timeout = timeout(options.between_bytes_timeout);

    let path = request
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    *request.uri_mut() = Uri::from(path);
    if !request.headers().contains_key(HOST) {
        let host = HeaderValue::from_str(target.authority.as_str())
            .map_err(|_| Error::HttpRequestUriInvalid)?;
        request.headers_mut().insert(HOST, host);
    }

    let server_name = if target.https {
        Some(server_name(&target.host)?)
    } else {
        None
    };
    // One connect timeout for the TCP connection and the TLS handshake together.
    let started = tokio::time::Instant::now();
    let stream = within(connect_timeout, connect(&target.addrs)).await?;
    if let Some(server_name) = server_name {
        let left = connect_timeout.saturating_sub(started.elapsed());
        let stream = within(left, async {
            tls.connect(server_name, stream).await.map_err(Error::Tls)
        })
        .await?;
        exchange(stream, request, first_byte_timeout, between_bytes_timeout).await
    } else {
        exchange(stream, request, first_byte_timeout, between_bytes_timeout).await
    }
}

/// `work`, or `ConnectionTimeout` once `limit` passed.
async fn within<T>(
    limit: Duration,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| Error::ConnectionTimeout)?
}

/// Runs one HTTP/1.1 request over `stream`: drives the connection until the response head
/// arrives (within `first_byte_timeout`), then hands the connection back as the I/O future.
async fn exchange<S>(
    stream: S,
    request: http::Request<WasiBody>,
    first_byte_timeout: Duration,
    between_bytes_timeout: Duration,
) -> Result<(http::Response<WasiBody>, IoFuture), Error>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await?;
    let mut conn = Some(conn);
    let mut response = std::pin::pin!(sender.send_request(request));
    // Poll the response, and the connection until it ends, so the request is written and the
    // response read.
    let waiting = poll_fn(|cx| {
        if let Poll::Ready(r) = response.as_mut().poll(cx) {
            return Poll::Ready(r.map_err(hyper_error));
        }
        let Some(c) = conn.as_mut() else {
            return Poll::Pending;
        };
        let ended = ready!(Pin::new(c).poll(cx));
        conn = None;
        match ended {
            // The connection is done: the response is ready or failed.
            Ok(()) => response.as_mut().poll(cx).map_err(hyper_error),
            Err(e) => Poll::Ready(Err(hyper_error(e))),
        }
    });
    let response = tokio::time::timeout(first_byte_timeout, waiting)
        .await
        .map_err(|_| Error::ConnectionReadTimeout)??;
    let response = response.map(|incoming| {
        capped(
            TimedBody::new(incoming, between_bytes_timeout),
            MAX_RESPONSE_BODY_BYTES,
        )
    });
    let io: IoFuture = Box::new(async move {
        match conn {
            Some(conn) => conn.await.map_err(hyper_error),
            None => Ok(()),
        }
    });
    Ok((response, io))
}

/// A hyper error as `wasi:http` sees it (a timeout is `HTTP-response-timeout`).
fn hyper_error(e: hyper::Error) -> Error {
    if e.is_timeout() {
        Error::HttpResponseTimeout
    } else {
        Error::from(e)
    }
}

/// A response body that fails with `connection-read-timeout` when no data arrives for
/// `between_bytes` (the guest's `between-bytes-timeout`).
struct TimedBody {
    incoming: hyper::body::Incoming,
    between_bytes: Duration,
    idle: Pin<Box<tokio::time::Sleep>>,
}

impl TimedBody {
    fn new(incoming: hyper::body::Incoming, between_bytes: Duration) -> Self {
        Self {
            incoming,
            between_bytes,
            idle: Box::pin(tokio::time::sleep(between_bytes)),
        }
    }
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = tokio::time::Instant::now() + self.between_bytes;
                self.idle.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(hyper_error(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                ready!(self.idle.as_mut().poll(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
    }
}

/// `body`, failing with `HTTP-response-body-size` once more than `limit` bytes were read.
fn capped<B>(body: B, limit: usize) -> WasiBody
where
    B: http_body::Body<Data = Bytes, Error = Error> + Send + 'static,
{
    Limited::new(body, limit)
        .map_err(move |e| match e.downcast::<Error>() {
            Ok(e) => *e,
            Err(e) if e.is::<LengthLimitError>() => Error::HttpResponseBodySize(Some(limit as u64)),
            Err(e) => Error::InternalError(Some(e.to_string())),
        })
        .boxed_unsync()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Capabilities;

    fn policy(grant: bool, hosts: &[&str]) -> NetworkPolicy {
        NetworkPolicy::new(&Capabilities {
            network_access: grant,
            allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            ..Capabilities::default()
        })
    }

    #[tokio::test]
    async fn a_refused_request_is_http_request_denied_and_recorded() {
        let uri: Uri = "http://127.0.0.1:8080/a?b".parse().unwrap();
        for p in [
            policy(false, &["127.0.0.1:8080"]),
            policy(true, &["127.0.0.1:8081", "localhost.example"]),
        ] {
            let denials = Denials::default();
            let e = checked_target(&uri, &p, &denials).await.unwrap_err();
            assert!(matches!(e, Error::HttpRequestDenied), "{e:?}");
            let recorded = denials.first().unwrap();
            assert!(
                recorded.to_string().contains("127.0.0.1:8080"),
                "{recorded}"
            );
        }
    }

    #[tokio::test]
    async fn an_allowed_request_goes_to_the_checked_addresses_and_keeps_its_name() {
        let denials = Denials::default();
        let uri: Uri = "https://localhost:8080/a?b".parse().unwrap();
        let target = checked_target(&uri, &policy(true, &["localhost"]), &denials)
            .await
            .unwrap();
        assert!(target.https);
        assert!(!target.addrs.is_empty());
        for addr in &target.addrs {
            assert!(addr.ip().is_loopback(), "{addr}");
            assert_eq!(addr.port(), 8080);
        }
        assert_eq!(
            server_name(&target.host).unwrap(),
            ServerName::try_from("localhost").unwrap()
        );
        assert_eq!(target.authority.as_str(), "localhost:8080");
        assert!(denials.first().is_none());
    }

    #[tokio::test]
    async fn an_ip_literal_is_its_own_address_and_server_name() {
        let denials = Denials::default();
        for (uri, ip) in [
            ("https://127.0.0.1:8443/", "127.0.0.1"),
            ("https://[::1]:8443/", "::1"),
        ] {
            let uri: Uri = uri.parse().unwrap();
            let ip: IpAddr = ip.parse().unwrap();
            let target = checked_target(&uri, &policy(true, &["localhost"]), &denials)
                .await
                .unwrap();
            assert_eq!(target.addrs, vec![SocketAddr::new(ip, 8443)]);
            assert_eq!(
                server_name(&target.host).unwrap(),
                ServerName::IpAddress(ip.into())
            );
        }
    }

    #[test]
    fn a_host_that_is_not_a_dns_name_has_no_server_name() {
        let e = server_name("bad name").unwrap_err();
        assert!(matches!(e, Error::InvalidDnsNameError(_)), "{e:?}");
    }

    #[tokio::test]
    async fn a_scheme_other_than_http_or_https_is_a_protocol_error() {
        let uri: Uri = "ftp://127.0.0.1:21/".parse().unwrap();
        let e = checked_target(&uri, &policy(true, &["127.0.0.1"]), &Denials::default())
            .await
            .unwrap_err();
        assert!(matches!(e, Error::HttpProtocolError), "{e:?}");
    }

    #[tokio::test]
    async fn a_response_body_past_the_cap_fails_with_its_size() {
        use http_body_util::Full;
        let body = Full::new(Bytes::from_static(b"12345")).map_err(|never| match never {});
        let e = capped(body, 4).collect().await.unwrap_err();
        assert!(matches!(e, Error::HttpResponseBodySize(Some(4))), "{e:?}");
        let body = Full::new(Bytes::from_static(b"1234")).map_err(|never| match never {});
        assert_eq!(
            capped(body, 4).collect().await.unwrap().to_bytes().as_ref(),
            b"1234"
        );
    }

    #[tokio::test]
    async fn the_default_port_of_the_scheme_is_checked() {
        let denials = Denials::default();
        let uri: Uri = "http://127.0.0.1/".parse().unwrap();
        let e = checked_target(&uri, &policy(true, &["127.0.0.1:443"]), &denials)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::HttpRequestDenied), "{e:?}");
        assert!(
            checked_target(&uri, &policy(true, &["127.0.0.1:80"]), &denials)
                .await
                .is_ok()
        );
    }

    /// A server on 127.0.0.1 that reads one request head, sends it back through the channel,
    /// then writes `answer` and holds the connection open until the test ends.
    fn server(answer: &'static [u8]) -> (SocketAddr, std::sync::mpsc::Receiver<String>) {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (mut stream, _) = l.accept().unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
            let _ = stream.write_all(answer);
            let _ = stream.read(&mut buf);
        });
        (addr, rx)
    }

    fn get(uri: &str) -> http::Request<WasiBody> {
        let body = http_body_util::Empty::new().map_err(|never| match never {});
        http::Request::get(uri).body(body.boxed_unsync()).unwrap()
    }

    fn target(authority: &str, addr: SocketAddr) -> Target {
        let authority: Authority = authority.parse().unwrap();
        Target {
            https: false,
            host: authority.host().to_owned(),
            authority,
            addrs: vec![addr],
        }
    }

    fn connector() -> TlsConnector {
        TlsConnector::from(client_config(&[]).unwrap())
    }

    #[tokio::test]
    async fn the_request_line_has_only_path_and_query_and_host_has_the_authority() {
        let (addr, heads) = server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        let target = target("example.test:8080", addr);
        let request = get("http://example.test:8080/a?b");
        let (response, io) = send(request, &target, RequestOptions::default(), connector())
            .await
            .unwrap();
        tokio::spawn(Pin::from(io));
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body.as_ref(), b"ok");
        let head = heads.recv().unwrap();
        assert!(head.starts_with("GET /a?b HTTP/1.1\r\n"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("host: example.test:8080\r\n"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn no_response_within_the_first_byte_timeout_is_a_read_timeout() {
        let (addr, _heads) = server(b"");
        let options = RequestOptions {
            first_byte_timeout: Some(Duration::from_millis(50)),
            ..RequestOptions::default()
        };
        let request = get("http://127.0.0.1/");
        let e = send(request, &target("127.0.0.1", addr), options, connector())
            .await
            .err()
            .unwrap();
        assert!(matches!(e, Error::ConnectionReadTimeout), "{e:?}");
    }

    #[tokio::test]
    async fn a_body_stalling_past_the_between_bytes_timeout_is_a_read_timeout() {
        let (addr, _heads) = server(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab");
        let options = RequestOptions {
            between_bytes_timeout: Some(Duration::from_millis(50)),
            ..RequestOptions::default()
        };
        let request = get("http://127.0.0.1/");
        let (response, io) = send(request, &target("127.0.0.1", addr), options, connector())
            .await
            .unwrap();
        tokio::spawn(Pin::from(io));
        let e = response.into_body().collect().await.unwrap_err();
        assert!(matches!(e, Error::ConnectionReadTimeout), "{e:?}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error() {
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let request = get("http://127.0.0.1/");
        let e = send(
            request,
            &target("127.0.0.1", addr),
            RequestOptions::default(),
            connector(),
        )
        .await
        .err()
        .unwrap();
        assert!(matches!(e, Error::Connect(_)), "{e:?}");
    }

    #[tokio::test]
    async fn the_first_checked_address_that_accepts_is_used() {
        let refused = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = l.local_addr().unwrap();
        let stream = connect(&[refused, open]).await.unwrap();
        assert_eq!(stream.peer_addr().unwrap(), open);
    }

    #[test]
    fn a_root_that_does_not_parse_is_refused() {
        assert!(client_config(&[]).is_ok());
        let junk = CertificateDer::from(vec![1, 2, 3]);
        assert!(client_config(&[junk]).is_err());
    }
}
