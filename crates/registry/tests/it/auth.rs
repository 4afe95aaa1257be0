//! Basic auth with Docker's config.json, wrong credentials, bearer tokens.

use base64::Engine as _;
use forge_registry::{Client, Credentials, DockerConfig, Error, Platform, StaticCredentials};

use crate::servers::{Proxy, Registry};
use crate::{at, options, sample_image, store_with_image};

fn docker_config(dir: &std::path::Path, host: &str, user: &str, pass: &str) {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    std::fs::write(dir.join("config.json"), format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#))
        .unwrap();
}

#[test]
fn basic_auth_with_docker_config_and_wrong_credentials_leave_no_tag() {
    let Some(registry) = Registry::start(Some(("user", "s3cret-pass"))) else { return };
    if !forge_testkit::require_tool("skopeo") {
        return;
    }
    let (_dir, store, image) = store_with_image(10, 20_000);

    // Right credentials, read from $DOCKER_CONFIG/config.json.
    let config_dir = tempfile::tempdir().unwrap();
    docker_config(config_dir.path(), &registry.host(), "user", "s3cret-pass");
    std::env::set_var("DOCKER_CONFIG", config_dir.path());
    let config = DockerConfig::from_env().unwrap();
    std::env::remove_var("DOCKER_CONFIG");
    assert!(!format!("{config:?}").contains("s3cret"));
    let client = Client::new(options(Box::new(config)));
    let reference = at(&registry.host(), "private/app:1");
    client.push(&store, &image, &reference, &|_| {}).unwrap();
    assert_eq!(registry.skopeo_inspect("private/app", "1")["Digest"], image.manifest_digest.to_string());
    // Again: the manifest's HEAD, with the credentials, finds it there.
    assert!(client.push(&store, &image, &reference, &|_| {}).unwrap().up_to_date);
    let (_dir2, fresh) = crate::store();
    client.pull(&reference, &Platform::default(), &fresh).unwrap();

    // Wrong credentials: the error names the host and where to fix it.
    let other = sample_image(&store, 11, 20_000);
    let wrong = tempfile::tempdir().unwrap();
    docker_config(wrong.path(), &registry.host(), "user", "wrong-pass");
    let wrong_client =
        Client::new(options(Box::new(DockerConfig::load(&wrong.path().join("config.json")).unwrap())));
    let target = at(&registry.host(), "private/other:1");
    let err = wrong_client.push(&store, &other, &target, &|_| {}).unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    let message = err.to_string();
    assert_eq!(
        message,
        format!(
            "unauthorized: {host} refused the credentials of user `user` (auths in {}); \
             log in with `cargo xtask login {host}` (or check DOCKER_CONFIG)",
            wrong.path().join("config.json").display(),
            host = registry.host()
        )
    );
    assert!(!message.contains("wrong-pass") && !format!("{err:?}").contains("wrong-pass"));
    assert_eq!(registry.manifest_status("private/other", "1"), 404);

    // No credentials at all: the same error.
    let anonymous = crate::client();
    let err = anonymous.pull(&reference, &Platform::default(), &fresh).unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
}

#[test]
fn bearer_tokens_are_fetched_with_push_scopes_and_used() {
    let Some(registry) = Registry::start(None) else { return };
    let proxy = Proxy::start(registry.port, Vec::new(), Some("tok-123"));
    let (_dir, store, image) = store_with_image(12, 30_000);
    let credentials = StaticCredentials::default()
        .with(&proxy.host(), Credentials::Basic { username: "robot".into(), password: "pw".into() });
    let client = Client::new(options(Box::new(credentials)));
    let reference = at(&proxy.host(), "tokens/app:2");
    let report = client.push(&store, &image, &reference, &|_| {}).unwrap();
    assert_eq!(report.blobs_uploaded, 3);
    {
        let state = proxy.state();
        assert!(
            state.token_scopes.iter().any(|s| s == "repository:tokens/app:pull,push"),
            "{:?}",
            state.token_scopes
        );
        // The token server got our credentials; one token served every request.
        let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("robot:pw"));
        assert!(
            state.token_auth.iter().all(|a| a.as_deref() == Some(basic.as_str())),
            "{:?}",
            state.token_auth.len()
        );
        assert_eq!(state.token_auth.len(), 1, "the token is cached");
        assert!(state.authorized >= 7, "{}", state.authorized);
    }
    let (_dir2, fresh) = crate::store();
    let pulled = client.pull(&reference, &Platform::default(), &fresh).unwrap();
    assert_eq!(pulled.manifest_digest, image.manifest_digest);
    assert!(proxy.state().token_scopes.iter().any(|s| s == "repository:tokens/app:pull"));

    // A new client re-pushing: the probe learns the challenge, a token
    // for the push scopes goes with the manifest's HEAD, and that is the
    // whole push.
    let credentials = StaticCredentials::default()
        .with(&proxy.host(), Credentials::Basic { username: "robot".into(), password: "pw".into() });
    let again = Client::new(options(Box::new(credentials)));
    proxy.state().log.clear();
    let authorized = proxy.state().authorized;
    let report = again.push(&store, &image, &reference, &|_| {}).unwrap();
    assert!(report.up_to_date, "{report:?}");
    let state = proxy.state();
    assert_eq!(
        state.log,
        [
            "GET /v2/",
            "GET /token?service=test-registry&scope=repository%3Atokens%2Fapp%3Apull%2Cpush",
            "HEAD /v2/tokens/app/manifests/2"
        ]
    );
    assert_eq!(state.authorized, authorized + 1);
}
