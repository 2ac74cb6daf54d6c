//! TLS: certificates are always verified, and `ca_file` adds a private CA beside the built-in
//! roots. A real TLS server on loopback (`openssl s_server`, with a server certificate issued
//! by tests/fixtures/tls/ca.pem for IP 127.0.0.1) stands in for a store behind a company CA.
//! Budget: under 10 s.

mod util;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use util::sandbox::SandboxEnv;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");

/// `openssl s_server` on 127.0.0.1, port 0; killed on drop.
struct TlsServer {
    child: Child,
    port: u16,
}

impl TlsServer {
    fn start() -> TlsServer {
        let mut child = Command::new("openssl")
            .args(["s_server", "-accept", "127.0.0.1:0", "-www", "-cert"])
            .arg(format!("{FIXTURES}/server.pem"))
            .arg("-key")
            .arg(format!("{FIXTURES}/server.key"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl (Debian's openssl package) runs the test's TLS server");
        let stdout = child.stdout.take().unwrap();
        let mut port = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(addr) = line.strip_prefix("ACCEPT ") {
                port = addr.rsplit(':').next().and_then(|p| p.parse().ok());
                break;
            }
        }
        TlsServer {
            child,
            port: port.expect("openssl s_server printed no ACCEPT line"),
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sandbox's config with Magento moved to the TLS server (and `ca_line` added).
fn point_magento_at(env: &SandboxEnv, server: &TlsServer, ca_line: &str) {
    let path = env.dir.join("connector.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find("[magento]").expect("a [magento] section");
    let (head, tail) = text.split_at(start);
    let url_line = tail
        .lines()
        .find(|l| l.starts_with("url = "))
        .expect("magento.url");
    let tail = tail.replacen(
        url_line,
        &format!("url = \"https://127.0.0.1:{}\"{ca_line}", server.port),
        1,
    );
    std::fs::write(&path, format!("{head}{tail}")).unwrap();
}

#[test]
fn an_unknown_issuer_is_refused_and_ca_file_trusts_a_private_ca() {
    let server = TlsServer::start();
    let env = SandboxEnv::start();
    env.connector(&["init", "--yes"]).expect_exit(0);

    // No ca_file: the handshake fails on the certificate, named as such.
    point_magento_at(&env, &server, "");
    let refused = env.connector(&["doctor"]).expect_exit(1);
    refused.stdout_has("UnknownIssuer");
    // Named as a trust problem with what to do, and not retried: a retry cannot succeed.
    refused.stdout_has("set ca_file");
    assert!(
        !refused.stdout().contains("still failing after"),
        "a refused certificate was retried\n{}",
        refused.report()
    );

    // With the CA: the handshake passes; what fails now is the reply (s_server is no store).
    env.edit_config(
        &format!("url = \"https://127.0.0.1:{}\"", server.port),
        &format!(
            "url = \"https://127.0.0.1:{}\"\nca_file = \"{FIXTURES}/ca.pem\"",
            server.port
        ),
    );
    let trusted = env.connector(&["doctor"]).expect_exit(1);
    assert!(
        !trusted.stdout().contains("certificate") && !trusted.stdout().contains("UnknownIssuer"),
        "the private CA was not trusted\n{}",
        trusted.report()
    );
    trusted.stdout_has("not JSON");
}

#[test]
fn a_missing_or_non_pem_ca_file_is_one_line_exit_2() {
    let env = SandboxEnv::start();
    env.edit_config("[magento]\n", "[magento]\nca_file = \"no-such-ca.pem\"\n");
    env.connector(&["status"])
        .expect_exit(2)
        .one_line_error()
        .stderr_has("`magento.ca_file`: cannot read");

    std::fs::write(env.dir.join("not-a-ca.pem"), "just text\n").unwrap();
    env.edit_config("no-such-ca.pem", "not-a-ca.pem");
    env.connector(&["status"])
        .expect_exit(2)
        .one_line_error()
        .stderr_has("holds no PEM certificate");
}
