//! The issuer: signs leaf certificates for proven service accounts, never
//! past its own expiry, with a clock-skew allowance at the start.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    PKCS_ECDSA_P384_SHA384, PublicKeyData, SanType,
};
use rustls::pki_types::{CertificateDer, CertificateSigningRequestDer};
use rustls::sign::CertifiedKey;
use weft_identity::{
    CertificateRequest, NameError, ServiceAccount, SignedCertificate, TrustAnchors, TrustDomain,
    TrustError,
};

/// How long what the issuer signs lives.
#[derive(Clone, Copy, Debug)]
pub struct Lifetimes {
    /// A leaf's lifetime (Linkerd: 24 h).
    pub leaf: Duration,
    /// How far before now a leaf starts, for peers whose clocks lag (20 s).
    pub clock_skew: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            leaf: Duration::from_secs(24 * 3600),
            clock_skew: Duration::from_secs(20),
        }
    }
}

/// Where the anchors and the issuer live on disk: Linkerd's three PEM
/// files (`ca.crt`, `tls.crt`, `tls.key` in a mounted Secret).
#[derive(Clone, Debug)]
pub struct IssuerFiles {
    pub trust_anchors: PathBuf,
    pub certificate: PathBuf,
    pub key: PathBuf,
}

pub struct Issuer {
    trust: TrustDomain,
    anchors: TrustAnchors,
    certificate: CertificateDer<'static>,
    signer: rcgen::Issuer<'static, KeyPair>,
    not_after: SystemTime,
    lifetimes: Lifetimes,
}

#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("trust anchors: {0}")]
    Anchors(#[from] TrustError),
    #[error("trust anchors cannot be used for TLS: {0}")]
    Tls(#[from] weft_identity::TlsError),
    #[error("the issuer certificate cannot be used: {0}")]
    Certificate(String),
    #[error("the issuer key cannot be used: {0}")]
    Key(rcgen::Error),
    #[error(
        "the issuer key is SEC1 (`EC PRIVATE KEY`); give it as PKCS#8: \
         `openssl pkcs8 -topk8 -nocrypt -in issuer.key -out issuer-pkcs8.key`"
    )]
    Sec1Key,
    #[error("the issuer certificate is not signed by any of the trust anchors")]
    NotChained,
    #[error("the issuer certificate expired at {0}")]
    Expired(String),
    #[error("cannot generate the local trust anchor and issuer: {0}")]
    Generate(rcgen::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum CertifyError {
    #[error("{0}")]
    Name(#[from] NameError),
    #[error("the token proves {proven}, but the CSR asks for {requested}")]
    NotYours {
        requested: String,
        proven: ServiceAccount,
    },
    #[error("the CSR cannot be read or its signature is wrong: {0}")]
    BadCsr(rcgen::Error),
    #[error("the CSR's key is not ECDSA (P-256 or P-384)")]
    NotEcdsa,
    #[error("the CSR must name exactly one DNS SAN, {wanted}; it names {found:?}")]
    WrongSans { wanted: String, found: Vec<String> },
    #[error("the issuer has expired; no certificate can be signed")]
    IssuerExpired,
    #[error("signing failed: {0}")]
    Sign(rcgen::Error),
    #[error("the controller's own certificate: {0}")]
    Own(String),
}

impl Issuer {
    pub fn from_pem(
        trust: TrustDomain,
        anchors_pem: &str,
        certificate_pem: &str,
        key_pem: &str,
        lifetimes: Lifetimes,
        now: SystemTime,
    ) -> Result<Self, IssuerError> {
        let anchors = TrustAnchors::from_pem(anchors_pem.as_bytes())?;
        let certificate = pem_certificate(certificate_pem)?;
        if key_pem.contains("BEGIN EC PRIVATE KEY") {
            return Err(IssuerError::Sec1Key);
        }
        let key = KeyPair::from_pem(key_pem).map_err(IssuerError::Key)?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&certificate)
            .map_err(|e| IssuerError::Certificate(e.to_string()))?;
        if !parsed.is_ca() {
            return Err(IssuerError::Certificate(
                "it is not a CA (basicConstraints)".into(),
            ));
        }
        if parsed.public_key().raw != key.subject_public_key_info().as_slice() {
            return Err(IssuerError::Certificate(
                "it does not match the issuer key".into(),
            ));
        }
        let chained = anchors.certificates().iter().any(|anchor| {
            x509_parser::parse_x509_certificate(anchor)
                .is_ok_and(|(_, anchor)| parsed.verify_signature(Some(anchor.public_key())).is_ok())
        });
        if !chained {
            return Err(IssuerError::NotChained);
        }
        let not_after = unix(parsed.validity().not_after.timestamp());
        if not_after <= now {
            return Err(IssuerError::Expired(
                parsed.validity().not_after.to_string(),
            ));
        }
        let signer = rcgen::Issuer::from_ca_cert_der(&certificate, key)
            .map_err(|e| IssuerError::Certificate(e.to_string()))?;
        Ok(Self {
            trust,
            anchors,
            certificate,
            signer,
            not_after,
            lifetimes,
        })
    }

    pub fn load(
        trust: TrustDomain,
        files: &IssuerFiles,
        lifetimes: Lifetimes,
    ) -> Result<Self, IssuerError> {
        Self::from_pem(
            trust,
            &read(&files.trust_anchors)?,
            &read(&files.certificate)?,
            &read(&files.key)?,
            lifetimes,
            SystemTime::now(),
        )
    }

    /// The local mesh's default: a self-signed anchor and an issuer signed
    /// by it, each valid 365 days, written once to `dir` (the key 0600) and
    /// read from there on later starts. The anchor's key is not kept.
    pub fn local(
        trust: TrustDomain,
        dir: &Path,
        lifetimes: Lifetimes,
    ) -> Result<(Self, IssuerFiles), IssuerError> {
        let files = IssuerFiles {
            trust_anchors: dir.join("ca.crt"),
            certificate: dir.join("issuer.crt"),
            key: dir.join("issuer.key"),
        };
        if !files.key.exists() {
            let (anchor, certificate, key) = generate(&trust, SystemTime::now())?;
            std::fs::create_dir_all(dir).map_err(|source| IssuerError::Write {
                path: dir.to_path_buf(),
                source,
            })?;
            write(&files.trust_anchors, &anchor, 0o644)?;
            write(&files.certificate, &certificate, 0o644)?;
            write(&files.key, &key, 0o600)?;
        }
        let issuer = Self::load(trust, &files, lifetimes)?;
        Ok((issuer, files))
    }

    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust
    }

    pub fn anchors(&self) -> &TrustAnchors {
        &self.anchors
    }

    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// Signs `csr_der` for `requested`, which must be the identity of the
    /// service account the caller proved.
    pub fn certify(
        &self,
        requested: &str,
        proven: &ServiceAccount,
        csr_der: &[u8],
        now: SystemTime,
    ) -> Result<SignedCertificate, CertifyError> {
        let account = self.trust.service_account(requested)?;
        if &account != proven {
            return Err(CertifyError::NotYours {
                requested: requested.to_string(),
                proven: proven.clone(),
            });
        }
        let csr =
            CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(csr_der))
                .map_err(CertifyError::BadCsr)?;
        let alg = csr.public_key.algorithm();
        if alg != &PKCS_ECDSA_P256_SHA256 && alg != &PKCS_ECDSA_P384_SHA384 {
            return Err(CertifyError::NotEcdsa);
        }
        let sans: Vec<String> = csr
            .params
            .subject_alt_names
            .iter()
            .map(|san| match san {
                SanType::DnsName(name) => name.as_str().to_string(),
                other => format!("{other:?}"),
            })
            .collect();
        if sans != [requested] {
            return Err(CertifyError::WrongSans {
                wanted: requested.to_string(),
                found: sans,
            });
        }
        let params = self.leaf_params(&account, now)?;
        let leaf = params
            .signed_by(&csr.public_key, &self.signer)
            .map_err(CertifyError::Sign)?;
        Ok(SignedCertificate {
            leaf: leaf.der().to_vec(),
            intermediates: self.intermediates(),
            valid_until: time_to_system(params.not_after),
        })
    }

    /// The controller's own credentials, signed directly (its key never
    /// leaves the process).
    pub fn certify_self(
        &self,
        account: &ServiceAccount,
        now: SystemTime,
    ) -> Result<(Arc<CertifiedKey>, SystemTime), CertifyError> {
        let name = self.trust.identity(account);
        let request =
            CertificateRequest::generate(&name).map_err(|e| CertifyError::Own(e.to_string()))?;
        let signed = self.certify(&name, account, request.csr_der(), now)?;
        let certified = request
            .certified(&signed, &self.anchors)
            .map_err(|e| CertifyError::Own(e.to_string()))?;
        Ok((certified, signed.valid_until))
    }

    fn leaf_params(
        &self,
        account: &ServiceAccount,
        now: SystemTime,
    ) -> Result<CertificateParams, CertifyError> {
        if now >= self.not_after {
            return Err(CertifyError::IssuerExpired);
        }
        let name = self.trust.identity(account);
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, name.clone());
        params.subject_alt_names = vec![
            SanType::DnsName(name.try_into().map_err(CertifyError::Sign)?),
            SanType::URI(
                self.trust
                    .spiffe_id(account)
                    .try_into()
                    .map_err(CertifyError::Sign)?,
            ),
        ];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.not_before = system_to_time(now - self.lifetimes.clock_skew);
        params.not_after = system_to_time((now + self.lifetimes.leaf).min(self.not_after));
        Ok(params)
    }

    /// The issuer's certificate, unless it is itself an anchor.
    fn intermediates(&self) -> Vec<Vec<u8>> {
        if self.anchors.certificates().contains(&self.certificate) {
            Vec::new()
        } else {
            vec![self.certificate.to_vec()]
        }
    }
}

/// A fresh anchor and issuer, as PEM: (anchor certificate, issuer
/// certificate, issuer key).
fn generate(trust: &TrustDomain, now: SystemTime) -> Result<(String, String, String), IssuerError> {
    let year = Duration::from_secs(365 * 24 * 3600);
    let ca = |name: String, path_len: Option<u8>| {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(match path_len {
            Some(len) => BasicConstraints::Constrained(len),
            None => BasicConstraints::Unconstrained,
        });
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = system_to_time(now - Duration::from_secs(60));
        params.not_after = system_to_time(now + year);
        params
    };
    let anchor_key =
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(IssuerError::Generate)?;
    let anchor_params = ca(format!("root.{}", trust.domain()), None);
    let anchor = anchor_params
        .self_signed(&anchor_key)
        .map_err(IssuerError::Generate)?;
    let issuer_key =
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(IssuerError::Generate)?;
    let issuer_params = ca(format!("identity.{}", trust.suffix()), Some(0));
    let signer = rcgen::Issuer::new(anchor_params, anchor_key);
    let issuer = issuer_params
        .signed_by(&issuer_key, &signer)
        .map_err(IssuerError::Generate)?;
    Ok((anchor.pem(), issuer.pem(), issuer_key.serialize_pem()))
}

fn pem_certificate(pem: &str) -> Result<CertificateDer<'static>, IssuerError> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| IssuerError::Certificate(format!("not a PEM certificate: {e}")))
}

fn read(path: &Path) -> Result<String, IssuerError> {
    std::fs::read_to_string(path).map_err(|source| IssuerError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn write(path: &Path, contents: &str, mode: u32) -> Result<(), IssuerError> {
    super::create_new(path, contents.as_bytes(), mode).map_err(|source| IssuerError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn unix(seconds: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds.max(0) as u64)
}

fn system_to_time(at: SystemTime) -> time::OffsetDateTime {
    let seconds = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    time::OffsetDateTime::from_unix_timestamp(seconds as i64).expect("a time after 1970")
}

fn time_to_system(at: time::OffsetDateTime) -> SystemTime {
    unix(at.unix_timestamp())
}

#[cfg(test)]
mod tests;
