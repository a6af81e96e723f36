//! Identity: a proxy proves its service account with the token the
//! controller wrote for its pod, and gets a short-lived certificate for it
//! from the identity service, over TLS; anything else is refused.

use std::time::SystemTime;

use tonic::Code;
use weft_api::identity::CertifyRequest;
use weft_api::identity::identity_client::IdentityClient;
use weft_identity::{CertificateRequest, SignedCertificate, TrustAnchors};
use weft_tests::controller::{ExampleMesh, RunningController, identity_name};
use weft_tests::{Demo, Metrics, eventually};

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
    // The chain arrives (authz answers), yet without a certificate the
    // proxy does not say it is ready.
    eventually("the chain arrives", || async {
        let status = weft_tests::http1::get(proxy.inbound, "app", "/admin")
            .await
            .status;
        (status == 403)
            .then_some(())
            .ok_or_else(|| status.to_string())
    })
    .await;
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
