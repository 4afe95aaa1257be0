//! A real OCI registry for tests: Debian's `docker-registry` on a free
//! loopback port with a temporary storage directory (optionally with basic
//! auth from an `htpasswd` file, optionally over TLS), killed on drop.
//!
//! For HTTPS, [`TestCa`] makes a CA per test run with the `openssl` CLI and
//! issues the server's certificate for [`TLS_NAME`]. That name resolves
//! nowhere: tests point the client at 127.0.0.1 for it with the client's
//! resolver override (`TlsOptions::resolve`, like `curl --resolve`), so no
//! `/etc/hosts` entry is written and tests run side by side without root.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A `docker-registry` process, killed on drop.
#[derive(Debug)]
pub struct Registry {
    child: Mutex<Option<Child>>,
    pub port: u16,
    pub storage: PathBuf,
    pub auth: Option<(String, String)>,
    /// Whether it speaks HTTPS (its certificate names [`TLS_NAME`]).
    pub tls: bool,
    log: PathBuf,
    _dir: TempDir,
}

/// The name HTTPS test registries are served as (`.test` is reserved: it
/// never resolves on a real network).
pub const TLS_NAME: &str = "registry.forge.test";

/// How a test registry serves HTTPS.
#[derive(Debug, Clone)]
pub struct ServeTls {
    /// The server's certificate and key.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by this CA.
    pub client_ca: Option<PathBuf>,
}

/// A CA made for one test with `openssl`, with its files in a temporary
/// directory.
#[derive(Debug)]
pub struct TestCa {
    /// The CA certificate (PEM).
    pub cert: PathBuf,
    key: PathBuf,
    dir: TempDir,
}

impl TestCa {
    /// A new CA called `name`; `None` (the test skips) without `openssl`
    /// outside CI.
    pub fn new(name: &str) -> Option<TestCa> {
        if !crate::require_tool("openssl") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("ca.crt"), dir.path().join("ca.key"));
        let subject = format!("/CN={name}/O=plugin-forge tests");
        openssl_req_new_key(
            &["-x509"],
            &key,
            &cert,
            &[
                "-days",
                "2",
                "-subj",
                &subject,
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        Some(TestCa { cert, key, dir })
    }

    /// A certificate for `name` (a server's with `name` as its DNS
    /// subjectAltName, or a client's), as `(cert, key)` files.
    pub fn issue(&self, name: &str, client: bool) -> (PathBuf, PathBuf) {
        self.issue_for_days(name, client, 2)
    }

    /// [`TestCa::issue`] valid for `days` from now; `-1` makes a
    /// certificate that expired yesterday.
    pub fn issue_for_days(&self, name: &str, client: bool, days: i32) -> (PathBuf, PathBuf) {
        let stem = self.dir.path().join(format!("{name}.{days}"));
        let days = days.to_string();
        let (cert, key, csr, ext) = (
            stem.with_extension("cert"),
            stem.with_extension("key"),
            stem.with_extension("csr"),
            stem.with_extension("ext"),
        );
        let usage = if client { "clientAuth" } else { "serverAuth" };
        fs::write(
            &ext,
            format!("subjectAltName=DNS:{name}\nbasicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n"),
        )
        .unwrap();
        openssl_req_new_key(&[], &key, &csr, &["-subj", &format!("/CN={name}")]);
        crate::run(
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                path(&csr),
                "-CA",
                path(&self.cert),
                "-CAkey",
                path(&self.key),
                "-CAcreateserial",
                "-days",
                &days,
                "-extfile",
                path(&ext),
                "-out",
                path(&cert),
            ],
        );
        (cert, key)
    }

    /// How a registry serves HTTPS as `name` with a certificate of this CA.
    pub fn serve(&self, name: &str, client_ca: Option<&Path>) -> ServeTls {
        let (cert, key) = self.issue(name, false);
        ServeTls { cert, key, client_ca: client_ca.map(Path::to_owned) }
    }
}

/// `openssl req BEFORE... -newkey ec (P-256) -nodes -keyout KEY -out OUT AFTER...`:
/// a new key with a certificate (`-x509`) or a signing request.
fn openssl_req_new_key(before: &[&str], key: &Path, out: &Path, after: &[&str]) {
    let mut args = vec!["req"];
    args.extend_from_slice(before);
    args.extend(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]);
    args.extend(["-keyout", path(key), "-out", path(out)]);
    args.extend_from_slice(after);
    crate::run("openssl", &args);
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Registry {
    /// A registry with a fresh storage directory; `None` (the test skips)
    /// when the tools are not installed outside CI.
    pub fn start(auth: Option<(&str, &str)>) -> Option<Registry> {
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        Registry::start_with(dir, storage, auth, None)
    }

    /// A registry speaking HTTPS as `tls` says; reach it as
    /// [`Registry::tls_host`] with the client resolving that to
    /// [`Registry::address`].
    pub fn start_tls(tls: &ServeTls, auth: Option<(&str, &str)>) -> Option<Registry> {
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        Registry::start_with(dir, storage, auth, Some(tls))
    }

    /// A registry serving an existing storage directory.
    pub fn start_on(storage: &Path, auth: Option<(&str, &str)>) -> Option<Registry> {
        Registry::start_with(tempfile::tempdir().unwrap(), storage.to_owned(), auth, None)
    }

    fn start_with(
        dir: TempDir,
        storage: PathBuf,
        auth: Option<(&str, &str)>,
        tls: Option<&ServeTls>,
    ) -> Option<Registry> {
        if !crate::require_tool("docker-registry") {
            return None;
        }
        if auth.is_some() && !crate::require_tool("htpasswd") {
            return None;
        }
        fs::create_dir_all(&storage).unwrap();
        let mut registry = Registry {
            child: Mutex::new(None),
            port: 0,
            storage,
            auth: auth.map(|(u, p)| (u.to_owned(), p.to_owned())),
            tls: tls.is_some(),
            log: dir.path().join("registry.log"),
            _dir: dir,
        };
        // A free port may be taken by another process (another test, a
        // bench beside this one) before the registry binds it: then it
        // exits, and it starts again on another port. Ready is when this
        // registry's own log says it listens, so a registry of someone else
        // on that port is never taken for ours.
        for _ in 0..10 {
            registry.port = free_port();
            registry.spawn(auth, tls);
            if registry.wait_ready() {
                return Some(registry);
            }
        }
        panic!("docker-registry found no free port:\n{}", registry.log());
    }

    fn spawn(&self, auth: Option<(&str, &str)>, tls: Option<&ServeTls>) {
        let dir = self.log.parent().expect("the log is in the registry's directory");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{}\n",
            self.storage.display(),
            self.port
        );
        // Part of the `http:` section, so before `auth:`.
        if let Some(tls) = tls {
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                tls.cert.display(),
                tls.key.display()
            ));
            if let Some(client_ca) = &tls.client_ca {
                config.push_str(&format!("    clientcas:\n      - {}\n", client_ca.display()));
            }
        }
        if let Some((user, pass)) = auth {
            let line = crate::run("htpasswd", &["-Bbn", user, pass]);
            let htpasswd = dir.join("htpasswd");
            fs::write(&htpasswd, line.trim()).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.join("config.yml");
        fs::write(&config_path, config).unwrap();
        let log_file = fs::File::create(&self.log).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("starting docker-registry");
        *self.child.lock().unwrap() = Some(child);
    }

    /// Waits until this registry listens and answers; `false` when it
    /// exited because its port was taken.
    fn wait_ready(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        let listening = format!("listening on 127.0.0.1:{}", self.port);
        loop {
            if let Some(child) = self.child.lock().unwrap().as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    if self.log().contains("address already in use") {
                        return false;
                    }
                    panic!("docker-registry exited with {status}:\n{}", self.log());
                }
            }
            if self.log().contains(&listening) {
                // Over TLS, a listening socket is as far as this plain
                // client can see.
                if self.tls && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                    return true;
                }
                if let Some((status, _)) = http(self.port, "GET", "/v2/", &[]) {
                    if status == 200 || status == 401 {
                        return true;
                    }
                }
            }
            assert!(Instant::now() < deadline, "docker-registry did not answer /v2/:\n{}", self.log());
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `registry.forge.test:PORT`, the name of an HTTPS registry.
    pub fn tls_host(&self) -> String {
        format!("{TLS_NAME}:{}", self.port)
    }

    /// Where it listens.
    pub fn address(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Kills the process (by its PID) and waits for it.
    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The status of `GET /v2/REPO/manifests/TARGET`, with the registry's
    /// credentials if it has any.
    pub fn manifest_status(&self, repo: &str, target: &str) -> u16 {
        let accept = "application/vnd.oci.image.manifest.v1+json";
        let mut headers = vec![("Accept", accept.to_owned())];
        if let Some((user, pass)) = &self.auth {
            use base64::Engine as _;
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            headers.push(("Authorization", format!("Basic {token}")));
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        http(self.port, "GET", &format!("/v2/{repo}/manifests/{target}"), &headers)
            .expect("registry answers")
            .0
    }

    /// `skopeo inspect` of `repo:tag` (JSON).
    pub fn skopeo_inspect(&self, repo: &str, tag: &str) -> serde_json::Value {
        let image = format!("docker://{}/{repo}:{tag}", self.host());
        let mut args = vec!["inspect", "--tls-verify=false"];
        let creds = self.auth.as_ref().map(|(u, p)| format!("{u}:{p}"));
        if let Some(creds) = &creds {
            args.extend(["--creds", creds]);
        }
        args.push(&image);
        serde_json::from_str(&crate::run("skopeo", &args)).expect("skopeo inspect prints JSON")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A one-shot HTTP/1.1 request over a new connection: status and the whole
/// response as text. `None` when nothing answers.
pub fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    Some((status, text))
}
