//! Authorities as proxies send them, parsed.

use super::*;

fn parse(text: &str) -> Result<Authority, AuthorityError> {
    Authority::parse(text, &ClusterDomain::default())
}

#[test]
fn a_service_s_dns_name_names_it() {
    let web = Authority::Service {
        service: ServiceRef::new("shop", "web"),
        port: 8080,
    };
    assert_eq!(parse("web.shop.svc.cluster.local:8080"), Ok(web.clone()));
    assert_eq!(parse("web.shop.svc.cluster.local.:8080"), Ok(web.clone()));
    assert_eq!(parse("WEB.shop.svc.Cluster.Local:8080"), Ok(web));
    assert_eq!(
        parse("web.shop.svc.cluster.local"),
        Ok(Authority::Service {
            service: ServiceRef::new("shop", "web"),
            port: DEFAULT_PORT,
        })
    );
}

#[test]
fn ips_are_parsed_with_or_without_a_port() {
    let ip = |text: &str| Ok(Authority::Ip(text.parse().unwrap()));
    assert_eq!(parse("10.96.0.10:53"), ip("10.96.0.10:53"));
    assert_eq!(parse("10.96.0.10"), ip("10.96.0.10:80"));
    assert_eq!(parse("[fd00:10:96::a]:443"), ip("[fd00:10:96::a]:443"));
    assert_eq!(parse("[fd00:10:96::a]"), ip("[fd00:10:96::a]:80"));
    assert_eq!(parse("fd00:10:96::a"), ip("[fd00:10:96::a]:80"));
}

#[test]
fn other_names_are_other_hosts() {
    assert_eq!(
        parse("api.example.com:443"),
        Ok(Authority::Other {
            host: "api.example.com".into(),
            port: 443
        })
    );
    // A pod's or a namespace's name alone is not a Service's DNS name.
    for text in [
        "web:80",
        "web.shop",
        "shop.svc.cluster.local",
        "a.b.c.svc.cluster.local",
    ] {
        assert!(
            matches!(parse(text), Ok(Authority::Other { .. })),
            "{text}: {:?}",
            parse(text)
        );
    }
}

#[test]
fn what_is_no_authority_is_refused_saying_why() {
    for (text, reason) in [
        ("", "it is empty"),
        (
            "web.shop.svc.cluster.local:http",
            "the port is not a number",
        ),
        ("web:0", "the port is not a number"),
        ("web:+80", "the port is not a number"),
        ("web:65536", "the port is not a number"),
        ("web:80:81", "the port is not a number"),
        ("web shop:80", "the host is not a DNS name"),
        ("-web:80", "the host is not a DNS name"),
        ("web..shop:80", "the host is not a DNS name"),
        ("http://web:80", "the port is not a number"),
        ("[fd00::1:80", "an unclosed ["),
        ("[web]:80", "between brackets must be an IPv6 address"),
        ("[fd00::1]80", "text after ]"),
    ] {
        let error = parse(text).expect_err(text);
        assert!(error.reason.starts_with(reason), "{text}: {error}");
        assert_eq!(error.authority, text);
    }
}

#[test]
fn the_cluster_domain_is_a_dns_name() {
    let domain: ClusterDomain = "Corp.Example.".parse().unwrap();
    assert_eq!(domain.to_string(), "corp.example");
    assert_eq!(ClusterDomain::default().to_string(), "cluster.local");
    assert!("".parse::<ClusterDomain>().is_err());
    assert!("cluster..local".parse::<ClusterDomain>().is_err());
}
