//! What `weft install` generates when it is not given: the identity trust
//! anchor and issuer, and the injector's serving certificate with its CA.
//! ECDSA P-256 throughout, as the proxies' own keys.

use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use weft_identity::TrustDomain;

/// Linkerd's documented lifetimes: the anchor outlives many issuers.
const ANCHOR_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
const ISSUER_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// The trust anchor (only its certificate: its key is dropped, so no new
/// issuer can be signed by it without the operator's own anchor) and the
/// issuer it signed.
pub struct IdentityPems {
    pub trust_anchors: String,
    pub issuer_certificate: String,
    pub issuer_key: String,
}

/// The injector's serving certificate and the CA the API server trusts it by.
pub struct WebhookPems {
    pub certificate: String,
    pub key: String,
    pub ca_bundle: String,
}

pub fn identity(trust: &TrustDomain) -> Result<IdentityPems, rcgen::Error> {
    let now = SystemTime::now();
    let anchor_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let anchor_params = authority(
        format!("root.{}", trust.domain()),
        BasicConstraints::Unconstrained,
        now,
        ANCHOR_LIFETIME,
    );
    let anchor = anchor_params.self_signed(&anchor_key)?;
    let issuer_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let issuer = authority(
        format!("identity.{}", trust.suffix()),
        BasicConstraints::Constrained(0),
        now,
        ISSUER_LIFETIME,
    )
    .signed_by(&issuer_key, &rcgen::Issuer::new(anchor_params, anchor_key))?;
    Ok(IdentityPems {
        trust_anchors: anchor.pem(),
        issuer_certificate: issuer.pem(),
        issuer_key: issuer_key.serialize_pem(),
    })
}

/// A serving certificate for `host` (the webhook Service's name), valid a
/// year, signed by a CA made for it alone.
pub fn webhook(host: &str) -> Result<WebhookPems, rcgen::Error> {
    let now = SystemTime::now();
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let ca_params = authority(
        "weft-webhook-ca".into(),
        BasicConstraints::Constrained(0),
        now,
        ANCHOR_LIFETIME,
    );
    let ca = ca_params.self_signed(&ca_key)?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, host);
    params.subject_alt_names = vec![SanType::DnsName(host.try_into()?)];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = (now - Duration::from_secs(60)).into();
    params.not_after = (now + ISSUER_LIFETIME).into();
    let certificate = params.signed_by(&key, &rcgen::Issuer::new(ca_params, ca_key))?;
    Ok(WebhookPems {
        certificate: certificate.pem(),
        key: key.serialize_pem(),
        ca_bundle: ca.pem(),
    })
}

fn authority(
    name: String,
    constraints: BasicConstraints,
    now: SystemTime,
    lifetime: Duration,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(constraints);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    // A minute back, for clocks that lag ours.
    params.not_before = (now - Duration::from_secs(60)).into();
    params.not_after = (now + lifetime).into();
    params
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Issuer, Lifetimes};

    const DAY: Duration = Duration::from_secs(24 * 3600);

    #[test]
    fn the_generated_issuer_is_chained_to_the_anchor_and_loads() {
        let trust = TrustDomain::default();
        let pems = identity(&trust).unwrap();
        let issuer = Issuer::from_pem(
            trust,
            &pems.trust_anchors,
            &pems.issuer_certificate,
            &pems.issuer_key,
            Lifetimes::default(),
            SystemTime::now(),
        )
        .unwrap();
        let left = issuer
            .not_after()
            .duration_since(SystemTime::now())
            .unwrap();
        assert!(left > 364 * DAY && left <= 365 * DAY, "{left:?}");
    }

    #[test]
    fn the_webhook_certificate_names_the_service() {
        let pems = webhook("weft-webhook.weft-system.svc").unwrap();
        let der = pem_der(&pems.certificate);
        let (_, certificate) = x509_parser::parse_x509_certificate(&der).unwrap();
        let sans = certificate.subject_alternative_name().unwrap().unwrap();
        assert_eq!(
            format!("{:?}", sans.value.general_names),
            r#"[DNSName("weft-webhook.weft-system.svc")]"#
        );
        let ca = pem_der(&pems.ca_bundle);
        let (_, ca) = x509_parser::parse_x509_certificate(&ca).unwrap();
        assert!(certificate.verify_signature(Some(ca.public_key())).is_ok());
    }

    fn pem_der(pem: &str) -> Vec<u8> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }
}
