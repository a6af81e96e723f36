//! Certificates made with rcgen: the expired, expiring and unchained ones
//! the tests need, and (`make_fixture_certificates`) the long-lived ones
//! the fixtures hold.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use time::OffsetDateTime;

/// A certificate with its key, able to sign others.
pub struct Pki {
    pub cert_pem: String,
    pub key_pem: String,
    signer: rcgen::Issuer<'static, KeyPair>,
}

/// What to make.
pub struct Spec<'a> {
    pub name: &'a str,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// A CA (path length 0 when signed by another); else a serving
    /// certificate for `dns_names`.
    pub ca: bool,
    pub dns_names: &'a [&'a str],
}

pub fn make(spec: &Spec<'_>, signed_by: Option<&Pki>) -> Pki {
    let mut params = CertificateParams::new(
        spec.dns_names
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, spec.name);
    params.not_before = spec.not_before;
    params.not_after = spec.not_after;
    if spec.ca {
        params.is_ca = IsCa::Ca(match signed_by {
            Some(_) => BasicConstraints::Constrained(0),
            None => BasicConstraints::Unconstrained,
        });
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    }
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = match signed_by {
        Some(pki) => params.signed_by(&key, &pki.signer).unwrap(),
        None => params.self_signed(&key).unwrap(),
    };
    let key_pem = key.serialize_pem();
    Pki {
        cert_pem: cert.pem(),
        key_pem,
        signer: rcgen::Issuer::new(params, key),
    }
}

/// A CA valid from a year before `now` to `now + days` (negative: expired).
pub fn ca(name: &str, now: OffsetDateTime, days: i64, signed_by: Option<&Pki>) -> Pki {
    make(
        &Spec {
            name,
            not_before: now - time::Duration::days(365),
            not_after: now + time::Duration::days(days),
            ca: true,
            dns_names: &[],
        },
        signed_by,
    )
}

/// Writes the fixtures' certificates and keys (valid 2026 to 2126) to
/// `$WEFT_FIXTURE_PKI_DIR`; they were made once by this and pasted into
/// `fixtures/*.json`.
#[test]
#[ignore = "makes the fixtures' certificates once"]
fn make_fixture_certificates() {
    let dir = std::path::PathBuf::from(std::env::var("WEFT_FIXTURE_PKI_DIR").unwrap());
    let new_year = |year| {
        time::Date::from_calendar_date(year, time::Month::January, 1)
            .unwrap()
            .midnight()
            .assume_utc()
    };
    let (from, until) = (new_year(2026), new_year(2126));
    let spec = |name, ca, dns_names| Spec {
        name,
        not_before: from,
        not_after: until,
        ca,
        dns_names,
    };
    let anchor = make(&spec("root.weft-system.cluster.local", true, &[]), None);
    let issuer = make(
        &spec("identity.weft-system.cluster.local", true, &[]),
        Some(&anchor),
    );
    let webhook_ca = make(&spec("weft-webhook-ca", true, &[]), None);
    let webhook = make(
        &spec(
            "weft-webhook.weft-system.svc",
            false,
            &[
                "weft-webhook",
                "weft-webhook.weft-system",
                "weft-webhook.weft-system.svc",
            ],
        ),
        Some(&webhook_ca),
    );
    let write = |name: &str, pem: &str| std::fs::write(dir.join(name), pem).unwrap();
    write("anchor.crt", &anchor.cert_pem);
    write("issuer.crt", &issuer.cert_pem);
    write("issuer.key", &issuer.key_pem);
    write("webhook-ca.crt", &webhook_ca.cert_pem);
    write("webhook.crt", &webhook.cert_pem);
    write("webhook.key", &webhook.key_pem);
}
