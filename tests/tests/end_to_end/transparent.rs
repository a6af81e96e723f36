//! Transparent mode end to end, in network namespaces made for the test:
//! two "pods" joined by a veth pair, each with `weft-proxy init`'s iptables
//! rules and a proxy running as its own UID. An unmodified client (curl)
//! in one pod reaches a server in the other through both proxies.
//!
//! Needs root, `ip` and `iptables`; CI has them (`cargo xtask test`
//! installs them). Elsewhere the test says loudly why it did not run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use weft_tests::{Metrics, Proxy, binaries};

const PROXY_UID: &str = "2102";
const CLIENT_IP: &str = "10.213.0.1";
const SERVER_IP: &str = "10.213.0.2";

/// A namespace and its veth end, removed on drop.
struct Pod {
    ns: String,
}

impl Pod {
    fn exec(&self, args: &[&str]) -> Output {
        let output = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(args)
            .output()
            .expect("running ip netns exec");
        assert!(
            output.status.success(),
            "`{}` in {} failed: {}",
            args.join(" "),
            self.ns,
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn stdout(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.exec(args).stdout).into_owned()
    }

    fn metrics(&self) -> Metrics {
        Metrics::parse(&self.stdout(&["curl", "-sf", "http://127.0.0.1:4191/metrics"]))
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.ns])
            .status();
    }
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("running ip");
    assert!(status.success(), "ip {} failed", args.join(" "));
}

/// Two namespaces joined by a veth pair, with addresses and loopback up.
fn pods() -> (Pod, Pod) {
    let id = std::process::id();
    let client = Pod {
        ns: format!("weft-client-{id}"),
    };
    let server = Pod {
        ns: format!("weft-server-{id}"),
    };
    let (c_if, s_if) = (format!("wc{id}"), format!("ws{id}"));
    ip(&["netns", "add", &client.ns]);
    ip(&["netns", "add", &server.ns]);
    ip(&["link", "add", &c_if, "type", "veth", "peer", "name", &s_if]);
    for (pod, iface, addr) in [(&client, &c_if, CLIENT_IP), (&server, &s_if, SERVER_IP)] {
        ip(&["link", "set", iface, "netns", &pod.ns]);
        pod.exec(&["ip", "addr", "add", &format!("{addr}/24"), "dev", iface]);
        pod.exec(&["ip", "link", "set", iface, "up"]);
        pod.exec(&["ip", "link", "set", "lo", "up"]);
    }
    (client, server)
}

/// Why this machine cannot run the test, if it cannot.
fn missing_prerequisite() -> Option<String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some("it must run as root".into());
    }
    for tool in ["ip", "iptables", "curl", "setpriv", "python3"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!(
                "`{tool}` is not installed (cargo xtask test installs it)"
            ));
        }
    }
    None
}

/// The proxy binary where the unprivileged proxy UID can run it.
fn shared_binary(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::copy(binaries::path(name), &path).unwrap();
    path
}

#[tokio::test]
async fn an_unmodified_client_reaches_a_server_through_both_proxies() {
    if let Some(why) = missing_prerequisite() {
        let message = format!("the transparent-mode test cannot run: {why}");
        assert!(std::env::var_os("CI").is_none(), "{message}");
        eprintln!("\n!!! SKIPPED: {message} !!!\n");
        return;
    }
    let dir = std::env::temp_dir().join(format!("weft-netns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let proxy_bin = shared_binary(&dir, "weft-proxy");
    let demo_bin = shared_binary(&dir, "weft-demo");
    let (proxy_bin, demo_bin) = (proxy_bin.to_str().unwrap(), demo_bin.to_str().unwrap());
    let (client, server) = pods();

    // The server pod: an HTTP app on :8080 and a TCP echo on :9000.
    let mut apps = Vec::new();
    for args in [
        ["http", "--listen", "0.0.0.0:8080"],
        ["tcp-echo", "--listen", "0.0.0.0:9000"],
    ] {
        let mut app = tokio::process::Command::new("ip")
            .args(["netns", "exec", &server.ns, demo_bin])
            .args(args)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = app.stdout.take().unwrap();
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
        let line = lines.next_line().await.unwrap().unwrap();
        assert!(line.starts_with("listening on"), "{line}");
        apps.push(app);
    }

    // Each pod: the init container's rules, then the proxy as its own UID.
    let mut proxies = Vec::new();
    for pod in [&client, &server] {
        pod.exec(&[proxy_bin, "init", "--proxy-uid", PROXY_UID]);
        let rules = pod.stdout(&["iptables", "-t", "nat", "-S"]);
        assert!(rules.contains("-j REDIRECT --to-ports 4143"), "{rules}");
        assert!(rules.contains("--uid-owner 2102 -j RETURN"), "{rules}");
        let setpriv = format!("--reuid={PROXY_UID}");
        let regid = format!("--regid={PROXY_UID}");
        let wrapper = [
            "ip",
            "netns",
            "exec",
            &pod.ns,
            "setpriv",
            &setpriv,
            &regid,
            "--clear-groups",
            proxy_bin,
        ];
        let proxy = Proxy::new()
            .env("WEFT_PROXY_INBOUND_LISTEN_ADDR", "0.0.0.0:4143")
            .env("WEFT_PROXY_OUTBOUND_LISTEN_ADDR", "127.0.0.1:4140")
            .env("WEFT_PROXY_ADMIN_LISTEN_ADDR", "0.0.0.0:4191")
            .wrapped(&wrapper)
            .spawn()
            .await;
        proxies.push(proxy);
    }

    // HTTP: plain curl, no proxy settings.
    let url = format!("http://{SERVER_IP}:8080/");
    let body = client.stdout(&["curl", "-sf", "--max-time", "10", &url]);
    assert_eq!(body, "hello from demo\n");

    // Opaque TCP, with a half-close, from a client that knows nothing of Weft.
    let echo = client.stdout(&[
        "python3",
        "-c",
        &format!(
            "import socket; s = socket.create_connection(('{SERVER_IP}', 9000), timeout=10); \
             s.sendall(b'\\x00opaque bytes'); s.shutdown(socket.SHUT_WR); \
             print(b''.join(iter(lambda: s.recv(4096), b'')))"
        ),
    ]);
    assert_eq!(echo.trim(), r"b'\x00opaque bytes'");

    // An upstream that never answers a SYN (dropped before the server pod's
    // NAT) is a connect timeout: 504 from the client's proxy.
    server.exec(&[
        "iptables",
        "-t",
        "raw",
        "-A",
        "PREROUTING",
        "-p",
        "tcp",
        "--dport",
        "9999",
        "-j",
        "DROP",
    ]);
    let blackhole = format!("http://{SERVER_IP}:9999/");
    let status = client.stdout(&[
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %header{x-weft-proxy-error}",
        "--max-time",
        "10",
        &blackhole,
    ]);
    assert_eq!(status, "504 upstream connect timeout");

    // Both proxies saw both connections, addressed to where the client meant.
    let http_target = format!("{SERVER_IP}:8080");
    let tcp_target = format!("{SERVER_IP}:9000");
    let (client_metrics, server_metrics) = (client.metrics(), server.metrics());
    for target in [&http_target, &tcp_target] {
        let outbound = [
            ("direction", "outbound"),
            ("peer", "src"),
            ("target_addr", target.as_str()),
        ];
        let inbound = [
            ("direction", "inbound"),
            ("peer", "src"),
            ("target_addr", target.as_str()),
        ];
        assert_eq!(
            client_metrics.sum("tcp_open_total", &outbound),
            1.0,
            "{}",
            client_metrics.text
        );
        assert_eq!(
            server_metrics.sum("tcp_open_total", &inbound),
            1.0,
            "{}",
            server_metrics.text
        );
    }
    drop(proxies);
    drop(apps);
    let _ = std::fs::remove_dir_all(&dir);
}
