use std::time::{Duration, SystemTime};

use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256};
use weft_identity::{CertificateRequest, ServiceAccount, TrustDomain, peer_identity};

use super::*;

fn issuer(lifetimes: Lifetimes) -> Issuer {
    let trust = TrustDomain::default();
    let (anchor, certificate, key) = generate(&trust, SystemTime::now()).unwrap();
    Issuer::from_pem(
        trust,
        &anchor,
        &certificate,
        &key,
        lifetimes,
        SystemTime::now(),
    )
    .unwrap()
}

fn app() -> ServiceAccount {
    ServiceAccount::new("demo", "app").unwrap()
}

const APP: &str = "app.demo.serviceaccount.identity.weft-system.cluster.local";

#[test]
fn a_csr_for_the_proven_account_is_signed_with_both_names() {
    let issuer = issuer(Lifetimes::default());
    let request = CertificateRequest::generate(APP).unwrap();
    let now = SystemTime::now();
    let signed = issuer.certify(APP, &app(), request.csr_der(), now).unwrap();

    let credentials = request.certified(&signed, issuer.anchors()).unwrap();
    assert_eq!(peer_identity(&credentials.cert[0]).as_deref(), Some(APP));
    let (_, leaf) = x509_parser::parse_x509_certificate(&signed.leaf).unwrap();
    let uris: Vec<String> = leaf
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            x509_parser::extensions::GeneralName::URI(uri) => Some(uri.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(uris, ["spiffe://cluster.local/ns/demo/sa/app"]);
    assert!(!leaf.is_ca());
    // 24 h from now, starting 20 s early for lagging clocks.
    let not_before = unix(leaf.validity().not_before.timestamp());
    let not_after = unix(leaf.validity().not_after.timestamp());
    let seconds = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(seconds(now) - seconds(not_before), 20);
    assert_eq!(seconds(not_after) - seconds(now), 24 * 3600);
    assert_eq!(seconds(signed.valid_until), seconds(not_after));
    assert_eq!(signed.intermediates.len(), 1, "the issuer is not an anchor");
}

#[test]
fn a_leaf_never_outlives_its_issuer() {
    let issuer = issuer(Lifetimes {
        leaf: Duration::from_secs(400 * 24 * 3600),
        ..Lifetimes::default()
    });
    let request = CertificateRequest::generate(APP).unwrap();
    let signed = issuer
        .certify(APP, &app(), request.csr_der(), SystemTime::now())
        .unwrap();
    assert!(signed.valid_until <= issuer.not_after());
    assert!(
        issuer
            .certify(APP, &app(), request.csr_der(), issuer.not_after())
            .is_err_and(|e| matches!(e, CertifyError::IssuerExpired))
    );
}

#[test]
fn a_csr_for_another_account_is_refused() {
    let issuer = issuer(Lifetimes::default());
    let web = "web.demo.serviceaccount.identity.weft-system.cluster.local";
    let request = CertificateRequest::generate(web).unwrap();
    let error = issuer
        .certify(web, &app(), request.csr_der(), SystemTime::now())
        .unwrap_err();
    assert!(matches!(error, CertifyError::NotYours { .. }), "{error}");
    assert!(error.to_string().contains("demo/app"), "{error}");
}

#[test]
fn a_csr_whose_san_differs_from_the_request_is_refused() {
    let issuer = issuer(Lifetimes::default());
    let web = "web.demo.serviceaccount.identity.weft-system.cluster.local";
    // Asks for app's identity (which the token proves) with web's name inside.
    let request = CertificateRequest::generate(web).unwrap();
    let error = issuer
        .certify(APP, &app(), request.csr_der(), SystemTime::now())
        .unwrap_err();
    assert!(matches!(error, CertifyError::WrongSans { .. }), "{error}");
}

#[test]
fn a_csr_with_an_rsa_key_is_refused() {
    let key = KeyPair::generate_for(&PKCS_RSA_SHA256);
    // ring cannot generate RSA keys; a fixed PKCS#8 test key stands in.
    let key = key.or_else(|_| KeyPair::from_pem(RSA_KEY)).unwrap();
    let csr = CertificateParams::new(vec![APP.to_string()])
        .unwrap()
        .serialize_request(&key)
        .unwrap();
    let error = issuer(Lifetimes::default())
        .certify(APP, &app(), csr.der(), SystemTime::now())
        .unwrap_err();
    assert!(matches!(error, CertifyError::NotEcdsa), "{error}");
}

#[test]
fn garbage_is_not_a_csr() {
    let error = issuer(Lifetimes::default())
        .certify(APP, &app(), b"not a csr", SystemTime::now())
        .unwrap_err();
    assert!(matches!(error, CertifyError::BadCsr(_)), "{error}");
}

#[test]
fn an_issuer_not_signed_by_the_anchors_is_refused() {
    let trust = TrustDomain::default();
    let (_, certificate, key) = generate(&trust, SystemTime::now()).unwrap();
    let (other_anchor, _, _) = generate(&trust, SystemTime::now()).unwrap();
    let error = Issuer::from_pem(
        trust,
        &other_anchor,
        &certificate,
        &key,
        Lifetimes::default(),
        SystemTime::now(),
    )
    .err()
    .unwrap();
    assert!(matches!(error, IssuerError::NotChained), "{error}");
}

#[test]
fn an_issuer_key_that_does_not_match_is_refused() {
    let trust = TrustDomain::default();
    let (anchor, certificate, _) = generate(&trust, SystemTime::now()).unwrap();
    let other = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let error = Issuer::from_pem(
        trust,
        &anchor,
        &certificate,
        &other.serialize_pem(),
        Lifetimes::default(),
        SystemTime::now(),
    )
    .err()
    .unwrap();
    assert!(error.to_string().contains("does not match"), "{error}");
}

#[test]
fn the_local_issuer_is_made_once_and_kept() {
    let dir = std::env::temp_dir().join(format!("weft-issuer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (first, files) = Issuer::local(TrustDomain::default(), &dir, Lifetimes::default()).unwrap();
    let (again, _) = Issuer::local(TrustDomain::default(), &dir, Lifetimes::default()).unwrap();
    assert_eq!(first.anchors().to_pem(), again.anchors().to_pem());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&files.key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An RSA-2048 test key (PKCS#8), used only to make a CSR the issuer must refuse.
const RSA_KEY: &str = include_str!("rsa-test-key.pem");
