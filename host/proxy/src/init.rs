//! `weft-proxy init`: the init container's job. Installs the iptables NAT
//! rules that Linkerd's proxy-init installs, so a pod's traffic passes
//! through the proxy without the app knowing:
//!
//! - inbound: every TCP connection arriving at the pod is redirected to the
//!   inbound listener, except ports to ignore (the proxy's admin port);
//! - outbound: every TCP connection the pod opens is redirected to the
//!   outbound listener, except the proxy's own (by UID, so it does not loop),
//!   loopback traffic, and ports to ignore.
//!
//! The proxy then reads each connection's `SO_ORIGINAL_DST`. Running it twice
//! leaves the same rules (the chains are flushed and refilled).

use std::process::Command;

use clap::Args;

use crate::config::{PortSet, parse_ports};

const INBOUND_CHAIN: &str = "WEFT_INBOUND";
const OUTBOUND_CHAIN: &str = "WEFT_OUTBOUND";
/// iptables' multiport match takes at most 15 ports, a range counting two.
const MULTIPORT_RANGES: usize = 7;

#[derive(Debug, Clone, Args)]
pub struct InitConfig {
    /// The UID the proxy runs as; its own connections are not redirected.
    #[arg(long, env = "WEFT_PROXY_UID", default_value_t = 2102)]
    pub proxy_uid: u32,

    /// The port of the proxy's inbound listener.
    #[arg(long, env = "WEFT_PROXY_INIT_INBOUND_PORT", default_value_t = 4143)]
    pub inbound_port: u16,

    /// The port of the proxy's outbound listener.
    #[arg(long, env = "WEFT_PROXY_INIT_OUTBOUND_PORT", default_value_t = 4140)]
    pub outbound_port: u16,

    /// Inbound ports not redirected to the proxy (the admin port by default).
    #[arg(long, env = "WEFT_PROXY_INIT_INBOUND_PORTS_TO_IGNORE", default_value = "4190,4191", value_parser = parse_ports)]
    pub inbound_ports_to_ignore: PortSet,

    /// Outbound ports not redirected to the proxy.
    #[arg(long, env = "WEFT_PROXY_INIT_OUTBOUND_PORTS_TO_IGNORE", default_value = "", value_parser = parse_ports)]
    pub outbound_ports_to_ignore: PortSet,

    /// The iptables program to run.
    #[arg(long, env = "WEFT_PROXY_INIT_IPTABLES", default_value = "iptables")]
    pub iptables: String,

    /// Print the rules instead of installing them.
    #[arg(long)]
    pub simulate: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("could not run `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed: {stderr}")]
    Rule { command: String, stderr: String },
}

/// The rules, in order, as arguments to `iptables -t nat`.
pub fn rules(config: &InitConfig) -> Vec<Vec<String>> {
    let (inbound, outbound) = (INBOUND_CHAIN, OUTBOUND_CHAIN);
    let skip = |chain: &'static str, ports: &PortSet| {
        multiport_lists(ports)
            .into_iter()
            .map(move |list| format!("-A {chain} -p tcp -m multiport --dports {list} -j RETURN"))
    };
    let mut rules: Vec<String> = skip(inbound, &config.inbound_ports_to_ignore).collect();
    rules.push(format!(
        "-A {inbound} -p tcp -j REDIRECT --to-ports {}",
        config.inbound_port
    ));
    rules.push(format!(
        "-A {outbound} -m owner --uid-owner {} -j RETURN",
        config.proxy_uid
    ));
    rules.push(format!("-A {outbound} -o lo -j RETURN"));
    rules.extend(skip(outbound, &config.outbound_ports_to_ignore));
    rules.push(format!(
        "-A {outbound} -p tcp -j REDIRECT --to-ports {}",
        config.outbound_port
    ));
    rules
        .iter()
        .map(|rule| rule.split_whitespace().map(String::from).collect())
        .collect()
}

/// Installs the rules (or prints them with `--simulate`).
pub fn run(config: &InitConfig) -> Result<(), InitError> {
    let iptables = Iptables(&config.iptables);
    if config.simulate {
        for chain in [INBOUND_CHAIN, OUTBOUND_CHAIN] {
            println!("{} -t nat -N {chain}", config.iptables);
        }
        for rule in rules(config) {
            println!("{} -t nat {}", config.iptables, rule.join(" "));
        }
        println!(
            "{} -t nat -A PREROUTING -j {INBOUND_CHAIN}",
            config.iptables
        );
        println!("{} -t nat -A OUTPUT -j {OUTBOUND_CHAIN}", config.iptables);
        return Ok(());
    }
    for chain in [INBOUND_CHAIN, OUTBOUND_CHAIN] {
        if iptables.run(&["-N", chain]).is_err() {
            // The chain exists from an earlier run: refill it.
            iptables.run(&["-F", chain])?;
        }
    }
    for rule in rules(config) {
        let args: Vec<&str> = rule.iter().map(String::as_str).collect();
        iptables.run(&args)?;
    }
    for (hook, chain) in [("PREROUTING", INBOUND_CHAIN), ("OUTPUT", OUTBOUND_CHAIN)] {
        if iptables.run(&["-C", hook, "-j", chain]).is_err() {
            iptables.run(&["-A", hook, "-j", chain])?;
        }
    }
    tracing::info!(
        inbound_port = config.inbound_port,
        outbound_port = config.outbound_port,
        proxy_uid = config.proxy_uid,
        "iptables rules installed"
    );
    Ok(())
}

struct Iptables<'a>(&'a str);

impl Iptables<'_> {
    fn run(&self, args: &[&str]) -> Result<(), InitError> {
        let output = Command::new(self.0)
            .args(["-w", "-t", "nat"])
            .args(args)
            .output()
            .map_err(|source| InitError::Spawn {
                program: self.0.to_string(),
                source,
            })?;
        if output.status.success() {
            return Ok(());
        }
        Err(InitError::Rule {
            command: format!("{} -t nat {}", self.0, args.join(" ")),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

/// `22,80:90` lists of at most `MULTIPORT_RANGES` entries each.
fn multiport_lists(ports: &PortSet) -> Vec<String> {
    ports
        .ranges()
        .chunks(MULTIPORT_RANGES)
        .map(|chunk| {
            chunk
                .iter()
                .map(|&(lo, hi)| {
                    if lo == hi {
                        lo.to_string()
                    } else {
                        format!("{lo}:{hi}")
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        init: InitConfig,
    }

    fn config(args: &[&str]) -> InitConfig {
        Cli::parse_from(std::iter::once("init").chain(args.iter().copied())).init
    }

    #[test]
    fn defaults_match_linkerd_proxy_init() {
        let rules: Vec<String> = rules(&config(&[])).iter().map(|r| r.join(" ")).collect();
        assert_eq!(
            rules,
            [
                "-A WEFT_INBOUND -p tcp -m multiport --dports 4190,4191 -j RETURN",
                "-A WEFT_INBOUND -p tcp -j REDIRECT --to-ports 4143",
                "-A WEFT_OUTBOUND -m owner --uid-owner 2102 -j RETURN",
                "-A WEFT_OUTBOUND -o lo -j RETURN",
                "-A WEFT_OUTBOUND -p tcp -j REDIRECT --to-ports 4140",
            ]
        );
    }

    #[test]
    fn many_ignored_ports_are_split_across_rules() {
        let ports = "1,2,3,4,5,6,7,8,9000-9010";
        let rules = rules(&config(&[
            "--outbound-ports-to-ignore",
            ports,
            "--proxy-uid",
            "7",
        ]));
        let skips: Vec<&String> = rules
            .iter()
            .filter(|r| r[1] == OUTBOUND_CHAIN && r.contains(&"multiport".to_string()))
            .map(|r| &r[7])
            .collect();
        assert_eq!(skips, ["1,2,3,4,5,6,7", "8,9000:9010"]);
        assert!(rules.iter().any(|r| r.join(" ").contains("--uid-owner 7")));
    }
}
