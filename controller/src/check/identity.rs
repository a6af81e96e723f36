//! `weft-identity`: the trust anchors and the issuer the controller signs
//! proxies' certificates with, as the chart installs them.

use rcgen::{KeyPair, PublicKeyData};
use time::OffsetDateTime;

use super::certificates::{
    Certificate, is_ca, is_p256, not_expiring_soon, pem_certificates, signed_by_one_of,
    within_validity,
};
use super::names::{ISSUER_SECRET, TRUST_ROOTS_CONFIG_MAP, TRUST_ROOTS_KEY};
use super::report::{Category, Check, Problem, fail};
use super::snapshot::Snapshot;
use crate::index::ROOT_NAMESPACE;

const ROTATE_ANCHORS: &str = "rotate the trust anchors: put the new anchor beside the old in \
     ConfigMap weft-identity-trust-roots, then a new issuer signed by it";
const ROTATE_ISSUER: &str = "rotate the issuer: a new certificate and key, \
     signed by a trust anchor, in Secret weft-identity-issuer";

/// The issuer as installed: its certificate and its key.
struct Issuer {
    certificate: Certificate,
    key: KeyPair,
}

pub fn identity(snapshot: &Snapshot, now: OffsetDateTime) -> Category {
    let config = (anchors(snapshot), issuer(snapshot));
    let (anchors, issuer) = match config {
        (Ok(anchors), Ok(issuer)) => (anchors, issuer),
        (anchors, issuer) => {
            // Nothing else can be told without both: Linkerd stops here too.
            let errors: Vec<String> = [anchors.err(), issuer.err()]
                .into_iter()
                .flatten()
                .collect();
            let problem = fail(
                errors.join("\n"),
                "the chart's identity values (identityTrustAnchorsPEM, \
                 identity.issuer.tls.crtPEM/keyPEM) hold PEM",
            );
            return Category::new(
                "weft-identity",
                vec![Check::new("certificate config is valid", Err(problem))],
            );
        }
    };
    let issuer_certificate = std::slice::from_ref(&issuer.certificate);
    let cert = issuer.certificate.parsed();
    let checks = vec![
        Check::new("certificate config is valid", Ok(())),
        Check::new(
            "trust anchors are within their validity period",
            within_validity(&anchors, now, ROTATE_ANCHORS),
        ),
        Check::new(
            "trust anchors are valid for at least 60 days",
            not_expiring_soon(&anchors, now, ROTATE_ANCHORS),
        ),
        Check::new(
            "issuer cert is using supported crypto algorithm",
            algorithm(&issuer),
        ),
        Check::new(
            "issuer cert is within its validity period",
            within_validity(issuer_certificate, now, ROTATE_ISSUER),
        ),
        Check::new(
            "issuer cert is valid for at least 60 days",
            not_expiring_soon(issuer_certificate, now, ROTATE_ISSUER),
        ),
        Check::new(
            "issuer cert is a certificate authority",
            match is_ca(&cert) {
                true => Ok(()),
                false => Err(fail(
                    "the issuer certificate's basicConstraints do not make it a CA",
                    "make the issuer with CA:true (step certificate create --profile intermediate-ca)",
                )),
            },
        ),
        Check::new(
            "issuer key matches the issuer cert",
            match cert.public_key().raw == issuer.key.subject_public_key_info().as_slice() {
                true => Ok(()),
                false => Err(fail(
                    format!("tls.key in Secret {ISSUER_SECRET} is not the key of its tls.crt"),
                    "put the issuer's certificate and its own key in the Secret",
                )),
            },
        ),
        Check::new(
            "issuer cert is issued by the trust anchor",
            match signed_by_one_of(&cert, &anchors) {
                true => Ok(()),
                false => Err(fail(
                    format!(
                        "{} is not signed by any trust anchor (issuer {})",
                        issuer.certificate.what,
                        cert.issuer()
                    ),
                    "sign the issuer with one of the trust anchors, or add its anchor to the bundle",
                )),
            },
        ),
    ];
    Category::new("weft-identity", checks)
}

fn anchors(snapshot: &Snapshot) -> Result<Vec<Certificate>, String> {
    let map = match &snapshot.trust_roots {
        Ok(Some(map)) => map,
        Ok(None) => {
            return Err(format!(
                "ConfigMap {TRUST_ROOTS_CONFIG_MAP} does not exist in {ROOT_NAMESPACE}"
            ));
        }
        Err(why) => {
            return Err(format!(
                "cannot read ConfigMap {TRUST_ROOTS_CONFIG_MAP}: {why}"
            ));
        }
    };
    let bundle = map
        .data
        .as_ref()
        .and_then(|data| data.get(TRUST_ROOTS_KEY))
        .ok_or_else(|| format!("ConfigMap {TRUST_ROOTS_CONFIG_MAP} has no {TRUST_ROOTS_KEY}"))?;
    pem_certificates(bundle.as_bytes(), "trust anchor")
        .map_err(|e| format!("{TRUST_ROOTS_KEY} in ConfigMap {TRUST_ROOTS_CONFIG_MAP}: {e}"))
}

fn issuer(snapshot: &Snapshot) -> Result<Issuer, String> {
    let secret = match &snapshot.issuer {
        Ok(Some(secret)) => secret,
        Ok(None) => {
            return Err(format!(
                "Secret {ISSUER_SECRET} does not exist in {ROOT_NAMESPACE}"
            ));
        }
        Err(why) => return Err(format!("cannot read Secret {ISSUER_SECRET}: {why}")),
    };
    let field = |key: &str| {
        secret
            .data
            .as_ref()
            .and_then(|data| data.get(key))
            .map(|bytes| bytes.0.as_slice())
            .ok_or_else(|| format!("Secret {ISSUER_SECRET} has no {key}"))
    };
    let certificate = pem_certificates(field("tls.crt")?, "issuer")
        .map_err(|e| format!("tls.crt in Secret {ISSUER_SECRET}: {e}"))?
        .swap_remove(0);
    let key = std::str::from_utf8(field("tls.key")?)
        .map_err(|_| format!("tls.key in Secret {ISSUER_SECRET} is not PEM"))?;
    // The controller reads PKCS#8 only (`identity::issuer`).
    if key.contains("BEGIN EC PRIVATE KEY") {
        return Err(format!(
            "tls.key in Secret {ISSUER_SECRET} is SEC1 (EC PRIVATE KEY); give it as PKCS#8: \
             openssl pkcs8 -topk8 -nocrypt -in issuer.key"
        ));
    }
    let key =
        KeyPair::from_pem(key).map_err(|e| format!("tls.key in Secret {ISSUER_SECRET}: {e}"))?;
    Ok(Issuer { certificate, key })
}

/// ECDSA P-256 for both the certificate's key and the Secret's.
fn algorithm(issuer: &Issuer) -> Result<(), Problem> {
    let cert_p256 = is_p256(issuer.certificate.parsed().public_key());
    let key_p256 = issuer.key.algorithm() == &rcgen::PKCS_ECDSA_P256_SHA256;
    if cert_p256 && key_p256 {
        return Ok(());
    }
    Err(fail(
        format!(
            "the issuer's key must be ECDSA P-256; it is {:?}",
            issuer.key.algorithm()
        ),
        "make the issuer with an ECDSA P-256 key (step certificate create --kty EC --crv P-256)",
    ))
}
