//! What the identity and webhook checks ask of certificates: parsing PEM
//! bundles, validity windows, names and signatures.

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY};
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::report::{Problem, fail, warn};

/// Linkerd's margin: a certificate closer than this to its end is worth a
/// warning, in time to rotate it.
pub const EXPIRY_MARGIN: Duration = Duration::days(60);

/// A certificate's DER, checked to parse.
pub struct Certificate {
    pub der: Vec<u8>,
    /// How messages name it, e.g. `trust anchor CN=root.weft-system.cluster.local`.
    pub what: String,
}

impl Certificate {
    pub fn parsed(&self) -> X509Certificate<'_> {
        X509Certificate::from_der(&self.der)
            .expect("parsed when read")
            .1
    }
}

/// Every `CERTIFICATE` block of a PEM bundle; `role` names them ("trust
/// anchor"). An empty bundle is an error.
pub fn pem_certificates(pem: &[u8], role: &str) -> Result<Vec<Certificate>, String> {
    let mut certificates = Vec::new();
    for block in Pem::iter_from_buffer(pem) {
        let block = block.map_err(|e| format!("not PEM: {e}"))?;
        if block.label != "CERTIFICATE" {
            continue;
        }
        let (_, cert) = X509Certificate::from_der(&block.contents)
            .map_err(|e| format!("a {role} does not parse: {e}"))?;
        let what = format!("{role} {}", cert.subject());
        certificates.push(Certificate {
            der: block.contents,
            what,
        });
    }
    if certificates.is_empty() {
        return Err(format!("no {role} certificate in it"));
    }
    Ok(certificates)
}

pub fn date(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).expect("a certificate's date formats")
}

/// Every certificate is valid at `now`.
pub fn within_validity(
    certificates: &[Certificate],
    now: OffsetDateTime,
    hint: &str,
) -> Result<(), Problem> {
    let mut errors = Vec::new();
    for certificate in certificates {
        let cert = certificate.parsed();
        let validity = cert.validity();
        let (not_before, not_after) = (
            validity.not_before.to_datetime(),
            validity.not_after.to_datetime(),
        );
        if now > not_after {
            errors.push(format!(
                "{} expired on {}",
                certificate.what,
                date(not_after)
            ));
        } else if now < not_before {
            errors.push(format!(
                "{} is not valid before {}",
                certificate.what,
                date(not_before)
            ));
        }
    }
    match errors.is_empty() {
        true => Ok(()),
        false => Err(fail(errors.join("\n"), hint)),
    }
}

/// Every certificate is still valid `EXPIRY_MARGIN` from `now`; a warning
/// otherwise (also for one already expired, which the validity check fails).
pub fn not_expiring_soon(
    certificates: &[Certificate],
    now: OffsetDateTime,
    hint: &str,
) -> Result<(), Problem> {
    let mut errors = Vec::new();
    for certificate in certificates {
        let not_after = certificate.parsed().validity().not_after.to_datetime();
        if not_after < now + EXPIRY_MARGIN {
            errors.push(format!(
                "{} will expire on {}",
                certificate.what,
                date(not_after)
            ));
        }
    }
    match errors.is_empty() {
        true => Ok(()),
        false => Err(warn(errors.join("\n"), hint)),
    }
}

/// Whether a public key is ECDSA on P-256, the only kind Weft's identity
/// signs with.
pub fn is_p256(key: &SubjectPublicKeyInfo<'_>) -> bool {
    let curve = key
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok());
    key.algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY && curve == Some(OID_EC_P256)
}

/// Whether `cert` is signed by the key of one of `signers`.
pub fn signed_by_one_of(cert: &X509Certificate<'_>, signers: &[Certificate]) -> bool {
    signers.iter().any(|signer| {
        let signer = signer.parsed();
        cert.issuer() == signer.subject()
            && cert.verify_signature(Some(signer.public_key())).is_ok()
    })
}

pub fn is_ca(cert: &X509Certificate<'_>) -> bool {
    matches!(cert.basic_constraints(), Ok(Some(constraints)) if constraints.value.ca)
}

/// The DNS names among the certificate's SANs.
pub fn dns_names(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(dns.to_string()),
            _ => None,
        })
        .collect()
}
