//! Envoy to Envoy over mTLS, the peer of Weft's meshed pair: both on the
//! proxy CPU with one worker each, certificates made for the run (ECDSA
//! P-256, as Weft's identity service issues), client certificates
//! required, HTTP/2 between them.

use std::path::Path;

use anyhow::{Context, anyhow};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};

use super::{Peer, path_text, render};
use crate::bench::handshakes::Handshakes;
use crate::bench::measure::Endpoint;
use crate::harness::processes::{Processes, pinned};
use crate::harness::weft::AUTHORITY;
use crate::harness::{PROXY_CPU, free_ports, loopback, wait_for_200};

pub(super) const CLIENT_TEMPLATE: &str = include_str!("../../../../bench/envoy-mtls-client.yaml");
pub(super) const SERVER_TEMPLATE: &str = include_str!("../../../../bench/envoy-mtls-server.yaml");
/// The server Envoy's name in its certificate, which the client checks.
const SERVER_NAME: &str = "server.bench.envoy";
const CLIENT_NAME: &str = "client.bench.envoy";
/// The client Envoy's cluster for the server, whose handshakes it counts.
const SERVER_CLUSTER: &str = "server";

impl Peer<'_> {
    pub(super) fn envoy_pair(&self, processes: &mut Processes) -> anyhow::Result<Endpoint> {
        let envoy = self
            .setup
            .envoy
            .as_ref()
            .map_err(|reason| anyhow!("{reason}"))?;
        let certificates = self.dir.join("certificates");
        write_certificates(&certificates)?;
        let cert_dir = path_text(&certificates)?;
        let [client_port, client_admin, server_port, server_admin] = free_ports()?;
        let server = render(
            SERVER_TEMPLATE,
            &[
                ("admin_port", server_admin.to_string()),
                ("listen_port", server_port.to_string()),
                ("upstream_port", self.app().port().to_string()),
                ("cert_dir", cert_dir.clone()),
            ],
        )?;
        let client = render(
            CLIENT_TEMPLATE,
            &[
                ("admin_port", client_admin.to_string()),
                ("listen_port", client_port.to_string()),
                ("server_port", server_port.to_string()),
                ("server_name", SERVER_NAME.to_string()),
                ("cert_dir", cert_dir),
            ],
        )?;
        let mut pids = Vec::new();
        for (which, (name, config)) in [("envoy-client", client), ("envoy-server", server)]
            .into_iter()
            .enumerate()
        {
            let config_path = self.write(&config, &format!("{name}.yaml"))?;
            let mut command = pinned(PROXY_CPU, envoy);
            command
                .arg("-c")
                .arg(&config_path)
                .args(["--concurrency", "1", "--log-level", "warn"])
                .args(["--base-id", &self.envoy_base_id(which as u64).to_string()]);
            pids.push(self.spawn(processes, "envoy", name, &mut command)?);
        }
        for admin in [client_admin, server_admin].map(loopback) {
            wait_for_200(processes, admin, &admin.to_string(), "/ready")
                .map_err(|e| self.with_logs(e))?;
        }
        let listen = loopback(client_port);
        Ok(Endpoint {
            pids,
            http1: listen,
            http2: listen,
            authority: AUTHORITY.into(),
            handshakes: Some(Handshakes::Envoy {
                admin: loopback(client_admin),
                cluster: SERVER_CLUSTER,
            }),
        })
    }
}

/// A CA and a leaf for each Envoy, signed by it, as PEM files in `dir`:
/// `ca.crt`, `client.crt`/`.key`, `server.crt`/`.key`. Each is named after
/// what it is: BoringSSL takes a leaf whose subject is its issuer's for
/// self-signed, and refuses it.
fn write_certificates(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |name: &str, pem: String| {
        let path = dir.join(name);
        std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))
    };
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name = common_name("weft bench CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    write("ca.crt", ca.self_signed(&ca_key)?.pem())?;
    let issuer = Issuer::new(ca, ca_key);
    for (file, name) in [("client", CLIENT_NAME), ("server", SERVER_NAME)] {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut leaf = CertificateParams::new(vec![name.to_string()])?;
        leaf.distinguished_name = common_name(name);
        let leaf = leaf.signed_by(&key, &issuer)?;
        write(&format!("{file}.crt"), leaf.pem())?;
        write(&format!("{file}.key"), key.serialize_pem())?;
    }
    Ok(())
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}
