//! Trust and client certificates per registry, found where the container
//! tools look for them, and what a failed handshake is reported as.
//!
//! Docker, Podman and skopeo read a registry's private CA from
//! `/etc/docker/certs.d/HOST[:PORT]/*.crt` (Podman and skopeo also from
//! `/etc/containers/certs.d/`), and a client certificate for mutual TLS from
//! a `NAME.cert` + `NAME.key` pair in the same directory. We read the same
//! places, plus `$DOCKER_CERT_PATH/HOST[:PORT]/` when that variable is set
//! (searched first, like a certs.d of the user's own), plus the CA files of
//! `--ca-cert` for one run ([`TlsOptions`]).
//!
//! A registry with none of these is verified by the platform verifier (the
//! system store; `SSL_CERT_FILE` on Linux). A registry with extra CAs is
//! verified against the system bundle (`SSL_CERT_FILE`, else the
//! distribution's `ca-certificates` bundle) *and* those CAs, so adding a CA
//! never takes the public roots away.
//!
//! When a handshake fails, [`inspect_peer`] connects once more, accepting any
//! certificate and sending nothing, only to read the certificate the server
//! presented, so that the error can name its subject, issuer and expiry.

use std::fmt;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use forge_input::{IoError, IoResultExt};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{AlertDescription, CertificateError, DigitallySignedStruct, SignatureScheme};
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey};

use crate::error::{Error, Result};
use crate::reference::host_without_port;

/// Where the client looks for CAs and client certificates.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// PEM files of CA certificates trusted for every registry of this run
    /// (`--ca-cert`).
    pub ca_certs: Vec<PathBuf>,
    /// Directories holding one `HOST[:PORT]` directory per registry, as
    /// Docker's `certs.d`; [`default_certs_dirs`] by default.
    pub certs_dirs: Vec<PathBuf>,
    /// `host:port` to connect to this address instead of resolving the
    /// name, as `curl --resolve` does. The certificate is still checked
    /// against the name. Tests use it to serve a real hostname on loopback
    /// without touching `/etc/hosts`.
    pub resolve: Vec<(String, SocketAddr)>,
}

impl Default for TlsOptions {
    fn default() -> TlsOptions {
        TlsOptions { ca_certs: Vec::new(), certs_dirs: default_certs_dirs(), resolve: Vec::new() }
    }
}

/// `$DOCKER_CERT_PATH` (when set), `/etc/docker/certs.d`,
/// `/etc/containers/certs.d`.
pub fn default_certs_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(path) = std::env::var_os("DOCKER_CERT_PATH").filter(|p| !p.is_empty()) {
        dirs.push(PathBuf::from(path));
    }
    dirs.push(PathBuf::from("/etc/docker/certs.d"));
    dirs.push(PathBuf::from("/etc/containers/certs.d"));
    dirs
}

/// What one registry endpoint is trusted with.
#[derive(Debug, Default)]
pub(crate) struct RegistryTls {
    /// Extra CA certificates (certs.d, `--ca-cert`).
    pub cas: Vec<Certificate<'static>>,
    /// The client certificate chain and key for mutual TLS.
    pub client: Option<ClientCert>,
    /// Every place looked at for a CA, for the error of a failed handshake.
    pub looked: Vec<String>,
}

/// The CAs and client certificate for `endpoint` (`host[:port]`).
pub(crate) fn registry_tls(options: &TlsOptions, endpoint: &str) -> Result<RegistryTls> {
    let mut found = RegistryTls::default();
    let mut names = vec![endpoint];
    if host_without_port(endpoint) != endpoint {
        names.push(host_without_port(endpoint));
    }
    for dir in &options.certs_dirs {
        for name in &names {
            let dir = dir.join(name);
            found.looked.push(format!("{}/*.crt", dir.display()));
            read_certs_dir(&dir, &mut found)?;
        }
    }
    if options.ca_certs.is_empty() {
        found.looked.push("--ca-cert (not given)".into());
    }
    for file in &options.ca_certs {
        found.looked.push(format!("--ca-cert {}", file.display()));
        found.cas.extend(read_certificates(file)?);
    }
    match std::env::var_os("SSL_CERT_FILE").filter(|p| !p.is_empty()) {
        Some(file) => found.looked.push(format!("SSL_CERT_FILE={}", Path::new(&file).display())),
        None => found.looked.push("the system store (SSL_CERT_FILE is not set)".into()),
    }
    Ok(found)
}

/// `*.crt` are CAs; `NAME.cert` with `NAME.key` is a client certificate.
fn read_certs_dir(dir: &Path, found: &mut RegistryTls) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(IoError::new("reading the directory", dir, source).into()),
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in &paths {
        match path.extension().and_then(|e| e.to_str()) {
            Some("crt") => found.cas.extend(read_certificates(path)?),
            Some("cert") if found.client.is_none() => {
                let key = path.with_extension("key");
                if !key.is_file() {
                    return Err(Error::CertificateFile {
                        path: path.clone(),
                        reason: format!("a client certificate needs its key next to it as {}", key.display()),
                    });
                }
                let chain = read_certificates(path)?;
                found.client = Some(ClientCert::new_with_certs(&chain, read_key(&key)?));
            }
            Some("key") if !path.with_extension("cert").is_file() => {
                return Err(Error::CertificateFile {
                    path: path.clone(),
                    reason: format!(
                        "a client key needs its certificate next to it as {}",
                        path.with_extension("cert").display()
                    ),
                });
            }
            _ => {}
        }
    }
    Ok(())
}

fn read_pem(path: &Path) -> Result<Vec<PemItem<'static>>> {
    let bytes = std::fs::read(path).io("reading the certificate file", path)?;
    ureq::tls::parse_pem(&bytes)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::CertificateFile { path: path.to_owned(), reason: format!("not valid PEM: {e}") })
}

/// Every certificate of a PEM file; a file with none is an error.
fn read_certificates(path: &Path) -> Result<Vec<Certificate<'static>>> {
    let certs: Vec<Certificate<'static>> = read_pem(path)?
        .into_iter()
        .filter_map(|item| match item {
            PemItem::Certificate(cert) => Some(cert),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(Error::CertificateFile {
            path: path.to_owned(),
            reason: "holds no `BEGIN CERTIFICATE` block".into(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKey<'static>> {
    read_pem(path)?
        .into_iter()
        .find_map(|item| match item {
            PemItem::PrivateKey(key) => Some(key),
            _ => None,
        })
        .ok_or_else(|| Error::CertificateFile {
            path: path.to_owned(),
            reason: "holds no private key (PKCS#8, PKCS#1 or SEC1 PEM)".into(),
        })
}

/// The system's CA bundle as a file: `SSL_CERT_FILE`, else the first
/// distribution bundle that exists. Empty when there is none.
pub(crate) fn system_roots() -> Result<Vec<Certificate<'static>>> {
    if let Some(file) = std::env::var_os("SSL_CERT_FILE").filter(|p| !p.is_empty()) {
        return read_certificates(Path::new(&file));
    }
    const BUNDLES: [&str; 4] = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/ca-bundle.pem",
        "/etc/ssl/cert.pem",
    ];
    match BUNDLES.iter().map(Path::new).find(|p| p.is_file()) {
        Some(bundle) => read_certificates(bundle),
        None => Ok(Vec::new()),
    }
}

/// What kind of TLS failure it was.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsProblem {
    /// No trusted CA signed the server's certificate.
    UnknownIssuer,
    /// The server's certificate has expired (or is not valid yet).
    Expired,
    /// The certificate is not valid for the name we connected to.
    WrongName,
    /// The server refused our client certificate, or wanted one.
    ClientCertificateRefused,
    /// Anything else rustls reported.
    Other(String),
}

impl TlsProblem {
    /// Classifies a rustls error.
    pub fn of(e: &rustls::Error) -> TlsProblem {
        match e {
            rustls::Error::InvalidCertificate(cert) => match cert {
                CertificateError::UnknownIssuer => TlsProblem::UnknownIssuer,
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. } => TlsProblem::Expired,
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                    TlsProblem::WrongName
                }
                other => TlsProblem::Other(format!("invalid certificate: {other:?}")),
            },
            rustls::Error::AlertReceived(
                AlertDescription::CertificateRequired
                | AlertDescription::BadCertificate
                | AlertDescription::UnknownCA
                | AlertDescription::CertificateUnknown
                | AlertDescription::AccessDenied,
            ) => TlsProblem::ClientCertificateRefused,
            other => TlsProblem::Other(other.to_string()),
        }
    }

    /// What to do about it, for `endpoint`.
    pub fn help(&self, endpoint: &str) -> String {
        match self {
            TlsProblem::UnknownIssuer => format!(
                "put the CA certificate that signed it in /etc/docker/certs.d/{endpoint}/ca.crt, or pass --ca-cert FILE"
            ),
            TlsProblem::Expired => "renew the registry's certificate (or check this machine's clock)".into(),
            TlsProblem::WrongName => format!(
                "use the name the certificate was issued for, or reissue it with `{}` in its subjectAltName",
                host_without_port(endpoint)
            ),
            TlsProblem::ClientCertificateRefused => format!(
                "the registry wants a client certificate it trusts: put client.cert and client.key in /etc/docker/certs.d/{endpoint}/"
            ),
            TlsProblem::Other(_) => "check the registry's TLS setup".into(),
        }
    }
}

impl fmt::Display for TlsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsProblem::UnknownIssuer => f.write_str("its certificate is signed by an unknown authority"),
            TlsProblem::Expired => f.write_str("its certificate has expired or is not valid yet"),
            TlsProblem::WrongName => f.write_str("its certificate is not valid for this name"),
            TlsProblem::ClientCertificateRefused => {
                f.write_str("it refused the connection without a client certificate it trusts")
            }
            TlsProblem::Other(text) => f.write_str(text),
        }
    }
}

/// The certificate a server presented, as the error shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    /// `CN=registry.example, O=Example`.
    pub subject: String,
    /// The issuer, the same way.
    pub issuer: String,
    /// `2026-12-01 10:00:00 UTC`.
    pub not_after: String,
    /// The DNS names of its subjectAltName.
    pub names: Vec<String>,
}

impl fmt::Display for PeerCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "subject \"{}\", issuer \"{}\", valid until {}",
            self.subject, self.issuer, self.not_after
        )?;
        if !self.names.is_empty() {
            write!(f, ", names {}", self.names.join(" "))?;
        }
        Ok(())
    }
}

/// The certificate `authority` (`host[:port]` of an HTTPS URL) presents,
/// read by a handshake that stops at the certificate.
/// `None` when the server cannot be reached or sends none.
pub(crate) fn inspect_peer(authority: &str, resolve: &[(String, SocketAddr)]) -> Option<PeerCertificate> {
    let host = host_without_port(authority);
    let port = authority[host.len()..].strip_prefix(':').and_then(|p| p.parse().ok()).unwrap_or(443u16);
    let address = match resolve.iter().find(|(name, _)| name == authority) {
        Some((_, address)) => *address,
        None => (host.trim_start_matches('[').trim_end_matches(']'), port).to_socket_addrs().ok()?.next()?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let capture = Arc::new(Capture { seen: Mutex::new(None), provider: provider.clone() });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(capture.clone())
        .with_no_client_auth();
    let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_owned()).ok()?;
    let mut connection = rustls::ClientConnection::new(Arc::new(config), name).ok()?;
    let mut socket = TcpStream::connect_timeout(&address, Duration::from_secs(5)).ok()?;
    socket.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    socket.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
    while connection.is_handshaking() && capture.seen.lock().ok()?.is_none() {
        if connection.complete_io(&mut socket).is_err() {
            break;
        }
    }
    let der = capture.seen.lock().ok()?.take()?;
    parse_certificate(&der)
}

/// A verifier that keeps the end-entity certificate and refuses it, which
/// ends the handshake right there: only for [`inspect_peer`], which wants
/// the certificate and nothing else (no handshake it starts completes).
#[derive(Debug)]
struct Capture {
    seen: Mutex<Option<Vec<u8>>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

/// What the signature checks of [`Capture`] answer.
type Signature = std::result::Result<HandshakeSignatureValid, rustls::Error>;

impl Capture {
    /// The error that ends the handshake once the certificate is kept.
    fn stop() -> rustls::Error {
        rustls::Error::General("certificate kept for the report; handshake stopped".into())
    }
}

impl ServerCertVerifier for Capture {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(end_entity.as_ref().to_vec());
        }
        Err(Capture::stop())
    }

    // Not reached: the handshake stops at the certificate, before any signature.
    fn verify_tls12_signature(&self, _: &[u8], _: &CertificateDer, _: &DigitallySignedStruct) -> Signature {
        Err(Capture::stop())
    }

    fn verify_tls13_signature(&self, _: &[u8], _: &CertificateDer, _: &DigitallySignedStruct) -> Signature {
        Err(Capture::stop())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// One DER element: tag, content, what follows.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The elements of a constructed DER value.
fn der_items(mut content: &[u8]) -> Vec<(u8, &[u8])> {
    let mut items = Vec::new();
    while let Some((tag, value, rest)) = der(content) {
        items.push((tag, value));
        content = rest;
    }
    items
}

/// Subject, issuer, expiry and DNS names of an X.509 certificate; just
/// enough DER for an error message.
fn parse_certificate(der_bytes: &[u8]) -> Option<PeerCertificate> {
    let (_, certificate, _) = der(der_bytes)?;
    let (_, tbs, _) = der(certificate)?;
    let mut fields = der_items(tbs).into_iter().peekable();
    // [0] version (absent in v1), serial number, signature algorithm.
    fields.next_if(|field| field.0 == 0xa0);
    let _serial = fields.next()?;
    let _signature = fields.next()?;
    let issuer = render_name(fields.next()?.1);
    let validity = der_items(fields.next()?.1);
    let not_after = render_time(validity.get(1)?);
    let subject = render_name(fields.next()?.1);
    let mut names = Vec::new();
    for (tag, value) in fields {
        if tag != 0xa3 {
            continue;
        }
        let Some((_, extensions, _)) = der(value) else { continue };
        for (_, extension) in der_items(extensions) {
            let parts = der_items(extension);
            // 2.5.29.17, subjectAltName.
            if parts.first().map(|p| p.1) != Some(&[0x55, 0x1d, 0x11][..]) {
                continue;
            }
            let Some((_, octets)) = parts.last() else { continue };
            let Some((_, general_names, _)) = der(octets) else { continue };
            for (tag, name) in der_items(general_names) {
                if tag == 0x82 {
                    names.push(String::from_utf8_lossy(name).into_owned());
                }
            }
        }
    }
    Some(PeerCertificate { subject, issuer, not_after, names })
}

/// `CN=..., O=...` of a DER Name, in the certificate's order.
fn render_name(name: &[u8]) -> String {
    let mut parts = Vec::new();
    for (_, set) in der_items(name) {
        for (_, attribute) in der_items(set) {
            let items = der_items(attribute);
            let (Some((_, oid)), Some((_, value))) = (items.first(), items.get(1)) else { continue };
            let key = match oid {
                [0x55, 0x04, 0x03] => "CN",
                [0x55, 0x04, 0x0a] => "O",
                [0x55, 0x04, 0x0b] => "OU",
                [0x55, 0x04, 0x06] => "C",
                [0x55, 0x04, 0x07] => "L",
                [0x55, 0x04, 0x08] => "ST",
                _ => continue,
            };
            parts.push(format!("{key}={}", String::from_utf8_lossy(value)));
        }
    }
    parts.join(", ")
}

/// A UTCTime or GeneralizedTime as `YYYY-MM-DD HH:MM:SS UTC`.
fn render_time((tag, value): &(u8, &[u8])) -> String {
    let text = String::from_utf8_lossy(value);
    let digits = text.trim_end_matches('Z');
    let full = match (*tag, digits.len()) {
        (0x17, 12) => {
            let year: u32 = digits[..2].parse().unwrap_or(0);
            format!("{}{digits}", if year >= 50 { "19" } else { "20" })
        }
        (0x18, 14) => digits.to_owned(),
        _ => return text.into_owned(),
    };
    if !full.bytes().all(|b| b.is_ascii_digit()) {
        return text.into_owned();
    }
    format!(
        "{}-{}-{} {}:{}:{} UTC",
        &full[..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    )
}

/// `host[:port]` of an absolute URL.
pub fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    authority.rsplit_once('@').map_or(authority, |(_, host)| host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        assert_eq!(authority("https://r.example:5000/v2/"), "r.example:5000");
        assert_eq!(authority("https://auth.example/token?x=1"), "auth.example");
        assert_eq!(authority("https://[::1]:5000"), "[::1]:5000");
    }

    #[test]
    fn problems_are_classified() {
        let cases = [
            (rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer), TlsProblem::UnknownIssuer),
            (rustls::Error::InvalidCertificate(CertificateError::Expired), TlsProblem::Expired),
            (rustls::Error::InvalidCertificate(CertificateError::NotValidForName), TlsProblem::WrongName),
            (
                rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
                TlsProblem::ClientCertificateRefused,
            ),
        ];
        for (error, problem) in cases {
            assert_eq!(TlsProblem::of(&error), problem, "{error}");
        }
        assert!(matches!(
            TlsProblem::of(&rustls::Error::AlertReceived(AlertDescription::ProtocolVersion)),
            TlsProblem::Other(_)
        ));
    }

    #[test]
    fn times() {
        assert_eq!(render_time(&(0x17, b"261201100000Z")), "2026-12-01 10:00:00 UTC");
        assert_eq!(render_time(&(0x18, b"20501231235959Z")), "2050-12-31 23:59:59 UTC");
        assert_eq!(render_time(&(0x17, b"garbage")), "garbage");
    }

    #[test]
    fn a_certs_dir_key_without_its_certificate_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("r.example:5000");
        std::fs::create_dir(&host).unwrap();
        std::fs::write(host.join("client.key"), "x").unwrap();
        let options = TlsOptions { certs_dirs: vec![dir.path().to_owned()], ..TlsOptions::default() };
        let err = registry_tls(&options, "r.example:5000").unwrap_err().to_string();
        assert!(err.contains("client.key") && err.contains("client.cert"), "{err}");
        std::fs::remove_file(host.join("client.key")).unwrap();
        std::fs::write(host.join("ca.crt"), "not pem").unwrap();
        let err = registry_tls(&options, "r.example:5000").unwrap_err().to_string();
        assert!(err.contains("ca.crt") && err.contains("BEGIN CERTIFICATE"), "{err}");
        let found = registry_tls(&TlsOptions { certs_dirs: vec![], ..TlsOptions::default() }, "x:1").unwrap();
        assert!(found.cas.is_empty() && found.client.is_none());
        assert!(found.looked.iter().any(|l| l.contains("--ca-cert")), "{:?}", found.looked);
    }
}
