//! The identity and webhook checks: certificates expired, expiring, unchained,
//! mismatched, for another name, or not trusted by the caBundle.

use super::*;

#[test]
fn expired_trust_anchors_fail_and_warn() {
    let anchor = pki::ca("root.weft-system.cluster.local", now(), -1, None);
    let issuer = pki::ca(
        "identity.weft-system.cluster.local",
        now(),
        365,
        Some(&anchor),
    );
    let snapshot = with_identity(healthy(), &anchor, &issuer);
    let categories = checks(&snapshot, &options(), now());
    assert_eq!(
        problems(&categories),
        [
            "× trust anchors are within their validity period",
            "‼ trust anchors are valid for at least 60 days",
        ]
    );
    assert!(!success(&categories));
    let text = render_text(&categories);
    assert!(
        text.contains(
            "    trust anchor CN=root.weft-system.cluster.local expired on 2026-11-30T00:00:00Z\n"
        ),
        "{text}"
    );
}

#[test]
fn an_issuer_not_signed_by_the_anchors_fails() {
    let stranger = pki::ca("stranger", now(), 3650, None);
    let issuer = pki::ca(
        "identity.weft-system.cluster.local",
        now(),
        365,
        Some(&stranger),
    );
    let mut snapshot = healthy();
    let mut secret: Secret = load("issuer.json");
    set_pem(&mut secret, "tls.crt", &issuer.cert_pem);
    set_pem(&mut secret, "tls.key", &issuer.key_pem);
    snapshot.issuer = Ok(Some(secret));
    let (line, error, passed) = only_problem(&snapshot, &options());
    assert_eq!(line, "× issuer cert is issued by the trust anchor");
    assert_eq!(
        error,
        "issuer CN=identity.weft-system.cluster.local is not signed by any trust anchor \
         (issuer CN=stranger)"
    );
    assert!(!passed);
}

#[test]
fn an_issuer_expiring_in_30_days_warns_and_passes() {
    let anchor = pki::ca("root.weft-system.cluster.local", now(), 3650, None);
    let issuer = pki::ca(
        "identity.weft-system.cluster.local",
        now(),
        30,
        Some(&anchor),
    );
    let snapshot = with_identity(healthy(), &anchor, &issuer);
    let (line, error, passed) = only_problem(&snapshot, &options());
    assert_eq!(line, "‼ issuer cert is valid for at least 60 days");
    assert_eq!(
        error,
        "issuer CN=identity.weft-system.cluster.local will expire on 2026-12-31T00:00:00Z"
    );
    assert!(passed, "a warning does not fail the run");
}

#[test]
fn an_issuer_key_that_is_not_its_certificates_fails() {
    let other = pki::ca("other", now(), 365, None);
    let mut secret: Secret = load("issuer.json");
    set_pem(&mut secret, "tls.key", &other.key_pem);
    let snapshot = Snapshot {
        issuer: Ok(Some(secret)),
        ..healthy()
    };
    let (line, _, passed) = only_problem(&snapshot, &options());
    assert_eq!(line, "× issuer key matches the issuer cert");
    assert!(!passed);
}

#[test]
fn a_missing_issuer_secret_stops_the_identity_checks() {
    let snapshot = Snapshot {
        issuer: Ok(None),
        ..healthy()
    };
    let categories = checks(&snapshot, &options(), now());
    let identity = &categories[3];
    assert_eq!(identity.checks.len(), 1, "{}", render_text(&categories));
    let (line, error, _) = only_problem(&snapshot, &options());
    assert_eq!(line, "× certificate config is valid");
    assert_eq!(
        error,
        "Secret weft-identity-issuer does not exist in weft-system"
    );
}

#[test]
fn a_webhook_ca_bundle_that_did_not_sign_the_cert_fails() {
    let other = pki::ca("weft-webhook-ca", now(), 3650, None);
    let mut webhook: MutatingWebhookConfiguration = load("webhook.json");
    let hooks = webhook.webhooks.as_mut().unwrap();
    hooks[0].client_config.ca_bundle = Some(ByteString(other.cert_pem.into_bytes()));
    let snapshot = Snapshot {
        webhook: Ok(Some(webhook)),
        ..healthy()
    };
    let (line, error, passed) = only_problem(&snapshot, &options());
    assert_eq!(line, "× proxy-injector caBundle verifies the webhook cert");
    assert_eq!(
        error,
        "webhook weft-proxy-injector.weft.io has a caBundle that did not sign \
         webhook certificate CN=weft-webhook.weft-system.svc"
    );
    assert!(!passed);
}

#[test]
fn a_webhook_cert_for_another_name_fails() {
    let ca = pki::ca("weft-webhook-ca", now(), 3650, None);
    let spec = pki::Spec {
        name: "weft-webhook",
        not_before: now(),
        not_after: now() + time::Duration::days(365),
        ca: false,
        dns_names: &["weft-webhook.default.svc"],
    };
    let cert = pki::make(&spec, Some(&ca));
    let mut secret: Secret = load("webhook-tls.json");
    set_pem(&mut secret, "tls.crt", &cert.cert_pem);
    let mut webhook: MutatingWebhookConfiguration = load("webhook.json");
    webhook.webhooks.as_mut().unwrap()[0]
        .client_config
        .ca_bundle = Some(ByteString(ca.cert_pem.into_bytes()));
    let snapshot = Snapshot {
        webhook_tls: Ok(Some(secret)),
        webhook: Ok(Some(webhook)),
        ..healthy()
    };
    let (line, _, _) = only_problem(&snapshot, &options());
    assert_eq!(line, "× proxy-injector webhook has valid cert");
}
