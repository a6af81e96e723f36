//! `weft-webhooks-and-apisvc-tls`: the proxy injector's serving
//! certificate, and whether the API server will trust it.

use time::OffsetDateTime;

use super::certificates::{
    Certificate, dns_names, not_expiring_soon, pem_certificates, signed_by_one_of, within_validity,
};
use super::names::{WEBHOOK_CONFIGURATION, WEBHOOK_DNS_NAME, WEBHOOK_SECRET};
use super::report::{Category, Check, Problem, fail};
use super::snapshot::Snapshot;
use crate::index::ROOT_NAMESPACE;

const RENEW: &str = "renew the webhook's certificate: helm upgrade renders a new one";

pub fn webhook(snapshot: &Snapshot, now: OffsetDateTime) -> Category {
    let mut checks = Vec::new();
    let certificate = certificate(snapshot);
    let valid = certificate.as_ref().map_err(Clone::clone).and_then(|cert| {
        within_validity(std::slice::from_ref(cert), now, RENEW)?;
        let names = dns_names(&cert.parsed());
        if names.iter().any(|name| name == WEBHOOK_DNS_NAME) {
            Ok(())
        } else {
            Err(fail(
                format!(
                    "{} has no DNS name {WEBHOOK_DNS_NAME} (it has {names:?})",
                    cert.what
                ),
                RENEW,
            ))
        }
    });
    checks.push(Check::new("proxy-injector webhook has valid cert", valid));
    if let Ok(cert) = &certificate {
        checks.push(Check::new(
            "proxy-injector cert is valid for at least 60 days",
            not_expiring_soon(std::slice::from_ref(cert), now, RENEW),
        ));
    }
    checks.push(Check::new(
        "proxy-injector webhook is registered",
        match &snapshot.webhook {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(fail(
                format!("no MutatingWebhookConfiguration {WEBHOOK_CONFIGURATION}"),
                "install the control plane: weft install | kubectl apply -f -",
            )),
            Err(why) => Err(fail(
                format!("cannot read MutatingWebhookConfiguration {WEBHOOK_CONFIGURATION}: {why}"),
                "",
            )),
        },
    ));
    if let (Ok(cert), Ok(Some(_))) = (&certificate, &snapshot.webhook) {
        checks.push(Check::new(
            "proxy-injector caBundle verifies the webhook cert",
            ca_bundle_verifies(snapshot, cert),
        ));
    }
    Category::new("weft-webhooks-and-apisvc-tls", checks)
}

fn certificate(snapshot: &Snapshot) -> Result<Certificate, Problem> {
    let secret = match &snapshot.webhook_tls {
        Ok(Some(secret)) => secret,
        Ok(None) => {
            return Err(fail(
                format!("Secret {WEBHOOK_SECRET} does not exist in {ROOT_NAMESPACE}"),
                "install the control plane: weft install | kubectl apply -f -",
            ));
        }
        Err(why) => {
            return Err(fail(
                format!("cannot read Secret {WEBHOOK_SECRET}: {why}"),
                "",
            ));
        }
    };
    let pem = secret
        .data
        .as_ref()
        .and_then(|data| data.get("tls.crt"))
        .ok_or_else(|| fail(format!("Secret {WEBHOOK_SECRET} has no tls.crt"), RENEW))?;
    let mut certificates = pem_certificates(&pem.0, "webhook certificate")
        .map_err(|e| fail(format!("tls.crt in Secret {WEBHOOK_SECRET}: {e}"), RENEW))?;
    Ok(certificates.swap_remove(0))
}

/// Every webhook of the configuration carries a caBundle that signed the
/// serving certificate (or holds it, when it is self-signed).
fn ca_bundle_verifies(snapshot: &Snapshot, cert: &Certificate) -> Result<(), Problem> {
    let Ok(Some(configuration)) = &snapshot.webhook else {
        unreachable!("checked only when the configuration was read")
    };
    let hint = "the caBundle must be the CA that signed Secret weft-webhook-tls: \
                render both in one helm upgrade";
    let webhooks = configuration.webhooks.as_deref().unwrap_or_default();
    if webhooks.is_empty() {
        return Err(fail(
            format!("MutatingWebhookConfiguration {WEBHOOK_CONFIGURATION} has no webhooks"),
            hint,
        ));
    }
    let serving = cert.parsed();
    let mut errors = Vec::new();
    for webhook in webhooks {
        let verdict = match &webhook.client_config.ca_bundle {
            None => Err("has no caBundle".to_string()),
            Some(bundle) => pem_certificates(&bundle.0, "webhook CA").and_then(|cas| {
                match signed_by_one_of(&serving, &cas) {
                    true => Ok(()),
                    false => Err(format!("has a caBundle that did not sign {}", cert.what)),
                }
            }),
        };
        if let Err(e) = verdict {
            errors.push(format!("webhook {} {e}", webhook.name));
        }
    }
    match errors.is_empty() {
        true => Ok(()),
        false => Err(fail(errors.join("\n"), hint)),
    }
}
