use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rustls::pki_types::CertificateDer;
use weft_identity::{CertificateRequest, ServiceAccount, TrustDomain};

use super::*;

const APP: &str = "app.demo.serviceaccount.identity.weft-system.cluster.local";

fn app() -> ServiceAccount {
    ServiceAccount::new("demo", "app").unwrap()
}

/// A fresh directory for one test's issuer files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-reload-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A new anchor and issuer, written to `dir`.
fn generated(dir: &Path) -> IssuerFiles {
    Issuer::local(TrustDomain::default(), dir, Lifetimes::default())
        .unwrap()
        .1
}

fn shared(files: &IssuerFiles) -> SharedIssuer {
    let issuer = Issuer::load(TrustDomain::default(), files, Lifetimes::default()).unwrap();
    SharedIssuer::new(issuer).unwrap()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// The issuer certificate (DER) that signed the next CSR for app.
fn signer_of_next_leaf(issuer: &SharedIssuer) -> Vec<u8> {
    let request = CertificateRequest::generate(APP).unwrap();
    let signed = issuer
        .current()
        .certify(APP, &app(), request.csr_der(), SystemTime::now())
        .unwrap();
    signed.intermediates[0].to_vec()
}

fn der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

/// Rotation as Linkerd documents it: the bundle holds the old and the new
/// anchor, and the new issuer (chained to the new anchor) replaces the old.
fn rotate(files: &IssuerFiles, new: &IssuerFiles) {
    let bundle = read(&files.trust_anchors) + &read(&new.trust_anchors);
    std::fs::write(&files.trust_anchors, bundle).unwrap();
    std::fs::write(&files.certificate, read(&new.certificate)).unwrap();
    std::fs::write(&files.key, read(&new.key)).unwrap();
}

#[test]
fn a_replaced_issuer_signs_the_next_csr_and_a_bad_replacement_is_refused() {
    let (old_dir, new_dir) = (scratch("old"), scratch("new"));
    let files = generated(&old_dir);
    let new = generated(&new_dir);
    let issuer = shared(&files);
    let old_issuer = der(&read(&files.certificate));
    assert_eq!(signer_of_next_leaf(&issuer), old_issuer);

    rotate(&files, &new);
    issuer.reload(&files, Lifetimes::default()).unwrap();
    let new_issuer = der(&read(&new.certificate));
    assert_eq!(signer_of_next_leaf(&issuer), new_issuer);
    assert_eq!(issuer.current().anchors().certificates().len(), 2);
    assert_eq!(
        issuer.anchors().current().certificates().len(),
        2,
        "the controller's TLS trusts the new bundle"
    );

    // Each bad replacement is refused, naming why, and the issuer in use
    // keeps signing.
    let corrupt = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n";
    let another = generated(&scratch("another"));
    let cases: [(&str, &Path, String); 3] = [
        ("a corrupt key", &files.key, corrupt.to_string()),
        ("a key of another issuer", &files.key, read(&another.key)),
        (
            "an issuer no anchor signed",
            &files.certificate,
            read(&another.certificate),
        ),
    ];
    for (what, path, contents) in cases {
        let good = read(path);
        std::fs::write(path, contents).unwrap();
        let error = issuer.reload(&files, Lifetimes::default());
        assert!(error.is_err(), "{what} was taken");
        assert_eq!(signer_of_next_leaf(&issuer), new_issuer, "{what}");
        std::fs::write(path, good).unwrap();
    }
    for dir in [old_dir, new_dir, scratch("another")] {
        let _ = std::fs::remove_dir_all(dir);
    }
}
