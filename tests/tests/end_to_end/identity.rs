//! Identity: a proxy proves its service account with the token the
//! controller wrote for its pod, and gets a short-lived certificate for it
//! from the identity service, over TLS; anything else is refused.

use std::time::SystemTime;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use weft_api::identity::CertifyRequest;
use weft_api::identity::identity_client::IdentityClient;
use weft_api::plugins::WatchChainRequest;
use weft_api::plugins::plugins_client::PluginsClient;
use weft_identity::{CertificateRequest, SignedCertificate, TrustAnchors};
use weft_tests::controller::{ExampleMesh, RunningController, identity_name};
use weft_tests::mesh::weft;
use weft_tests::proxy::RunningProxy;
use weft_tests::relay::Relay;
use weft_tests::{Demo, Metrics, closed_port, eventually, forge, http1};

#[tokio::test]
async fn a_proxy_is_certified_for_its_service_account_and_renews_before_expiry() {
    let mesh = ExampleMesh::copy("identity-renew");
    // A 12 s leaf is renewed at the 10 s floor, so the test sees a renewal.
    let controller = RunningController::spawn_with(
        &mesh.resources(),
        "127.0.0.1:0".parse().unwrap(),
        &[("WEFT_CONTROLLER_IDENTITY_ISSUANCE_LIFETIME", "12s")],
    )
    .await;
    let app = Demo::http("app").spawn().await;
    let sidecar = mesh.sidecar(&controller, "demo/app", app.addr);
    let proxy = controller
        .with_identity(sidecar, "demo/app", "app")
        .spawn()
        .await;

    let refreshes = |metrics: &Metrics| metrics.sum("identity_cert_refresh_count", &[]);
    eventually("the proxy is certified", || async {
        let metrics = proxy.metrics().await;
        (refreshes(&metrics) >= 1.0)
            .then_some(())
            .ok_or_else(|| metrics.text.clone())
    })
    .await;
    let expires = proxy
        .metrics()
        .await
        .sum("identity_cert_expiration_timestamp_seconds", &[]);
    let now = unix_now();
    assert!(
        expires > now && expires <= now + 12.0,
        "expires at {expires}, now is {now}: the leaf lives 12 s"
    );
    controller
        .logged(&format!(
            "certified identity={}",
            identity_name("demo", "app")
        ))
        .unwrap();

    eventually("the proxy renews its certificate", || async {
        let metrics = proxy.metrics().await;
        (refreshes(&metrics) >= 2.0)
            .then_some(())
            .ok_or_else(|| format!("{} refreshes", refreshes(&metrics)))
    })
    .await;
}

#[tokio::test]
async fn a_proxy_is_not_ready_until_it_is_certified() {
    let mesh = ExampleMesh::copy("identity-unready");
    let controller = mesh.controller().await;
    let app = Demo::http("app").spawn().await;
    // Everything right but where the identity service is.
    let sidecar = mesh.sidecar(&controller, "demo/app", app.addr);
    let proxy = controller
        .with_identity(sidecar, "demo/app", "app")
        .env(
            "WEFT_PROXY_IDENTITY_SVC_ADDR",
            &weft_tests::closed_port().to_string(),
        )
        .spawn_unready()
        .await;
    // Without a certificate the proxy cannot take its chain over mTLS
    // either: it refuses traffic and says why it is not ready.
    let rsp = http1::get(proxy.inbound, "app", "/admin").await;
    assert_eq!(rsp.status, 503, "{}", rsp.text());
    assert_eq!(
        rsp.header("x-weft-proxy-error"),
        Some("plugin chain pending")
    );
    let not_ready = proxy.ready().await.unwrap_err();
    assert!(
        not_ready.contains("503") && not_ready.contains("certificate"),
        "{not_ready}"
    );
    eventually("the failure is logged with its cause", || async {
        proxy.logged("could not obtain a certificate")
    })
    .await;
}

#[tokio::test]
async fn certify_signs_only_the_identity_the_token_proves() {
    let mesh = ExampleMesh::copy("identity-certify");
    let controller = mesh.controller().await;
    let anchors = anchors(&controller);
    let token = |workload: &str| {
        let path = controller.token(workload);
        async move {
            eventually("the controller writes the pod's token", || async {
                path.exists()
                    .then_some(())
                    .ok_or_else(|| path.display().to_string())
            })
            .await;
            std::fs::read(&path).unwrap()
        }
    };
    let (app_token, backend_token) = (token("demo/app").await, token("demo/backend").await);
    let app = identity_name("demo", "app");
    let backend = identity_name("demo", "backend");
    let mut client = IdentityClient::new(channel(&controller, &anchors).await.unwrap());

    let request = CertificateRequest::generate(&app).unwrap();
    let certify = |identity: &str, token: &[u8], request: &CertificateRequest| CertifyRequest {
        identity: identity.to_string(),
        token: token.to_vec(),
        certificate_signing_request: request.csr_der().to_vec(),
    };
    let signed = client
        .certify(certify(&app, &app_token, &request))
        .await
        .expect("app's token proves app")
        .into_inner();
    let signed = SignedCertificate::from(signed);
    let certified = request
        .certified(&signed, &anchors)
        .expect("a leaf for app, chained to the anchors");
    assert_eq!(
        weft_identity::peer_identity(&certified.cert[0]).as_deref(),
        Some(app.as_str())
    );

    // Another account's identity with app's token.
    let other = CertificateRequest::generate(&backend).unwrap();
    let refused = client
        .certify(certify(&backend, &app_token, &other))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().contains("demo/app"), "{refused:?}");

    // app's identity with backend's token.
    let refused = client
        .certify(certify(&app, &backend_token, &request))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    // A token whose signature was altered.
    let mut forged = app_token.clone();
    let last = forged.iter().rposition(|b| b.is_ascii_hexdigit()).unwrap();
    forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
    let refused = client
        .certify(certify(&app, &forged, &request))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");

    // A CSR whose SAN is not the identity asked for.
    let refused = client
        .certify(certify(&app, &app_token, &other))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().contains("exactly one DNS SAN"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_client_trusting_other_anchors_cannot_reach_the_identity_service() {
    let (one, two) = (
        ExampleMesh::copy("identity-one"),
        ExampleMesh::copy("identity-two"),
    );
    let (first, second) = (one.controller().await, two.controller().await);
    let others = anchors(&second);
    assert_ne!(
        anchors(&first).certificates(),
        others.certificates(),
        "each controller makes its own anchor"
    );
    let mut client = match channel(&first, &others).await {
        // The handshake fails on connect, or on the first call.
        Err(error) => {
            return assert!(
                format!("{error:?}").contains("InvalidCertificate"),
                "{error:?}"
            );
        }
        Ok(channel) => IdentityClient::new(channel),
    };
    let request = CertificateRequest::generate(&identity_name("demo", "app")).unwrap();
    let error = client
        .certify(CertifyRequest {
            identity: identity_name("demo", "app"),
            token: Vec::new(),
            certificate_signing_request: request.csr_der().to_vec(),
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unavailable, "{error:?}");
}

fn anchors(controller: &RunningController) -> TrustAnchors {
    TrustAnchors::from_pem(&std::fs::read(controller.trust_anchors()).unwrap()).unwrap()
}

async fn channel(
    controller: &RunningController,
    anchors: &TrustAnchors,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    let controller_name = identity_name("weft-system", "weft-controller");
    let tls = weft_identity::client_config(None, anchors, &[b"h2"]).unwrap();
    weft_api::tls::channel(
        controller.identity_addr.to_string(),
        controller_name.try_into().unwrap(),
        tls,
    )
    .await
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// backend's pod: the authz plugin in front of it admits any identity but
/// load's, and nothing without one.
const BACKEND_AUTHZ: &str = r#"
  annotations:
    weft.io/plugins: authz,metrics
    weft.io/plugin-config.authz: |
      {"defaultPolicy": "all-authenticated",
       "rules": [{"name": "not-load", "action": "deny",
                  "identities": ["load.demo.serviceaccount.identity.weft-system.cluster.local"]}]}"#;

#[tokio::test]
async fn proxies_speak_mutual_tls_and_the_server_knows_who_called() {
    let mesh = ExampleMesh::copy("mtls");
    mesh.edit(
        "workloads.yaml",
        "    app: backend",
        &format!("    app: backend{BACKEND_AUTHZ}"),
    );
    let controller = mesh.controller().await;
    let (_backend_app, backend, wire) = backend_behind_a_wire(&mesh, &controller).await;
    let app = certified(&mesh, &controller, "demo/app", "app", closed_port()).await;
    let load = certified(&mesh, &controller, "demo/load", "load", closed_port()).await;

    let rsp = http1::get(app.outbound, &wire.addr.to_string(), "/").await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert_eq!(rsp.text(), "hello from backend\n");
    let rsp = http1::get(load.outbound, &wire.addr.to_string(), "/").await;
    assert_eq!(rsp.status, 403, "load is denied by name: {}", rsp.text());
    // Straight to backend's sidecar, without mTLS.
    let rsp = http1::get(backend.inbound, "backend", "/").await;
    assert_eq!(rsp.status, 403, "no identity, no entry: {}", rsp.text());

    let sent = wire.sent();
    assert_eq!(
        sent.len(),
        2,
        "one HTTP/2 connection from each client proxy"
    );
    for bytes in &sent {
        assert_eq!(bytes.first(), Some(&0x16), "a TLS handshake record first");
        for clear in [&b"GET "[..], b"HTTP/", b"hello", b"PRI * HTTP/2"] {
            assert!(
                !bytes.windows(clear.len()).any(|w| w == clear),
                "{:?} crossed the wire in the clear",
                String::from_utf8_lossy(clear)
            );
        }
    }
    // The series Linkerd's documented alerts select, per client identity.
    let metrics = backend.metrics().await;
    let from = |account| {
        let client_id = identity_name("demo", account);
        let labels = [
            ("direction", "inbound"),
            ("tls", "true"),
            ("client_id", client_id.as_str()),
        ];
        metrics.sum("response_total", &labels)
    };
    assert_eq!((from("app"), from("load")), (1.0, 1.0), "{}", metrics.text);
    // The transport metrics say the same of the connections: one mTLS
    // connection from each client proxy, and the plaintext one.
    let connections = |tls, key, value| {
        let labels = [
            ("direction", "inbound"),
            ("peer", "src"),
            ("tls", tls),
            (key, value),
        ];
        metrics.sum("tcp_open_total", &labels)
    };
    let (app_id, load_id) = (identity_name("demo", "app"), identity_name("demo", "load"));
    assert_eq!(
        (
            connections("true", "client_id", &app_id),
            connections("true", "client_id", &load_id),
            connections("no_identity", "no_tls_reason", "no_tls_from_remote"),
        ),
        (1.0, 1.0, 1.0),
        "{}",
        metrics.text
    );
    let denied = |kind| metrics.sum("inbound_http_authz_deny_total", &[("authz_kind", kind)]);
    assert_eq!(
        (denied("rule"), denied("default")),
        (1.0, 1.0),
        "{}",
        metrics.text
    );
}

#[tokio::test]
async fn opaque_tcp_from_a_peer_proxy_is_terminated_on_an_opaque_port() {
    let mesh = ExampleMesh::copy("mtls-opaque");
    let controller = mesh.controller().await;
    let echo = Demo::tcp_echo().spawn().await;
    let port = echo.addr.port();
    // backend's app port is opaque: no protocol detection there.
    let sidecar = mesh
        .sidecar(&controller, "demo/backend", echo.addr)
        .env("WEFT_PROXY_OPAQUE_PORTS", &port.to_string());
    let sidecar = controller
        .with_identity(sidecar, "demo/backend", "backend")
        .spawn()
        .await;
    let wire = Relay::start(sidecar.inbound).await;

    // As app's proxy sends opaque TCP: mTLS with the transport ALPN, then
    // the header naming the port meant, then the bytes.
    let app = identity_name("demo", "app");
    let credentials = forge::Signer::issuer_in(&controller.state_dir.join("identity"))
        .leaf(&app, forge::VALID_NOW);
    let config = weft_identity::client_config(
        Some(credentials),
        &anchors(&controller),
        &[b"transport.weft.io/v1"],
    )
    .unwrap();
    let backend =
        rustls::pki_types::ServerName::try_from(identity_name("demo", "backend")).unwrap();
    let payload = b"\x00opaque bytes, not HTTP";
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(wire.addr).await.unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(config)
            .connect(backend, tcp)
            .await
            .expect("backend's sidecar terminates mTLS on its opaque port");
        let mut header = b"WFT1".to_vec();
        header.extend_from_slice(&port.to_be_bytes());
        tls.write_all(&header).await.unwrap();
        tls.write_all(payload).await.unwrap();
        let mut echoed = vec![0; payload.len()];
        tls.read_exact(&mut echoed).await.unwrap();
        echoed
    };
    let echoed = tokio::time::timeout(weft_tests::PATIENCE, exchange)
        .await
        .expect("echoed in time");
    assert_eq!(echoed, payload, "the app got the bytes, not TLS");

    let sent = wire.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].first(), Some(&0x16), "a TLS handshake record first");
    assert!(
        !sent[0].windows(6).any(|w| w == b"opaque"),
        "the bytes crossed the wire in the clear"
    );
    let metrics = sidecar.metrics().await;
    let labels = [
        ("direction", "inbound"),
        ("peer", "src"),
        ("tls", "true"),
        ("client_id", app.as_str()),
    ];
    assert_eq!(
        metrics.sum("tcp_open_total", &labels),
        1.0,
        "{}",
        metrics.text
    );
}

#[tokio::test]
async fn anchors_and_issuer_rotate_without_restarting_the_controller_or_a_proxy() {
    let mesh = ExampleMesh::copy("mtls-rotate-anchors");
    let controller = mesh.controller().await;
    let (_backend_app, _backend, wire) = backend_behind_a_wire(&mesh, &controller).await;
    let backend = wire.addr.to_string();
    let app = certified(&mesh, &controller, "demo/app", "app", closed_port()).await;
    assert_eq!(http1::get(app.outbound, &backend, "/").await.status, 200);

    // A new anchor and an issuer it signed, as an operator makes them.
    let (new_anchor_pem, new_issuer, new_key) = new_anchor_and_issuer();
    let new_anchor = TrustAnchors::from_pem(new_anchor_pem.as_bytes()).unwrap();
    // The bundle holds both anchors; then the issuer is the new one. The
    // controller and the proxies read the same anchors file.
    let dir = controller.state_dir.join("identity");
    let bundle = std::fs::read_to_string(dir.join("ca.crt")).unwrap() + &new_anchor_pem;
    std::fs::write(dir.join("ca.crt"), bundle).unwrap();
    std::fs::write(dir.join("issuer.crt"), new_issuer).unwrap();
    std::fs::write(dir.join("issuer.key"), new_key).unwrap();
    eventually(
        "the controller serves a certificate of the new issuer",
        || async {
            let served = channel(&controller, &new_anchor).await;
            served.map(drop).map_err(|error| format!("{error:?}"))
        },
    )
    .await;

    // A proxy certified now holds a certificate of the new issuer: the
    // controller's TLS takes it (the proxy gets its chain), and backend's
    // proxy, started before the rotation, comes to take it too.
    let load = certified(&mesh, &controller, "demo/load", "load", closed_port()).await;
    eventually("backend's proxy trusts the new anchor", || async {
        let rsp = http1::get(load.outbound, &backend, "/").await;
        match rsp.status.as_u16() {
            200 => Ok(()),
            status => Err(format!("{status}: {}", rsp.text())),
        }
    })
    .await;
    assert_eq!(
        http1::get(app.outbound, &backend, "/").await.status,
        200,
        "the old issuer's certificates still verify"
    );
}

#[tokio::test]
async fn certificates_from_other_anchors_or_expired_are_refused_and_identity_can_be_required() {
    let mesh = ExampleMesh::copy("mtls-refused");
    let controller = mesh.controller().await;
    let app = certified(&mesh, &controller, "demo/app", "app", closed_port()).await;
    let backend_app = Demo::http("backend").spawn().await;
    // backend's app port takes only clients that prove an identity.
    let sidecar = mesh
        .sidecar(&controller, "demo/backend", backend_app.addr)
        .env(
            "WEFT_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY",
            &backend_app.addr.port().to_string(),
        );
    let sidecar = controller
        .with_identity(sidecar, "demo/backend", "backend")
        .spawn()
        .await;
    let backend = identity_name("demo", "backend");
    let anchors = anchors(&controller);

    let another_mesh = forge::Signer::self_signed();
    let this_mesh = forge::Signer::issuer_in(&controller.state_dir.join("identity"));
    let cases = [
        (
            "signed under another mesh's anchors",
            another_mesh.leaf(&backend, forge::VALID_NOW),
        ),
        ("expired", this_mesh.leaf(&backend, forge::EXPIRED)),
    ];
    let mut port = 4243;
    for (what, credentials) in cases {
        // As a server, where backend's pod should be: app's sidecar will
        // not send it a request.
        let impostor = forge::TlsPeer::start(credentials.clone(), &anchors).await;
        mesh.edit(
            "workloads.yaml",
            &format!("containerPort: {port}"),
            &format!("containerPort: {}", impostor.addr.port()),
        );
        port = impostor.addr.port();
        expect_meshed_at(&controller, impostor.addr, &backend).await;
        let rsp = http1::get(app.outbound, &impostor.addr.to_string(), "/").await;
        assert_eq!(rsp.status, 502, "{what}: {}", rsp.text());
        assert_eq!(
            rsp.header("x-weft-proxy-error"),
            Some("upstream mTLS failed"),
            "{what}"
        );
        assert!(rsp.text().contains(&backend), "{what}: {}", rsp.text());

        // As a client: backend's sidecar will not take it.
        let refused =
            forge::client_handshake(sidecar.inbound, credentials, &anchors, &backend).await;
        assert!(refused.is_err(), "{what}: the sidecar accepted it");
    }
    // TLS without a client certificate, and plaintext: both refused on a
    // port that requires identity, and counted.
    let anonymous = forge::client_handshake(
        sidecar.inbound,
        weft_identity::Credentials::default(),
        &anchors,
        &backend,
    )
    .await
    .expect("TLS without a client certificate is served (and refused in HTTP)");
    assert!(
        anonymous.starts_with("HTTP/1.1 403") && anonymous.contains("client identity required"),
        "{anonymous}"
    );
    let plaintext = http1::get(sidecar.inbound, "backend", "/").await;
    assert_eq!(plaintext.status, 403, "{}", plaintext.text());
    assert_eq!(
        plaintext.header("x-weft-proxy-error"),
        Some("client identity required")
    );
    let refused = sidecar.metrics().await.sum(
        "inbound_identity_required_refused_total",
        &[("protocol", "http")],
    );
    assert_eq!(refused, 2.0);
}

#[tokio::test]
async fn certificates_rotate_under_steady_mtls_traffic_without_a_failed_request() {
    let mesh = ExampleMesh::copy("mtls-rotate");
    // 12 s leaves are renewed every 10 s (the floor).
    let controller = RunningController::spawn_with(
        &mesh.resources(),
        "127.0.0.1:0".parse().unwrap(),
        &[("WEFT_CONTROLLER_IDENTITY_ISSUANCE_LIFETIME", "12s")],
    )
    .await;
    let (_backend_app, backend, wire) = backend_behind_a_wire(&mesh, &controller).await;
    let app = certified(&mesh, &controller, "demo/app", "app", closed_port()).await;

    let renewals = |metrics: Metrics| metrics.sum("identity_cert_refresh_count", &[]);
    let mut pace = tokio::time::interval(std::time::Duration::from_millis(20));
    let (mut sent, mut generation) = (0, 1.0);
    // Three generations of certificates on both sides; after each renewal
    // the connection between the proxies is cut, so the next request
    // handshakes anew with the new certificates.
    while generation < 4.0 {
        assert!(sent < 10_000, "no renewal after {sent} requests");
        pace.tick().await;
        let rsp = http1::get(app.outbound, &wire.addr.to_string(), "/").await;
        assert_eq!(rsp.status, 200, "request {sent} failed: {}", rsp.text());
        sent += 1;
        let renewed = renewals(app.metrics().await).min(renewals(backend.metrics().await));
        if renewed > generation {
            generation = renewed;
            wire.cut();
            eventually("app's sidecar sees its mTLS connection closed", || async {
                let metrics = app.metrics().await;
                let open = metrics.sum(
                    "tcp_open_connections",
                    &[("direction", "outbound"), ("tls", "true")],
                );
                (open == 0.0).then_some(()).ok_or(open.to_string())
            })
            .await;
        }
    }
    assert!(
        wire.sent().len() >= 3,
        "a handshake per generation: {}",
        wire.sent().len()
    );
}

#[tokio::test]
async fn over_mtls_a_proxy_may_take_only_its_own_workload_s_chain() {
    let mesh = ExampleMesh::copy("mtls-chain");
    // The plugin API only behind mTLS.
    let controller = RunningController::spawn_with(
        &mesh.resources(),
        "127.0.0.1:0".parse().unwrap(),
        &[("WEFT_CONTROLLER_PLAINTEXT_PLUGIN_API", "false")],
    )
    .await;
    // A sidecar with an identity takes its chain over mTLS: authz answers.
    let app_app = Demo::http("app").spawn().await;
    let app = certified(&mesh, &controller, "demo/app", "app", app_app.addr).await;
    let admin = http1::get(app.inbound, "app", "/admin").await;
    assert_eq!(admin.status, 403, "{}", admin.text());

    let watch = |pod: &str| WatchChainRequest {
        namespace: "demo".to_string(),
        pod: pod.to_string(),
    };
    let mut plaintext = PluginsClient::connect(controller.url()).await.unwrap();
    let refused = plaintext.watch_chain(watch("app")).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unimplemented, "{refused:?}");

    let anchors = anchors(&controller);
    let as_app = controller.credentials("demo/app", "app").await;
    let mut client = PluginsClient::new(mtls_channel(&controller, Some(as_app), &anchors).await);
    let mut chains = client.watch_chain(watch("app")).await.unwrap().into_inner();
    let chain = chains.message().await.unwrap().expect("app's chain");
    assert!(chain.plugins.iter().any(|p| p.name == "authz"), "{chain:?}");
    let refused = client.watch_chain(watch("backend")).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().contains("demo/backend"), "{refused:?}");

    let mut anonymous = PluginsClient::new(mtls_channel(&controller, None, &anchors).await);
    let refused = anonymous.watch_chain(watch("app")).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
}

/// A channel to the controller's TLS port, presenting `credentials`.
async fn mtls_channel(
    controller: &RunningController,
    credentials: Option<weft_identity::Credentials>,
    anchors: &TrustAnchors,
) -> tonic::transport::Channel {
    let controller_name = identity_name("weft-system", "weft-controller");
    let tls = weft_identity::client_config(credentials, anchors, &[b"h2"]).unwrap();
    weft_api::tls::channel(
        controller.identity_addr.to_string(),
        controller_name.try_into().unwrap(),
        tls,
    )
    .await
    .unwrap()
}

/// A self-signed anchor, an issuer (a CA) it signed, and the issuer's
/// PKCS#8 key, as PEM.
fn new_anchor_and_issuer() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca = || {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
    };
    let anchor_key = KeyPair::generate().unwrap();
    let anchor = ca().self_signed(&anchor_key).unwrap();
    let issuer_key = KeyPair::generate().unwrap();
    let issuer = ca()
        .signed_by(&issuer_key, &Issuer::new(ca(), anchor_key))
        .unwrap();
    (anchor.pem(), issuer.pem(), issuer_key.serialize_pem())
}

/// A sidecar for `workload` with the identity of `account`, certified.
async fn certified(
    mesh: &ExampleMesh,
    controller: &RunningController,
    workload: &str,
    account: &str,
    app: std::net::SocketAddr,
) -> RunningProxy {
    let sidecar = mesh.sidecar(controller, workload, app);
    controller
        .with_identity(sidecar, workload, account)
        .spawn()
        .await
}

/// backend's app and its certified sidecar, with a relay standing for the
/// network in front of its pod: the controller is told the relay's port is
/// where backend's sidecar receives, and the answer awaited.
async fn backend_behind_a_wire(
    mesh: &ExampleMesh,
    controller: &RunningController,
) -> (weft_tests::demo::RunningDemo, RunningProxy, Relay) {
    let app = Demo::http("backend").spawn().await;
    let sidecar = certified(mesh, controller, "demo/backend", "backend", app.addr).await;
    let wire = Relay::start(sidecar.inbound).await;
    mesh.edit(
        "workloads.yaml",
        "containerPort: 4243",
        &format!("containerPort: {}", wire.addr.port()),
    );
    expect_meshed_at(controller, wire.addr, &identity_name("demo", "backend")).await;
    (app, sidecar, wire)
}
async fn expect_meshed_at(
    controller: &RunningController,
    addr: std::net::SocketAddr,
    identity: &str,
) {
    eventually("the controller names the address's identity", || async {
        let (_, out) = weft(controller, &["endpoint", &addr.to_string()]).await;
        out.contains(identity).then_some(()).ok_or(out)
    })
    .await;
}
