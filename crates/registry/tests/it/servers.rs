//! Test servers on 127.0.0.1: Debian's `docker-registry`, and a proxy in
//! front of it that injects faults (a dropped connection, a 500, a 429) or
//! demands bearer tokens from its own token endpoint.
//!
//! The proxy forces `Connection: close` on every forwarded request, so that
//! it sees each request's head and can decide about it; it speaks just
//! enough HTTP/1.1 for that.
//!
//! [`TlsProxy`] puts the proxy behind HTTPS (rustls, with a certificate of
//! the test's `TestCa`), so that a token server can be tested over TLS too.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use forge_testkit::registry::TLS_NAME;
pub use forge_testkit::registry::{free_port, Registry};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// What the proxy does to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Reads half of the body, then drops the connection.
    Drop,
    /// Reads the body, then answers this status (with `Retry-After`).
    Status(u16, Option<u32>),
    /// Reads the body, then answers this status with `Retry-After` as the
    /// HTTP-date this many seconds from now.
    StatusUntil(u16, u32),
    /// Forwards the request, then appends whitespace to the response body
    /// (fixing `Content-Length`); with `true`, also removes the
    /// `Docker-Content-Digest` header.
    Tamper(bool),
    /// Forwards the request, then sends only the first half of the
    /// response body (with the full `Content-Length`).
    Truncate,
}

/// Applies `fault` once, to the first request with `method` whose path
/// contains `path`.
#[derive(Debug, Clone)]
pub struct Rule {
    pub method: &'static str,
    pub path: &'static str,
    pub fault: Fault,
}

#[derive(Debug, Default)]
pub struct ProxyState {
    pub rules: Vec<Rule>,
    /// When set, every request needs `Authorization: Bearer TOKEN`, given
    /// out by `GET /token`.
    pub bearer: Option<String>,
    /// The `scope` parameters of token requests, decoded.
    pub token_scopes: Vec<String>,
    /// The `Authorization` headers of token requests.
    pub token_auth: Vec<Option<String>>,
    /// When set, the token server answers 401 to requests without this
    /// `Authorization` header.
    pub token_requires: Option<String>,
    /// The token realm the challenges name; by default this proxy's own
    /// `/token` over plain HTTP.
    pub realm: Option<String>,
    /// Requests that came with the right token.
    pub authorized: usize,
    /// `METHOD PATH` of every request.
    pub log: Vec<String>,
    /// Faults applied, as `METHOD PATH`.
    pub applied: Vec<String>,
}

pub struct Proxy {
    pub port: u16,
    pub state: Arc<Mutex<ProxyState>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(upstream: u16, rules: Vec<Rule>, bearer: Option<&str>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(ProxyState {
            rules,
            bearer: bearer.map(str::to_owned),
            ..ProxyState::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (state2, stop2) = (state.clone(), stop.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let state = state2.clone();
                thread::spawn(move || {
                    let _ = handle(stream, upstream, port, &state);
                });
            }
        });
        Proxy { port, state, stop }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, ProxyState> {
        self.state.lock().unwrap()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn handle(mut client: TcpStream, upstream: u16, port: u16, state: &Mutex<ProxyState>) -> io::Result<()> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = client.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let rest = buf[head_end..].to_vec();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned())))
        .collect();
    let get = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let content_length: usize = get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);

    let fault = {
        let mut state = state.lock().unwrap();
        state.log.push(format!("{method} {path}"));
        if let Some(token) = state.bearer.clone() {
            if path.starts_with("/token") {
                let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
                for pair in query.split('&') {
                    if let Some(scope) = pair.strip_prefix("scope=") {
                        state.token_scopes.push(percent_decode(scope));
                    }
                }
                state.token_auth.push(get("authorization"));
                if state.token_requires.is_some() && state.token_requires != get("authorization") {
                    drop(state);
                    return respond(&mut client, 401, &[], r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#);
                }
                drop(state);
                let body = format!(r#"{{"token":"{token}","expires_in":300}}"#);
                return respond(&mut client, 200, &[("Content-Type", "application/json")], &body);
            }
            if get("authorization").as_deref() != Some(&format!("Bearer {token}")) {
                let realm = state.realm.clone().unwrap_or_else(|| format!("http://127.0.0.1:{port}/token"));
                drop(state);
                let challenge = format!(r#"Bearer realm="{realm}",service="test-registry""#);
                let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
                return respond(&mut client, 401, &[("WWW-Authenticate", &challenge)], body);
            }
            state.authorized += 1;
        }
        let at = state.rules.iter().position(|r| r.method == method && path.contains(r.path));
        let fault = at.map(|at| state.rules.remove(at).fault);
        if fault.is_some() {
            state.applied.push(format!("{method} {path}"));
        }
        fault
    };

    match fault {
        Some(Fault::Drop) => {
            let mut have = rest.len();
            let mut chunk = [0u8; 4096];
            while have < content_length / 2 {
                let n = client.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                have += n;
            }
            // Unread data makes the kernel answer with a reset.
            drop(client);
            Ok(())
        }
        Some(Fault::StatusUntil(status, seconds)) => {
            let date = forge_testkit::run(
                "date",
                &["-u", "-d", &format!("+{seconds} seconds"), "+%a, %d %b %Y %H:%M:%S GMT"],
            );
            let body = format!(r#"{{"errors":[{{"code":"INJECTED","message":"injected {status}"}}]}}"#);
            respond(&mut client, status, &[("Retry-After", date.trim())], &body)
        }
        Some(Fault::Status(status, retry_after)) => {
            let mut have = rest.len();
            let mut chunk = [0u8; 4096];
            while have < content_length {
                let n = client.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                have += n;
            }
            let after = retry_after.map(|s| s.to_string());
            let mut extra = Vec::new();
            if let Some(after) = &after {
                extra.push(("Retry-After", after.as_str()));
            }
            let body = format!(r#"{{"errors":[{{"code":"INJECTED","message":"injected {status}"}}]}}"#);
            respond(&mut client, status, &extra, &body)
        }
        Some(Fault::Tamper(drop_digest)) => tamper(client, upstream, &head, &rest, drop_digest),
        Some(Fault::Truncate) => truncate(client, upstream, &head, &rest),
        None => forward(client, upstream, &head, &rest),
    }
}

fn tamper(
    mut client: TcpStream,
    upstream: u16,
    head: &str,
    rest: &[u8],
    drop_digest: bool,
) -> io::Result<()> {
    let mut server = send_upstream(upstream, head, rest)?;
    let mut response = Vec::new();
    server.read_to_end(&mut response)?;
    let at = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |i| i + 4);
    let mut body = response[at..].to_vec();
    body.extend_from_slice(b"\n  ");
    let mut out = String::new();
    for line in String::from_utf8_lossy(&response[..at]).trim_end().split("\r\n") {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("content-length:")
            || (drop_digest && lower.starts_with("docker-content-digest:"))
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    client.write_all(out.as_bytes())?;
    client.write_all(&body)?;
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}

/// Sends the request (`head` without its `Connection` header, then `rest`)
/// to the registry on `upstream`, asking it to close when done.
fn send_upstream(upstream: u16, head: &str, rest: &[u8]) -> io::Result<TcpStream> {
    let mut server = TcpStream::connect(("127.0.0.1", upstream))?;
    let mut new_head = String::new();
    for line in head.trim_end_matches("\r\n").split("\r\n") {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            new_head.push_str(line);
            new_head.push_str("\r\n");
        }
    }
    new_head.push_str("Connection: close\r\n\r\n");
    server.write_all(new_head.as_bytes())?;
    server.write_all(rest)?;
    Ok(server)
}

fn truncate(mut client: TcpStream, upstream: u16, head: &str, rest: &[u8]) -> io::Result<()> {
    let mut server = send_upstream(upstream, head, rest)?;
    let mut response = Vec::new();
    server.read_to_end(&mut response)?;
    let at = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |i| i + 4);
    let half = at + (response.len() - at) / 2;
    client.write_all(&response[..half])?;
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}

fn forward(mut client: TcpStream, upstream: u16, head: &str, rest: &[u8]) -> io::Result<()> {
    let mut server = send_upstream(upstream, head, rest)?;
    let (mut client_in, mut server_out) = (client.try_clone()?, server.try_clone()?);
    let upload = thread::spawn(move || {
        let _ = io::copy(&mut client_in, &mut server_out);
    });
    let _ = io::copy(&mut server, &mut client);
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
    let _ = upload.join();
    Ok(())
}

fn respond(client: &mut TcpStream, status: u16, headers: &[(&str, &str)], body: &str) -> io::Result<()> {
    let mut text =
        format!("HTTP/1.1 {status} Status\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    client.write_all(text.as_bytes())?;
    client.flush()?;
    let _ = client.shutdown(Shutdown::Write);
    Ok(())
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A [`Proxy`] behind HTTPS: a front on its own port, serving as
/// [`TLS_NAME`] with the given certificate, relays each request, decrypted,
/// to the plain proxy and the answer back. The proxy's challenges name its
/// token realm on the front, so the whole bearer flow, token requests
/// included, runs over HTTPS; the registry behind stays plain HTTP on
/// loopback.
///
/// The front reads a whole request before relaying it, which is enough:
/// our client always sends `Content-Length`, and the proxy closes each
/// connection after one response.
pub struct TlsProxy {
    pub proxy: Proxy,
    pub port: u16,
    relayed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl TlsProxy {
    /// A [`Proxy`] demanding `bearer` tokens, served over HTTPS with the
    /// certificate and key in PEM files `cert` and `key`.
    pub fn start(upstream: u16, bearer: &str, cert: &Path, key: &Path) -> TlsProxy {
        let proxy = Proxy::start(upstream, Vec::new(), Some(bearer));
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(cert).unwrap().collect::<Result<_, _>>().unwrap();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        proxy.state().realm = Some(format!("https://{TLS_NAME}:{port}/token"));
        let relayed = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (relayed2, stop2, inner) = (relayed.clone(), stop.clone(), proxy.port);
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (config, relayed) = (config.clone(), relayed2.clone());
                thread::spawn(move || {
                    let _ = relay(stream, config, inner, &relayed);
                });
            }
        });
        TlsProxy { proxy, port, relayed, stop }
    }

    /// `registry.forge.test:PORT`, the name its certificate is for.
    pub fn host(&self) -> String {
        format!("{TLS_NAME}:{}", self.port)
    }

    /// Where the front listens.
    pub fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// How many requests came over TLS and were relayed.
    pub fn relayed(&self) -> usize {
        self.relayed.load(Ordering::SeqCst)
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Terminates TLS on `socket`, sends the request to the proxy on `inner`
/// (saying it came over HTTPS) and its response back, then closes.
fn relay(socket: TcpStream, config: Arc<ServerConfig>, inner: u16, relayed: &AtomicUsize) -> io::Result<()> {
    let connection = ServerConnection::new(config).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(connection, socket);
    let Some(mut request) = read_request(&mut tls)? else { return Ok(()) };
    relayed.fetch_add(1, Ordering::SeqCst);
    // As TLS-terminating proxies do, so that the registry's `Location`s
    // say `https://`.
    let line_end = request.windows(2).position(|w| w == b"\r\n").unwrap_or(0) + 2;
    request.splice(line_end..line_end, *b"X-Forwarded-Proto: https\r\n");
    let mut proxy = TcpStream::connect(("127.0.0.1", inner))?;
    proxy.write_all(&request)?;
    io::copy(&mut proxy, &mut tls)?;
    tls.conn.send_close_notify();
    tls.flush()?;
    let _ = tls.sock.shutdown(Shutdown::Both);
    Ok(())
}

/// One request: its head and its `Content-Length` bytes of body; `None`
/// when the connection ends before a whole head.
fn read_request(stream: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .split("\r\n")
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(Some(buf))
}
