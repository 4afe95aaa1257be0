//! HTTPS registries as teams run them: a private CA found in `certs.d` or
//! given with `--ca-cert`, an untrusted CA, a wrong name, an expired
//! certificate, mutual TLS, login then push over HTTPS (with basic auth, and
//! with a token server whose realm is HTTPS too), and `Retry-After` as an
//! HTTP-date. Every failure must come at once, without a retry.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use forge_registry::login::store_login;
use forge_registry::{
    Client, ClientOptions, Credentials, DockerConfig, Error, Platform, Reference, StaticCredentials,
    TlsOptions, TlsProblem,
};
use forge_testkit::registry::{ServeTls, TestCa, TLS_NAME};

use crate::servers::{Fault, Proxy, Registry, Rule, TlsProxy};
use crate::{at, options, recorded_push, store, store_with_image, Events, RecordedPush};

/// Client options for `registry` by its name: the name resolved to
/// loopback, the CAs found in `certs_dirs` and `ca_certs` only.
fn tls_options(registry: &Registry, certs_dirs: Vec<PathBuf>, ca_certs: Vec<PathBuf>) -> ClientOptions {
    ClientOptions {
        tls: TlsOptions { ca_certs, certs_dirs, resolve: vec![(registry.tls_host(), registry.address())] },
        ..options(Box::new(forge_registry::Anonymous))
    }
}

/// A `certs.d` with `FILES` (name, source) in `HOST:PORT/`.
fn certs_d(host: &str, files: &[(&str, &Path)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let host_dir = dir.path().join(host);
    std::fs::create_dir_all(&host_dir).unwrap();
    for (name, source) in files {
        std::fs::copy(source, host_dir.join(name)).unwrap();
    }
    dir
}

fn start(ca: &TestCa, client_ca: Option<&Path>, auth: Option<(&str, &str)>) -> Option<Registry> {
    let tls: ServeTls = ca.serve(TLS_NAME, client_ca);
    Registry::start_tls(&tls, auth)
}

/// Pushes a small image and pulls it back; the error if either fails.
fn round_trip(client: &Client, registry: &Registry, repo: &str, seed: u64) -> Result<(), Error> {
    let (_dir, store, image) = store_with_image(seed, 5_000);
    let reference = at(&registry.tls_host(), &format!("{repo}:1"));
    client.push(&store, &image, &reference, &|_| {})?;
    let (_dir2, fresh) = crate::store();
    let pulled = client.pull(&reference, &Platform::default(), &fresh)?;
    assert_eq!(pulled.manifest_digest, image.manifest_digest);
    Ok(())
}

/// Runs `f`, which must fail at once with a TLS error of `problem`, and no
/// retry; returns the message. Prints how long the failure took.
fn fails_fast(case: &str, problem: TlsProblem, f: impl FnOnce(&Events) -> Result<(), Error>) -> String {
    let events = Events::default();
    let started = Instant::now();
    let err = f(&events).expect_err("the handshake must fail");
    let took = started.elapsed();
    eprintln!("TLS case `{case}` failed after {took:?}: {err}");
    match &err {
        Error::Tls { problem: found, .. } => assert_eq!(*found, problem, "{err}"),
        other => panic!("{case}: expected a TLS error, got {other:?}"),
    }
    assert!(events.retries().is_empty(), "{case}: retried {:?}", events.retries());
    assert!(took < Duration::from_secs(3), "{case}: took {took:?}");
    err.to_string()
}

#[test]
fn a_ca_in_certs_d_or_given_with_ca_cert_is_trusted() {
    let Some(ca) = TestCa::new("forge test CA") else { return };
    let Some(registry) = start(&ca, None, None) else { return };
    let certs = certs_d(&registry.tls_host(), &[("ca.crt", &ca.cert)]);
    let client = Client::new(tls_options(&registry, vec![certs.path().to_owned()], Vec::new()));
    round_trip(&client, &registry, "certsd/app", 40).unwrap();

    // certs.d/HOST without the port is also looked at, as Docker does.
    let by_host = certs_d(TLS_NAME, &[("ca.crt", &ca.cert)]);
    let client = Client::new(tls_options(&registry, vec![by_host.path().to_owned()], Vec::new()));
    round_trip(&client, &registry, "certsd/host", 41).unwrap();

    let client = Client::new(tls_options(&registry, Vec::new(), vec![ca.cert.clone()]));
    round_trip(&client, &registry, "cacert/app", 42).unwrap();
}

#[test]
fn an_untrusted_ca_fails_at_once_and_says_where_we_looked() {
    let Some(ca) = TestCa::new("forge untrusted CA") else { return };
    let Some(registry) = start(&ca, None, None) else { return };
    let Some(other) = TestCa::new("some other CA") else { return };
    let certs = certs_d(&registry.tls_host(), &[("ca.crt", &other.cert)]);
    let client = Client::new(tls_options(&registry, vec![certs.path().to_owned()], Vec::new()));
    let (_dir, store, image) = store_with_image(43, 5_000);
    let reference = at(&registry.tls_host(), "untrusted/app:1");
    let message = fails_fast("untrusted CA", TlsProblem::UnknownIssuer, |events| {
        client.push(&store, &image, &reference, &events.record()).map(drop)
    });
    let host = registry.tls_host();
    for needed in [
        format!("TLS with registry {host} failed"),
        "signed by an unknown authority".to_owned(),
        format!("subject \"CN={TLS_NAME}\""),
        "issuer \"CN=forge untrusted CA, O=plugin-forge tests\"".to_owned(),
        format!("{}/{host}/*.crt", certs.path().display()),
        format!("{}/{TLS_NAME}/*.crt", certs.path().display()),
        "--ca-cert (not given)".to_owned(),
        format!("/etc/docker/certs.d/{host}/ca.crt"),
    ] {
        assert!(message.contains(&needed), "`{needed}` missing from: {message}");
    }
}

#[test]
fn a_certificate_for_another_name_fails_at_once() {
    let Some(ca) = TestCa::new("forge name CA") else { return };
    let Some(registry) = Registry::start_tls(&ca.serve("other.forge.test", None), None) else { return };
    let client = Client::new(tls_options(&registry, Vec::new(), vec![ca.cert.clone()]));
    let (_dir, fresh) = store();
    let reference = at(&registry.tls_host(), "name/app:1");
    let message = fails_fast("wrong hostname", TlsProblem::WrongName, |_| {
        client.pull(&reference, &Platform::default(), &fresh).map(drop)
    });
    assert!(message.contains("names other.forge.test"), "{message}");
    assert!(message.contains(&format!("`{TLS_NAME}` in its subjectAltName")), "{message}");
}

#[test]
fn an_expired_certificate_fails_at_once() {
    let Some(ca) = TestCa::new("forge expiry CA") else { return };
    let (cert, key) = ca.issue_for_days(TLS_NAME, false, -1);
    let Some(registry) = Registry::start_tls(&ServeTls { cert, key, client_ca: None }, None) else { return };
    let client = Client::new(tls_options(&registry, Vec::new(), vec![ca.cert.clone()]));
    let (_dir, fresh) = store();
    let reference = at(&registry.tls_host(), "expired/app:1");
    let message = fails_fast("expired certificate", TlsProblem::Expired, |_| {
        client.pull(&reference, &Platform::default(), &fresh).map(drop)
    });
    assert!(message.contains("has expired") && message.contains("renew"), "{message}");
}

#[test]
fn mutual_tls_needs_the_client_certificate_from_certs_d() {
    let Some(ca) = TestCa::new("forge mtls CA") else { return };
    let Some(clients) = TestCa::new("forge client CA") else { return };
    let Some(registry) = start(&ca, Some(&clients.cert), None) else { return };
    let (_dir, fresh) = store();
    let reference = at(&registry.tls_host(), "mtls/app:1");

    let without = certs_d(&registry.tls_host(), &[("ca.crt", &ca.cert)]);
    let client = Client::new(tls_options(&registry, vec![without.path().to_owned()], Vec::new()));
    let message =
        fails_fast("mTLS without a client certificate", TlsProblem::ClientCertificateRefused, |_| {
            client.pull(&reference, &Platform::default(), &fresh).map(drop)
        });
    assert!(message.contains("client.cert and client.key"), "{message}");

    let (cert, key) = clients.issue("forge-ci", true);
    let with =
        certs_d(&registry.tls_host(), &[("ca.crt", &ca.cert), ("client.cert", &cert), ("client.key", &key)]);
    let client = Client::new(tls_options(&registry, vec![with.path().to_owned()], Vec::new()));
    round_trip(&client, &registry, "mtls/app", 44).unwrap();

    // A client certificate of a CA the registry does not trust.
    let (stranger, stranger_key) = ca.issue("stranger", true);
    let wrong = certs_d(
        &registry.tls_host(),
        &[("ca.crt", &ca.cert), ("client.cert", &stranger), ("client.key", &stranger_key)],
    );
    let client = Client::new(tls_options(&registry, vec![wrong.path().to_owned()], Vec::new()));
    fails_fast("mTLS with an untrusted client certificate", TlsProblem::ClientCertificateRefused, |_| {
        client.pull(&reference, &Platform::default(), &fresh).map(drop)
    });
}

#[test]
fn login_over_https_then_push_with_the_stored_credentials() {
    let Some(ca) = TestCa::new("forge login CA") else { return };
    let Some(registry) = start(&ca, None, Some(("robot", "pass-w0rd"))) else { return };
    let host = registry.tls_host();
    let with = |user: &str, pass: &str| {
        let credentials = StaticCredentials::default()
            .with(&host, Credentials::Basic { username: user.into(), password: pass.into() });
        Client::new(ClientOptions {
            credentials: Box::new(credentials),
            ..tls_options(&registry, Vec::new(), vec![ca.cert.clone()])
        })
    };
    let started = Instant::now();
    let err = with("robot", "wrong").check_login(&host, &|_| panic!("a 401 is not retried")).unwrap_err();
    eprintln!("login with a wrong password failed after {:?}: {err}", started.elapsed());
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("user `robot`") && !message.contains("wrong"), "{message}");
    with("robot", "pass-w0rd").check_login(&host, &|_| {}).unwrap();

    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("config.json");
    store_login(&config, &host, "robot", "pass-w0rd").unwrap();
    let client = Client::new(ClientOptions {
        credentials: Box::new(DockerConfig::load(&config).unwrap()),
        ..tls_options(&registry, Vec::new(), vec![ca.cert.clone()])
    });
    round_trip(&client, &registry, "login/app", 45).unwrap();
}

#[test]
fn login_over_https_through_a_token_server_then_push() {
    let Some(ca) = TestCa::new("forge token CA") else { return };
    let Some(registry) = Registry::start(None) else { return };
    let (cert, key) = ca.issue(TLS_NAME, false);
    let proxy = TlsProxy::start(registry.port, "tok-login", &cert, &key);
    let basic = |user: &str, pass: &str| {
        use base64::Engine as _;
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")))
    };
    proxy.proxy.state().token_requires = Some(basic("robot", "pw"));
    let host = proxy.host();
    // The CA in certs.d/HOST:PORT: the token realm is on the same host, so
    // it is trusted for the token requests too.
    let certs = certs_d(&host, &[("ca.crt", &ca.cert)]);
    let tls = || TlsOptions {
        ca_certs: Vec::new(),
        certs_dirs: vec![certs.path().to_owned()],
        resolve: vec![(host.clone(), proxy.address())],
    };
    let with = |user: &str, pass: &str| {
        let credentials = StaticCredentials::default()
            .with(&host, Credentials::Basic { username: user.into(), password: pass.into() });
        Client::new(ClientOptions { tls: tls(), ..options(Box::new(credentials)) })
    };

    let started = Instant::now();
    let err = with("robot", "nope").check_login(&host, &|_| panic!("a 401 is not retried")).unwrap_err();
    let took = started.elapsed();
    eprintln!("login with a wrong password via an HTTPS token server failed after {took:?}: {err}");
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("user `robot`") && !message.contains("nope"), "{message}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    // The refusal came from the token server, reached over HTTPS.
    assert_eq!(proxy.proxy.state().token_auth, vec![Some(basic("robot", "nope"))]);
    with("robot", "pw").check_login(&host, &|_| {}).unwrap();

    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("config.json");
    store_login(&config, &host, "robot", "pw").unwrap();
    let client =
        Client::new(ClientOptions { tls: tls(), ..options(Box::new(DockerConfig::load(&config).unwrap())) });
    let (_dir, store, image) = store_with_image(46, 5_000);
    let reference = Reference::parse(&format!("{host}/tokens/login:1")).unwrap();
    client.push(&store, &image, &reference, &|_| {}).unwrap();
    assert_eq!(registry.manifest_status("tokens/login", "1"), 200);

    let state = proxy.proxy.state();
    assert!(
        state.token_scopes.iter().any(|s| s == "repository:tokens/login:pull,push"),
        "{:?}",
        state.token_scopes
    );
    // Every token request after the refused one sent the stored password.
    assert!(state.token_auth[1..].iter().all(|a| *a == Some(basic("robot", "pw"))), "{:?}", state.token_auth);
    assert!(state.authorized > 0, "no request carried the token");
    // Every request the proxy saw, token requests included, came over TLS.
    assert_eq!(proxy.relayed(), state.log.len(), "{:?}", state.log);
}

#[test]
fn retry_after_as_an_http_date_is_honoured() {
    let Some(registry) = Registry::start(None) else { return };
    let rules = vec![Rule { method: "HEAD", path: "/blobs/", fault: Fault::StatusUntil(503, 2) }];
    let proxy = Proxy::start(registry.port, rules, None);
    let RecordedPush { events, took, .. } = recorded_push(&proxy.host(), "dated/app:1", 47, 5_000);
    let delays: Vec<Duration> = events
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            forge_registry::PushEvent::Retrying(n) => Some(n.delay),
            _ => None,
        })
        .collect();
    assert_eq!(delays.len(), 1, "{delays:?}");
    // Two seconds from a date with whole seconds: more than the 50 ms
    // backoff of these options, at most two seconds.
    assert!(delays[0] > Duration::from_millis(900) && delays[0] <= Duration::from_secs(2), "{delays:?}");
    assert!(took >= delays[0]);
}
