//! Certificates for the TLS tests, made at run time by the `openssl` command (Debian
//! package `openssl`) in a folder the test names: a test CA, a broker certificate it
//! signed for `localhost` and `127.0.0.1`, a client certificate it signed, and a
//! second CA that signed nothing here (the "wrong CA").
//!
//! The `openssl` command rather than the `rcgen` crate: it adds nothing to Cargo.lock
//! (rcgen would bring its own dependencies, for tests only), it is the tool operators
//! use to make such certificates (the README's recipe is the one tested here), and
//! Mosquitto already needs OpenSSL. Every command's failure names it and its output.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{broker_readable, mosquitto_password_file, require_program, Mosquitto};

/// The user the TLS brokers know, and its password.
pub const USER: &str = "collector";
pub const PASSWORD: &str = "s3cret-Passw0rd";

/// Extensions of the certificates: a CA usable as a rustls trust anchor (v3, CA:TRUE),
/// and leaves that webpki and OpenSSL accept for their purpose (serverAuth with the
/// names the collector connects by; clientAuth).
const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// The certificates and keys, all PEM, all readable by the broker.
pub struct Pki {
    /// The test CA (`ca.pem`): signed the broker's and the client's certificates.
    pub ca: PathBuf,
    /// The broker's certificate (`server.pem`, for `localhost` and `127.0.0.1`) and
    /// key (`server.key`).
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// The client certificate (`client.pem`, CN `tidewatch-collector`) and key
    /// (`client.key`, PKCS#8).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA that signed none of these (`other-ca.pem`).
    pub other_ca: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let program = require_program("openssl", "openssl");
    let out = Command::new(&program)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "openssl {} failed ({}): {}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed CA `name`.pem / `name`.key.
fn ca(dir: &Path, name: &str, subject: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-config",
            "openssl.cnf",
            "-extensions",
            "ca",
            "-subj",
            subject,
            "-days",
            "3",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

/// A leaf `name`.pem / `name`.key signed by `ca`, with the extensions of section
/// `extensions`.
fn leaf(dir: &Path, name: &str, subject: &str, extensions: &str, serial: &str) {
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-config",
            "openssl.cnf",
            "-subj",
            subject,
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            serial,
            "-days",
            "2",
            "-sha256",
            "-extfile",
            "openssl.cnf",
            "-extensions",
            extensions,
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

impl Pki {
    /// Make every certificate in `dir` (a folder the broker can read).
    pub fn create(dir: &Path) -> Pki {
        std::fs::write(dir.join("openssl.cnf"), OPENSSL_CNF).expect("write openssl.cnf");
        ca(dir, "ca", "/O=tidewatch tests/CN=tidewatch test CA");
        ca(dir, "other-ca", "/O=someone else/CN=another CA");
        leaf(dir, "server", "/CN=localhost", "server", "1001");
        leaf(dir, "client", "/CN=tidewatch-collector", "client", "1002");
        let pki = Pki {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
            other_ca: dir.join("other-ca.pem"),
        };
        for f in [
            &pki.ca,
            &pki.server_cert,
            &pki.server_key,
            &pki.client_cert,
            &pki.client_key,
            &pki.other_ca,
        ] {
            broker_readable(f);
        }
        pki
    }

    /// Mosquitto listener settings for TLS with this broker certificate; client
    /// certificates (when `require_certificate`) are verified against the test CA.
    pub fn mosquitto_listener(&self, require_certificate: bool) -> String {
        format!(
            "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {require_certificate}\n",
            self.ca.display(),
            self.server_cert.display(),
            self.server_key.display()
        )
    }
}

/// A broker with the test CA's certificate on its collector listener and `auth` (the
/// listener's authentication settings; `{passwords}` is replaced by the path of a
/// password file holding `USER` / `PASSWORD`).
pub fn tls_broker(require_certificate: bool, auth: &str) -> (Mosquitto, Pki) {
    let mut pki = None;
    let broker = Mosquitto::start_secured(|dir| {
        let p = Pki::create(dir);
        let passwords = dir.join("passwords");
        mosquitto_password_file(&passwords, USER, PASSWORD);
        let listener = p.mosquitto_listener(require_certificate);
        pki = Some(p);
        format!(
            "{listener}{}",
            auth.replace("{passwords}", &passwords.display().to_string())
        )
    });
    (broker, pki.expect("certificates made"))
}

/// Listener authentication: a password file, no anonymous clients.
pub const PASSWORD_LOGIN: &str = "allow_anonymous false\npassword_file {passwords}\n";

/// The collector's `[tls]` table.
pub fn tls_table(ca: &Path, client: Option<&Pki>) -> String {
    let mut t = format!("[tls]\nca_file = \"{}\"\n", ca.display());
    if let Some(p) = client {
        t.push_str(&format!(
            "client_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
            p.client_cert.display(),
            p.client_key.display()
        ));
    }
    t
}
