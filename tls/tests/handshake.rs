//! Handshakes between a listener's and a cluster's TLS contexts over loopback TCP,
//! with certificates made here: who is accepted, who is refused and why, SNI, and
//! rotation of the files under a running context.

use std::sync::Arc;
use std::time::Duration;

use strait_tls::test_certs::{Authority, Usage};
use strait_tls::{
    CertificateFiles, ClientTls, ClientTlsSettings, FailureReason, ServerTls, ServerTlsSettings,
    TlsVersion,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const ORDERS: &str = "spiffe://cluster.local/ns/default/sa/orders";

struct Pki {
    dir: tempfile::TempDir,
    ca: Authority,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = Authority::new("Strait test CA");
        ca.write(dir.path(), "ca");
        let server = ca.issue(&["localhost", "127.0.0.1"], Usage::Server, false);
        server.write(dir.path(), "server");
        Pki { dir, ca }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn server(&self, mtls: bool, allowed_sans: &[&str]) -> ServerTlsSettings {
        ServerTlsSettings {
            certificates: vec![CertificateFiles {
                cert_file: self.path("server.pem"),
                key_file: self.path("server-key.pem"),
                server_names: vec![],
            }],
            alpn: vec![],
            min_version: TlsVersion::Tls12,
            client_ca_file: mtls.then(|| self.path("ca.pem")),
            require_client_certificate: mtls,
            allowed_sans: allowed_sans.iter().map(|s| s.to_string()).collect(),
            handshake_timeout: Duration::from_secs(5),
        }
    }

    fn client(&self, cert: Option<&str>) -> ClientTlsSettings {
        ClientTlsSettings {
            server_name: Some("localhost".into()),
            ca_file: Some(self.path("ca.pem")),
            cert_file: cert.map(|c| self.path(&format!("{c}.pem"))),
            key_file: cert.map(|c| self.path(&format!("{c}-key.pem"))),
            alpn: vec![],
            insecure_skip_verify: false,
        }
    }
}

/// Serves one connection: a handshake, then echoes one line. Returns the handshake
/// result.
async fn serve_once(listener: &TcpListener, tls: &ServerTls) -> Result<(), FailureReason> {
    let (tcp, _) = listener.accept().await.unwrap();
    let mut stream = tls.accept(tcp).await?;
    let mut buf = [0u8; 5];
    if stream.read_exact(&mut buf).await.is_ok() {
        let _ = stream.write_all(&buf).await;
        let _ = stream.flush().await;
    }
    Ok(())
}

/// Connects with `client`, sends "hello" and reads it back. The client's view.
async fn call(addr: std::net::SocketAddr, client: &ClientTls) -> Result<(), String> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut stream = client.connect(tcp, addr).await.map_err(|(_, e)| e)?;
    stream
        .write_all(b"hello")
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 5];
    stream
        .read_exact(&mut buf)
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(&buf, b"hello");
    Ok(())
}

async fn attempt(
    server: &Arc<ServerTls>,
    client: &ClientTls,
) -> (Result<(), FailureReason>, Result<(), String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = {
        let server = server.clone();
        tokio::spawn(async move { serve_once(&listener, &server).await })
    };
    let called = call(addr, client).await;
    (serving.await.unwrap(), called)
}

fn issue(pki: &Pki, ca: &Authority, names: &[&str], expired: bool, stem: &str) {
    ca.issue(names, Usage::Client, expired)
        .write(pki.dir.path(), stem);
}

#[tokio::test]
async fn mtls_accepts_a_good_client_and_refuses_missing_expired_untrusted_and_unlisted_ones() {
    let pki = Pki::new();
    let other = Authority::new("Another CA");
    issue(&pki, &pki.ca, &[ORDERS], false, "good");
    issue(&pki, &pki.ca, &[ORDERS], true, "expired");
    issue(&pki, &other, &[ORDERS], false, "untrusted");
    issue(
        &pki,
        &pki.ca,
        &["spiffe://cluster.local/ns/default/sa/intruder"],
        false,
        "unlisted",
    );
    let server = ServerTls::load("mtls", pki.server(true, &[ORDERS])).unwrap();

    let good = ClientTls::load("c", pki.client(Some("good"))).unwrap();
    let (served, called) = attempt(&server, &good).await;
    assert_eq!(served, Ok(()));
    assert_eq!(called, Ok(()));

    for (cert, reason) in [
        (None, FailureReason::NoClientCertificate),
        (Some("expired"), FailureReason::ExpiredCertificate),
        (Some("untrusted"), FailureReason::UntrustedCertificate),
        (Some("unlisted"), FailureReason::WrongName),
    ] {
        let client = ClientTls::load("c", pki.client(cert)).unwrap();
        let (served, called) = attempt(&server, &client).await;
        assert_eq!(served, Err(reason), "client certificate {cert:?}");
        // TLS 1.3: the client learns of the refusal on its first read.
        assert!(called.is_err(), "client {cert:?} was served: {called:?}");
    }
    let failures: Vec<(FailureReason, u64)> =
        server.stats().failures().filter(|(_, n)| *n > 0).collect();
    assert_eq!(failures.len(), 4, "{failures:?}");
    assert_eq!(server.stats().handshakes(), 1);
}

#[tokio::test]
async fn the_client_refuses_a_server_certificate_for_another_name_or_from_another_ca() {
    let pki = Pki::new();
    let server = ServerTls::load("s", pki.server(false, &[])).unwrap();
    let mut wrong_name = pki.client(None);
    wrong_name.server_name = Some("orders.example.com".into());
    let client = ClientTls::load("c", wrong_name).unwrap();
    let (_, called) = attempt(&server, &client).await;
    assert!(called.is_err());
    assert_eq!(count(client.stats(), FailureReason::WrongName), 1);

    let other = Authority::new("Another CA");
    other.write(pki.dir.path(), "other-ca");
    let mut untrusted = pki.client(None);
    untrusted.ca_file = Some(pki.path("other-ca.pem"));
    let client = ClientTls::load("c", untrusted).unwrap();
    let (_, called) = attempt(&server, &client).await;
    assert!(called.is_err());
    assert_eq!(
        count(client.stats(), FailureReason::UntrustedCertificate),
        1
    );
}

fn count(stats: &strait_tls::TlsStats, reason: FailureReason) -> u64 {
    stats
        .failures()
        .find(|(r, _)| *r == reason)
        .map_or(0, |(_, n)| n)
}

#[tokio::test]
async fn sni_chooses_the_certificate_and_an_unknown_name_gets_the_default() {
    let pki = Pki::new();
    pki.ca
        .issue(&["orders.example.com"], Usage::Server, false)
        .write(pki.dir.path(), "orders");
    pki.ca
        .issue(&["a.payments.example.com"], Usage::Server, false)
        .write(pki.dir.path(), "payments");
    let mut settings = pki.server(false, &[]);
    for (stem, name) in [
        ("orders", "orders.example.com"),
        ("payments", "*.payments.example.com"),
    ] {
        settings.certificates.push(CertificateFiles {
            cert_file: pki.path(&format!("{stem}.pem")),
            key_file: pki.path(&format!("{stem}-key.pem")),
            server_names: vec![name.into()],
        });
    }
    let server = ServerTls::load("s", settings).unwrap();
    for (asked, ok) in [
        ("orders.example.com", true),
        ("a.payments.example.com", true),
        // The default certificate (localhost) does not name it: the client refuses.
        ("b.payments.example.com", false),
        ("localhost", true),
    ] {
        let mut client = pki.client(None);
        client.server_name = Some(asked.into());
        let client = ClientTls::load("c", client).unwrap();
        let (_, called) = attempt(&server, &client).await;
        assert_eq!(called.is_ok(), ok, "{asked}: {called:?}");
    }
}

#[tokio::test]
async fn min_version_1_3_refuses_a_tls_1_2_only_client_and_plaintext_is_not_tls() {
    let pki = Pki::new();
    let mut settings = pki.server(false, &[]);
    settings.min_version = TlsVersion::Tls13;
    let server = ServerTls::load("s", settings).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = {
        let server = server.clone();
        tokio::spawn(async move { serve_once(&listener, &server).await })
    };
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(serving.await.unwrap(), Err(FailureReason::NotTls));
}

fn replace_server_certificate(pki: &Pki, names: &[&str]) {
    let issued = pki.ca.issue(names, Usage::Server, false);
    // Written beside, then renamed over: what a certificate manager does.
    let dir = pki.dir.path();
    std::fs::write(dir.join("next.pem"), &issued.cert_pem).unwrap();
    std::fs::write(dir.join("next-key.pem"), &issued.key_pem).unwrap();
    std::fs::rename(dir.join("next.pem"), dir.join("server.pem")).unwrap();
    std::fs::rename(dir.join("next-key.pem"), dir.join("server-key.pem")).unwrap();
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..100 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn rotation_serves_new_files_to_new_handshakes_and_keeps_the_old_on_a_broken_file() {
    let pki = Pki::new();
    let server = ServerTls::load("s", pki.server(false, &[])).unwrap();
    let _rotation = strait_tls::Rotation::start(std::slice::from_ref(&server), &[])
        .unwrap()
        .expect("files to watch");
    let client = ClientTls::load("c", pki.client(None)).unwrap();

    // A connection made before the rotation.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let early = {
        let server = server.clone();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut stream = server.accept(tcp).await.unwrap();
            let mut buf = [0u8; 5];
            for _ in 0..2 {
                stream.read_exact(&mut buf).await.unwrap();
                stream.write_all(&buf).await.unwrap();
            }
        })
    };
    let mut before = client
        .connect(TcpStream::connect(addr).await.unwrap(), addr)
        .await
        .unwrap();
    echo(&mut before).await;
    let first_expiry = server.expiry();

    // The new certificate names only another host: a client asking for localhost
    // refuses it, which shows new handshakes use it.
    replace_server_certificate(&pki, &["rotated.example.com"]);
    wait_for("the rotation", || server.stats().rotations().0 == 1).await;
    let (_, called) = attempt(&server, &client).await;
    assert!(
        called.is_err(),
        "new handshakes still get the old certificate"
    );
    let mut rotated = pki.client(None);
    rotated.server_name = Some("rotated.example.com".into());
    let rotated = ClientTls::load("c", rotated).unwrap();
    assert_eq!(attempt(&server, &rotated).await.1, Ok(()));
    assert_eq!(server.expiry().len(), first_expiry.len());
    // The connection made before it still works.
    echo(&mut before).await;
    early.await.unwrap();

    // A broken key keeps the material in force, and is counted.
    std::fs::write(pki.path("server-key.pem"), "not a key").unwrap();
    wait_for("the failed reload", || server.stats().rotations().1 >= 1).await;
    assert_eq!(attempt(&server, &rotated).await.1, Ok(()));
}

async fn echo<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(stream: &mut S) {
    stream.write_all(b"hello").await.unwrap();
    let mut buf = [0u8; 5];
    stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hello");
}

#[test]
fn loading_names_the_file_that_is_wrong() {
    let pki = Pki::new();
    let mut settings = pki.server(false, &[]);
    settings.certificates[0].key_file = pki.path("missing-key.pem");
    let error = ServerTls::load("s", settings).unwrap_err().to_string();
    assert!(error.contains("missing-key.pem"), "{error}");
    std::fs::write(pki.path("junk.pem"), "junk").unwrap();
    let mut settings = pki.server(false, &[]);
    settings.certificates[0].cert_file = pki.path("junk.pem");
    let error = ServerTls::load("s", settings).unwrap_err().to_string();
    assert!(error.contains("junk.pem"), "{error}");
    let mut client = pki.client(None);
    client.ca_file = None;
    let error = ClientTls::load("c", client).unwrap_err().to_string();
    assert!(error.contains("ca_file"), "{error}");
}

/// A Kubernetes secret mount: the files are symlinks through `..data`, itself a symlink
/// to a timestamped directory; an update writes a new directory and swaps `..data`
/// atomically. The watch on the mount's directory sees the swap.
#[cfg(unix)]
#[tokio::test]
async fn rotation_follows_a_kubernetes_style_data_symlink_swap() {
    use std::os::unix::fs::symlink;
    let pki = Pki::new();
    let mount = tempfile::tempdir().unwrap();
    let m = mount.path();
    let version = |name: &str, names: &[&str]| {
        let dir = m.join(name);
        std::fs::create_dir(&dir).unwrap();
        pki.ca.issue(names, Usage::Server, false).write(&dir, "tls");
    };
    version("..2026_12_02_v1", &["localhost"]);
    symlink("..2026_12_02_v1", m.join("..data")).unwrap();
    symlink("..data/tls.pem", m.join("tls.crt")).unwrap();
    symlink("..data/tls-key.pem", m.join("tls.key")).unwrap();
    let mut settings = pki.server(false, &[]);
    settings.certificates[0].cert_file = m.join("tls.crt");
    settings.certificates[0].key_file = m.join("tls.key");
    let server = ServerTls::load("s", settings).unwrap();
    let _rotation = strait_tls::Rotation::start(std::slice::from_ref(&server), &[])
        .unwrap()
        .expect("files to watch");
    let mut rotated = pki.client(None);
    rotated.server_name = Some("rotated.example.com".into());
    let rotated = ClientTls::load("c", rotated).unwrap();
    assert!(
        attempt(&server, &rotated).await.1.is_err(),
        "not rotated yet"
    );

    // What the kubelet does: a new directory, a temporary link, renamed over `..data`.
    version("..2026_12_02_v2", &["rotated.example.com"]);
    symlink("..2026_12_02_v2", m.join("..data_tmp")).unwrap();
    std::fs::rename(m.join("..data_tmp"), m.join("..data")).unwrap();
    wait_for("the rotation", || server.stats().rotations().0 == 1).await;
    assert_eq!(attempt(&server, &rotated).await.1, Ok(()));
}
