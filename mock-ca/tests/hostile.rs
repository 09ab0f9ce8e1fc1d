//! The CA under hostile traffic (issue 14): the admin clock stays within its bound and never
//! bricks the data directory, refusals have the one JSON error shape, certificate-login refusals
//! give the real reason, wrong passwords are throttled, stalled connections are closed.

mod common;

use common::*;
use kilt_mock_ca::{Config, serve};
use serde_json::json;

async fn post_clock(ca: &Ca, days: serde_json::Value) -> reqwest::StatusCode {
    reqwest::Client::new()
        .post(ca.admin("/admin/clock"))
        .json(&json!({ "advance_days": days }))
        .send()
        .await
        .unwrap()
        .status()
}

/// The clock's offset in days, after checking that its `now` is that far from the system's.
async fn offset_days(admin_url: &str) -> i64 {
    let clock: serde_json::Value = reqwest::get(format!("{admin_url}/admin/clock"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let days = clock["offset_seconds"].as_i64().unwrap() / 86_400;
    let year: i64 = clock["now"].as_str().unwrap()[..4].parse().unwrap();
    let this_year = 1970
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            / 31_556_952;
    assert!(
        (year - this_year - days / 365).abs() <= 1,
        "now {} is not {days} days from the system clock",
        clock["now"]
    );
    days
}

#[tokio::test]
async fn the_admin_clock_stays_within_its_bound_and_never_bricks_the_server() {
    let ca = start().await;
    ca.create_user().await;
    // Finding 1's sequence: +100 years again and again (each call within the old per-call
    // limit), then the extremes of an i64.
    let mut statuses = vec![];
    for _ in 0..4 {
        statuses.push(post_clock(&ca, json!(36_500)).await.as_u16());
    }
    // Beyond the bound from where the clock is: a conflict with its state.
    assert_eq!(statuses, [200, 409, 409, 409]);
    // Beyond the clock's whole range: a bad request whatever the state.
    for days in [json!(i64::MIN), json!(i64::MAX), json!(-80_000)] {
        let s = post_clock(&ca, days.clone()).await;
        assert!(s.is_client_error(), "{days}: {s}");
    }
    assert_eq!(offset_days(&ca.server.admin_url()).await, 36_500);
    // Everything that broke before still answers.
    ca.password_login().await;
    let crl = ca
        .anonymous()
        .get(ca.api("/crl/issuing.crl"))
        .send()
        .await
        .unwrap();
    assert!(!crl.status().is_server_error(), "CRL: {}", crl.status());
    // Back to the other bound in one step, within it.
    assert_eq!(post_clock(&ca, json!(-73_000)).await, 200);
    assert_eq!(post_clock(&ca, json!(-1)).await, 409);

    // The server starts again from that data directory.
    let Ca { server, dir } = ca;
    server.shutdown().await;
    let again = serve(Config::ephemeral(dir.path())).await.unwrap();
    assert_eq!(offset_days(&again.admin_url()).await, -36_500);
    again.shutdown().await;

    // A data directory holding an offset beyond the bound (an older version's) still starts,
    // clamped to it.
    let db = rusqlite::Connection::open(dir.path().join("ca.sqlite")).unwrap();
    db.execute(
        "UPDATE meta SET value=?1 WHERE key='clock_offset'",
        [i64::MAX / 2],
    )
    .unwrap();
    drop(db);
    let clamped = serve(Config::ephemeral(dir.path())).await.unwrap();
    assert_eq!(offset_days(&clamped.admin_url()).await, 36_500);
    clamped.shutdown().await;
    // …and the directory itself was repaired, for whatever opens it next.
    let stored: i64 = rusqlite::Connection::open(dir.path().join("ca.sqlite"))
        .unwrap()
        .query_row("SELECT value FROM meta WHERE key='clock_offset'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(stored, 36_500 * 86_400);
}

/// How long until the server closes this connection (reads, and drops what it reads, until
/// end of file); `None` if it stays open for 10 s.
async fn until_closed(mut conn: impl tokio::io::AsyncRead + Unpin) -> Option<std::time::Duration> {
    use tokio::io::AsyncReadExt;
    let start = std::time::Instant::now();
    let mut buf = [0u8; 1024];
    let closed = async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), closed)
        .await
        .ok()
        .map(|_| start.elapsed())
}

fn addr_of(url: &str) -> std::net::SocketAddr {
    url.split("://")
        .nth(1)
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connections_are_closed_within_the_timeouts_while_others_are_served() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let second = std::time::Duration::from_secs(1);
    let ca = start_with(|c| {
        c.timeouts = kilt_mock_ca::server::Timeouts {
            handshake: second,
            headers: second,
        }
    })
    .await;
    let api = addr_of(&ca.server.url());
    let admin = addr_of(&ca.server.admin_url());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(ca.root_der()))
        .unwrap();
    let tls = std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let mut stalled = tokio::task::JoinSet::new();
    for i in 0..50 {
        let tls = tls.clone();
        stalled.spawn(async move {
            let kind = [
                "no TLS handshake",
                "slow TLS headers",
                "slow admin headers",
                "idle admin keep-alive",
            ][i % 4];
            let target = if i % 4 < 2 { api } else { admin };
            let mut tcp = TcpStream::connect(target).await.unwrap();
            let closed = match i % 4 {
                0 => until_closed(tcp).await,
                1 => {
                    let connector = tokio_rustls::TlsConnector::from(tls);
                    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
                    let mut s = connector.connect(name, tcp).await.unwrap();
                    s.write_all(b"GET /crl/issuing.crl HTTP/1.1\r\nHost: x\r\n")
                        .await
                        .unwrap();
                    until_closed(s).await
                }
                2 => {
                    tcp.write_all(b"GET /admin/clock HTTP/1.1\r\n")
                        .await
                        .unwrap();
                    until_closed(tcp).await
                }
                _ => {
                    use tokio::io::AsyncReadExt;
                    tcp.write_all(b"GET /admin/clock HTTP/1.1\r\nHost: x\r\n\r\n")
                        .await
                        .unwrap();
                    let mut first = [0u8; 12];
                    tcp.read_exact(&mut first).await.unwrap();
                    assert_eq!(&first, b"HTTP/1.1 200");
                    until_closed(tcp).await
                }
            };
            (kind, closed)
        });
    }
    // Meanwhile others are served, on both listeners.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let crl = ca
        .anonymous()
        .get(ca.api("/crl/issuing.crl"))
        .send()
        .await
        .unwrap();
    assert_eq!(crl.status(), 200);
    let clock = reqwest::get(ca.admin("/admin/clock")).await.unwrap();
    assert_eq!(clock.status(), 200);
    while let Some(r) = stalled.join_next().await {
        let (kind, closed) = r.unwrap();
        let after = closed.unwrap_or_else(|| panic!("{kind}: still open after 10 s"));
        // Closed by the 1 s timeout: not at once, and not much later.
        assert!(
            after >= std::time::Duration::from_millis(800)
                && after < std::time::Duration::from_secs(4),
            "{kind}: closed after {after:?}"
        );
    }
}

/// The error body of a refusal; fails unless it is the one JSON shape `{error, message}`.
async fn error_of(resp: reqwest::Response) -> (u16, kilt_protocol::ErrorBody) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("{status}: not the JSON error shape: {text:?}"));
    (status, body)
}

#[tokio::test]
async fn certificates_from_elsewhere_are_refused_as_not_ours() {
    let ca = start().await;
    ca.create_user().await;
    let login = |pem: String, key: &rcgen::KeyPair| {
        ca.with_cert(&pem, key)
            .post(ca.api("/api/v1/login/certificate"))
            .send()
    };
    // A self-signed CA certificate (webpki: CaUsedAsEndEntity).
    let key = key();
    let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let self_signed = params.self_signed(&key).unwrap().pem();
    // A signing certificate of another CA, like the bank's SIGN (webpki: no clientAuth EKU).
    let other_ca_key = common::key();
    let mut ca_params = rcgen::CertificateParams::new(vec![]).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let issuer = rcgen::Issuer::new(ca_params, &other_ca_key);
    let mut sign_params = rcgen::CertificateParams::new(vec![]).unwrap();
    sign_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::EmailProtection];
    let sign_key = common::key();
    let foreign_sign = sign_params.signed_by(&sign_key, &issuer).unwrap().pem();
    for (what, pem, key) in [
        ("self-signed CA certificate", self_signed, &key),
        ("another CA's signing certificate", foreign_sign, &sign_key),
    ] {
        let (status, err) = error_of(login(pem, key).await.unwrap()).await;
        assert_eq!(status, 403, "{what}");
        assert_eq!(err.error, "certificate_refused", "{what}");
        assert!(
            err.message.contains("not issued by this CA"),
            "{what}: {}",
            err.message
        );
    }
}

#[tokio::test]
async fn wrong_passwords_make_the_login_wait() {
    let ca = start_with(|c| c.password_lock = std::time::Duration::from_secs(2)).await;
    ca.create_user().await;
    let attempt = |password: &'static str| {
        ca.anonymous()
            .post(ca.api("/api/v1/login/password"))
            .json(&json!({"login": LOGIN, "password": password}))
            .send()
    };
    for _ in 0..kilt_mock_ca::ca::PASSWORD_TRIES {
        assert_eq!(attempt("wrong").await.unwrap().status(), 401);
    }
    // Now even the right password waits, with Retry-After.
    let resp = attempt(PASSWORD).await.unwrap();
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // Whole seconds left, rounded up: just under 2 s of the 2 s wait.
    assert_eq!(retry, 2, "Retry-After");
    let (_, err) = error_of(resp).await;
    assert_eq!(err.error, "too_many_attempts");
    // Another login is not held up.
    let other = ca
        .anonymous()
        .post(ca.api("/api/v1/login/password"))
        .json(&json!({"login": "someone-else", "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 401);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(attempt(PASSWORD).await.unwrap().status(), 200);
    // A success starts the count again: four wrong, the right one, one wrong, the right one —
    // never five wrong in a row, so never a wait.
    for _ in 1..kilt_mock_ca::ca::PASSWORD_TRIES {
        assert_eq!(attempt("wrong").await.unwrap().status(), 401);
    }
    assert_eq!(attempt(PASSWORD).await.unwrap().status(), 200);
    assert_eq!(attempt("wrong").await.unwrap().status(), 401);
    assert_eq!(attempt(PASSWORD).await.unwrap().status(), 200);
}

#[tokio::test]
async fn every_refusal_has_the_one_json_shape() {
    let ca = start().await;
    ca.create_user().await;
    let token = ca.password_login().await;
    let api = ca.anonymous();
    let admin = reqwest::Client::new();
    let checks: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "invalid UTF-8 in a path",
            api.get(ca.api("/api/v1/requests/%FF%FE"))
                .bearer_auth(&token),
            400,
            "bad_request",
        ),
        (
            "a duplicated query field",
            api.get(ca.api("/api/v1/requests/1/application.pdf?lang=ru&lang=ru"))
                .bearer_auth(&token),
            400,
            "bad_request",
        ),
        (
            "an unknown route",
            api.get(ca.api("/no/such/route")),
            404,
            "not_found",
        ),
        (
            "a method the route has not",
            api.delete(ca.api("/api/v1/me")),
            405,
            "method_not_allowed",
        ),
        (
            "a body that is not JSON",
            api.post(ca.api("/api/v1/login/password"))
                .header("content-type", "text/plain")
                .body("login=x"),
            415,
            "unsupported_media_type",
        ),
        (
            "broken JSON",
            api.post(ca.api("/api/v1/login/password"))
                .header("content-type", "application/json")
                .body("{"),
            400,
            "bad_body",
        ),
        (
            "an unknown admin route",
            admin.get(ca.admin("/admin/nope")),
            404,
            "not_found",
        ),
        (
            "broken JSON to the admin",
            admin
                .post(ca.admin("/admin/clock"))
                .header("content-type", "application/json")
                .body("{"),
            400,
            "bad_body",
        ),
    ];
    for (what, request, want, code) in checks {
        let resp = request.send().await.unwrap();
        assert_eq!(resp.headers()["content-type"], "application/json", "{what}");
        let (status, err) = error_of(resp).await;
        assert_eq!(status, want, "{what}: {}", err.message);
        assert_eq!(err.error, code, "{what}: {}", err.message);
        assert!(!err.message.is_empty(), "{what}");
    }
}
