//! The CA over HTTPS on `127.0.0.1:0`, with software keys: login refusals, bad input that
//! changes nothing, manual approval, CRL and PDF checked with openssl and poppler, restart.

mod common;

use common::*;
use kilt_protocol::ErrorBody;
use kilt_protocol::ca::{CertKind, CertStatus, Certificate, Request, RequestStatus};

async fn error_of(resp: reqwest::Response) -> (u16, ErrorBody) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not an error body: {text}")),
    )
}

async fn cert_login(ca: &Ca, cert: &Certificate, key: &rcgen::KeyPair) -> reqwest::Response {
    ca.with_cert(&cert.pem, key)
        .post(ca.api("/api/v1/login/certificate"))
        .send()
        .await
        .unwrap()
}

/// A user with AUTH and SIGN certificates from software keys.
async fn provisioned(ca: &Ca) -> (Vec<Certificate>, rcgen::KeyPair, rcgen::KeyPair) {
    ca.create_user().await;
    let (auth, sign) = (key(), key());
    let certs = ca
        .provision(&[(CertKind::Auth, &auth), (CertKind::Sign, &sign)], None)
        .await;
    (certs, auth, sign)
}

#[tokio::test]
async fn login_by_certificate_then_request_issues_both_certificates() {
    let ca = start().await;
    let (certs, auth_key, _) = provisioned(&ca).await;
    let resp = cert_login(&ca, &certs[0], &auth_key).await;
    assert_eq!(resp.status(), 200);
    let token = resp.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let (new_auth, new_sign) = (key(), key());
    let body = serde_json::json!({"device": "JaCarta", "csrs": [
        {"kind": "auth", "csr": csr(&new_auth, NAME, IIN)},
        {"kind": "sign", "csr": csr(&new_sign, NAME, IIN)},
    ]});
    let resp = bearer(ca.anonymous().post(ca.api("/api/v1/requests")), &token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let request: Request = resp.json().await.unwrap();
    assert_eq!(request.status, RequestStatus::Issued);
    assert_eq!(request.certificates.len(), 2);
    assert_eq!(request.chain.len(), 2);

    // Newest first: the upper two are the new ones ("pick the upper one").
    let listed: Vec<Certificate> =
        bearer(ca.anonymous().get(ca.api("/api/v1/certificates")), &token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(listed.len(), 4);
    let newest: Vec<&str> = listed[..2].iter().map(|c| c.serial.as_str()).collect();
    for c in &request.certificates {
        assert!(newest.contains(&c.serial.as_str()));
    }

    // openssl agrees the certificates chain to the root, and each carries its CSR's key.
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let root = write("root.pem", ca.server.ca().pki().root_pem());
    let issuing = write("issuing.pem", &request.chain[0]);
    for (cert, key) in request.certificates.iter().zip([&new_auth, &new_sign]) {
        let path = write(&format!("{}.pem", cert.serial), &cert.pem);
        let out = run(
            "openssl",
            &["verify", "-CAfile", &root, "-untrusted", &issuing, &path],
        );
        assert!(out.trim().ends_with(": OK"), "{out}");
        let text = run("openssl", &["x509", "-in", &path, "-noout", "-text"]);
        let purpose = if cert.kind == CertKind::Auth {
            "TLS Web Client Authentication"
        } else {
            "E-mail Protection"
        };
        assert!(text.contains(purpose), "{text}");
        assert!(text.contains("CRL Distribution Points"), "{text}");
        let der = ::pem::parse(&cert.pem).unwrap().contents().to_vec();
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(
            parsed.public_key().subject_public_key.data.as_ref(),
            key.public_key_raw()
        );
        assert_eq!(parsed.raw_serial().len(), 16);
    }

    // The new AUTH certificate logs in; the old one, once revoked as superseded, does not.
    let new_auth_cert = request
        .certificates
        .iter()
        .find(|c| c.kind == CertKind::Auth)
        .unwrap();
    assert_eq!(
        cert_login(&ca, new_auth_cert, &new_auth).await.status(),
        200
    );
    let resp = bearer(
        ca.anonymous()
            .post(ca.api(&format!("/api/v1/certificates/{}/revoke", certs[0].serial))),
        &token,
    )
    .json(&serde_json::json!({"reason": "superseded"}))
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, err) = error_of(cert_login(&ca, &certs[0], &auth_key).await).await;
    assert_eq!((status, err.error.as_str()), (403, "certificate_refused"));
    assert!(err.message.contains("revoked"), "{}", err.message);
}

#[tokio::test]
async fn expired_revoked_foreign_and_signing_certificates_are_refused_with_a_reason() {
    let ca = start().await;
    let (certs, auth_key, sign_key) = provisioned(&ca).await;

    // A SIGN certificate is not for login.
    let (status, err) = error_of(cert_login(&ca, &certs[1], &sign_key).await).await;
    assert_eq!(status, 403);
    assert!(
        err.message.contains("not an authentication certificate"),
        "{}",
        err.message
    );

    // No certificate at all.
    let resp = ca
        .anonymous()
        .post(ca.api("/api/v1/login/certificate"))
        .send()
        .await
        .unwrap();
    let (status, err) = error_of(resp).await;
    assert_eq!(status, 403);
    assert!(
        err.message.contains("no client certificate"),
        "{}",
        err.message
    );

    // A certificate of another CA with the same name.
    let other = start().await;
    other.create_user().await;
    let foreign_key = key();
    let foreign = other
        .provision(&[(CertKind::Auth, &foreign_key)], None)
        .await;
    let (status, err) = error_of(cert_login(&ca, &foreign[0], &foreign_key).await).await;
    assert_eq!(status, 403);
    assert!(
        err.message.contains("not issued by this CA"),
        "{}",
        err.message
    );

    // Expired: move the CA's clock past the validity.
    let clock = reqwest::Client::new()
        .post(ca.admin("/admin/clock"))
        .json(&serde_json::json!({"advance_days": 400}))
        .send()
        .await
        .unwrap();
    assert_eq!(clock.status(), 200);
    let (status, err) = error_of(cert_login(&ca, &certs[0], &auth_key).await).await;
    assert_eq!(status, 403);
    assert!(err.message.contains("expired"), "{}", err.message);
    let back = reqwest::Client::new()
        .post(ca.admin("/admin/clock"))
        .json(&serde_json::json!({"advance_days": -400}))
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 200);
    assert_eq!(cert_login(&ca, &certs[0], &auth_key).await.status(), 200);

    // Revoked by the admin.
    let resp = reqwest::Client::new()
        .post(ca.admin(&format!("/admin/certificates/{}/revoke", certs[0].serial)))
        .json(&serde_json::json!({"reason": "key_compromise"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Certificate>().await.unwrap().status,
        CertStatus::Revoked
    );
    let (status, err) = error_of(cert_login(&ca, &certs[0], &auth_key).await).await;
    assert_eq!(status, 403);
    assert!(err.message.contains("revoked"), "{}", err.message);
    other.server.shutdown().await;
    ca.server.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_a_4xx_with_a_reason_and_change_nothing() {
    let ca = start().await;
    let (_, _, _) = provisioned(&ca).await;
    let token = ca.password_login().await;
    let good = key();
    // A key already certified.
    let in_use = key();
    ca.provision(&[(CertKind::Sign, &in_use)], None).await;
    let before = ca.server.ca().snapshot().unwrap();
    let other_key = key();
    let mut forged = csr(&good, NAME, IIN);
    // Same subject, but the signature is over another key's request: swap the signature.
    {
        let a = ::pem::parse(&forged).unwrap().contents().to_vec();
        let b = ::pem::parse(csr(&other_key, NAME, IIN))
            .unwrap()
            .contents()
            .to_vec();
        // Replace the last 64+ bytes (the signature BIT STRING) of `a` with those of `b`:
        // both are DER ECDSA signatures at the end of the structure.
        let sig_len_a = a.len() - find_sig_start(&a);
        let sig_len_b = b.len() - find_sig_start(&b);
        let mut forged_der = a[..a.len() - sig_len_a].to_vec();
        forged_der.extend_from_slice(&b[b.len() - sig_len_b..]);
        fix_outer_length(&mut forged_der);
        forged = ::pem::encode(&::pem::Pem::new("CERTIFICATE REQUEST", forged_der));
    }
    let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let item = |kind: &str, csr: String| serde_json::json!({"device": "JaCarta", "csrs": [{"kind": kind, "csr": csr}]});
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("garbage JSON", "{not json".into(), 400, "bad_body"),
        ("unknown device", serde_json::json!({"device": "Rutoken", "csrs": []}).to_string(), 400, "bad_body"),
        ("no CSR", serde_json::json!({"device": "JaCarta", "csrs": []}).to_string(), 422, "invalid_input"),
        ("malformed CSR", item("auth", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n".into()).to_string(), 422, "csr_malformed"),
        ("not PEM", item("auth", "hello".into()).to_string(), 422, "csr_malformed"),
        ("CSR signed by another key", item("auth", forged).to_string(), 422, "csr_signature_invalid"),
        ("wrong subject", item("auth", csr(&good, "ДРУГОЙ ЧЕЛОВЕК", IIN)).to_string(), 422, "csr_subject_mismatch"),
        ("wrong IIN", item("auth", csr(&good, NAME, "111111111111")).to_string(), 422, "csr_subject_mismatch"),
        ("P-384 key", item("auth", csr(&p384, NAME, IIN)).to_string(), 422, "csr_key_type"),
        ("key already certified", item("auth", csr(&in_use, NAME, IIN)).to_string(), 409, "csr_key_in_use"),
        ("two auth CSRs", serde_json::json!({"device": "JaCarta", "csrs": [
            {"kind": "auth", "csr": csr(&good, NAME, IIN)}, {"kind": "auth", "csr": csr(&other_key, NAME, IIN)}]}).to_string(), 422, "invalid_input"),
        ("oversize body", serde_json::json!({"device": "JaCarta", "csrs": [{"kind": "auth", "csr": "A".repeat(100_000)}]}).to_string(), 413, "body_too_large"),
    ];
    for (what, body, want_status, want_code) in cases {
        let resp = bearer(ca.anonymous().post(ca.api("/api/v1/requests")), &token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, err) = error_of(resp).await;
        assert_eq!(
            (status, err.error.as_str()),
            (want_status, want_code),
            "{what}: {}",
            err.message
        );
        assert!(!err.message.is_empty(), "{what}");
        assert_eq!(
            ca.server.ca().snapshot().unwrap(),
            before,
            "{what} changed the CA's state"
        );
    }
    // Without a session nothing is accepted either.
    let resp = ca
        .anonymous()
        .post(ca.api("/api/v1/requests"))
        .json(&item("auth", csr(&good, NAME, IIN)))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await.0, 401);
    assert_eq!(ca.server.ca().snapshot().unwrap(), before);
}

/// Offset of the signatureAlgorithm SEQUENCE that follows certificationRequestInfo.
fn find_sig_start(der: &[u8]) -> usize {
    // Outer SEQUENCE header, then certificationRequestInfo TLV.
    let (_, outer_hdr) = tlv_header(der, 0);
    let (info_len, info_hdr) = tlv_header(der, outer_hdr);
    outer_hdr + info_hdr + info_len
}

fn tlv_header(der: &[u8], at: usize) -> (usize, usize) {
    let first = der[at + 1];
    if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        let len = der[at + 2..at + 2 + n]
            .iter()
            .fold(0usize, |acc, b| acc << 8 | *b as usize);
        (len, 2 + n)
    }
}

fn fix_outer_length(der: &mut Vec<u8>) {
    let (_, hdr) = tlv_header(der, 0);
    let body = der[hdr..].to_vec();
    let mut out = vec![0x30];
    if body.len() < 0x80 {
        out.push(body.len() as u8);
    } else if body.len() < 0x100 {
        out.extend([0x81, body.len() as u8]);
    } else {
        out.extend([0x82, (body.len() >> 8) as u8, body.len() as u8]);
    }
    out.extend(body);
    *der = out;
}

#[tokio::test]
async fn manual_approval_goes_new_then_issued_or_rejected_with_a_reason() {
    let ca = start_with(|c| c.auto_approve = false).await;
    ca.create_user().await;
    let token = ca.password_login().await;
    let submit = |k: &rcgen::KeyPair| serde_json::json!({"device": "JaCarta", "csrs": [{"kind": "auth", "csr": csr(k, NAME, IIN)}]});
    let (k1, k2) = (key(), key());
    let r1: Request = bearer(ca.anonymous().post(ca.api("/api/v1/requests")), &token)
        .json(&submit(&k1))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r2: Request = bearer(ca.anonymous().post(ca.api("/api/v1/requests")), &token)
        .json(&submit(&k2))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (r1.status, r2.status),
        (RequestStatus::New, RequestStatus::New)
    );
    assert!(r1.certificates.is_empty());
    // A waiting request lists the key it asks for; the same key again waits there already.
    let point = k1.public_key_raw().to_vec();
    assert_eq!(r1.public_keys, [hex::encode(&point)]);
    let again = bearer(ca.anonymous().post(ca.api("/api/v1/requests")), &token)
        .json(&submit(&k1))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(again).await;
    assert_eq!((status, body.error.as_str()), (409, "csr_key_pending"));
    assert!(
        body.message.contains(&format!("request {}", r1.id)),
        "{}",
        body.message
    );

    let admin = reqwest::Client::new();
    let approved: Request = admin
        .post(ca.admin(&format!("/admin/requests/{}/approve", r1.id)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(approved.status, RequestStatus::Issued);
    assert_eq!(approved.certificates.len(), 1);
    let rejected: Request = admin
        .post(ca.admin(&format!("/admin/requests/{}/reject", r2.id)))
        .json(&serde_json::json!({"reason": "документы не совпадают"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rejected.status, RequestStatus::Rejected);
    assert_eq!(rejected.reason.as_deref(), Some("документы не совпадают"));
    // Terminal states stay.
    let resp = admin
        .post(ca.admin(&format!("/admin/requests/{}/approve", r2.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await.0, 409);
    let resp = admin
        .post(ca.admin("/admin/requests/999/approve"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await.0, 404);
    // The user sees the same.
    let mine: Vec<Request> = bearer(ca.anonymous().get(ca.api("/api/v1/requests")), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        mine.iter().map(|r| r.status).collect::<Vec<_>>(),
        [RequestStatus::Rejected, RequestStatus::Issued]
    );
}

#[tokio::test]
async fn the_crl_lists_revoked_serials_and_openssl_reads_it() {
    let ca = start().await;
    let (certs, _, _) = provisioned(&ca).await;
    let revoked = &certs[1].serial;
    let resp = reqwest::Client::new()
        .post(ca.admin(&format!("/admin/certificates/{revoked}/revoke")))
        .json(&serde_json::json!({"reason": "superseded"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = ca
        .anonymous()
        .get(ca.api("/crl/issuing.crl"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/pkix-crl");
    let der = resp.bytes().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let crl = tmp.path().join("issuing.crl");
    std::fs::write(&crl, &der).unwrap();
    let issuing = tmp.path().join("issuing.pem");
    std::fs::write(&issuing, ca.server.ca().pki().issuing_pem()).unwrap();
    let text = run(
        "openssl",
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            crl.to_str().unwrap(),
            "-noout",
            "-text",
        ],
    );
    assert!(
        text.to_uppercase().contains(&revoked.to_uppercase()),
        "{text}"
    );
    assert!(
        !text
            .to_uppercase()
            .contains(&certs[0].serial.to_uppercase()),
        "{text}"
    );
    assert!(text.contains("Superseded"), "{text}");
    // The signature verifies with the issuing CA.
    let out = std::process::Command::new("openssl")
        .args([
            "crl",
            "-inform",
            "DER",
            "-in",
            crl.to_str().unwrap(),
            "-noout",
            "-CAfile",
            issuing.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("verify OK"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_application_pdf_renders_with_cyrillic_name_and_serials() {
    let ca = start().await;
    let (certs, auth_key, _) = provisioned(&ca).await;
    let token = cert_login(&ca, &certs[0], &auth_key)
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (a, s) = (key(), key());
    let body = serde_json::json!({"device": "JaCarta", "csrs": [
        {"kind": "auth", "csr": csr(&a, NAME, IIN)}, {"kind": "sign", "csr": csr(&s, NAME, IIN)}]});
    let request: Request = bearer(ca.anonymous().post(ca.api("/api/v1/requests")), &token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let resp = bearer(
        ca.anonymous()
            .get(ca.api(&format!("/api/v1/requests/{}/application.pdf", request.id))),
        &token,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    let pdf = resp.bytes().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("application.pdf");
    std::fs::write(&path, &pdf).unwrap();
    if let Some(keep) = std::env::var_os("KILT_KEEP_PDF") {
        std::fs::write(keep, &pdf).unwrap(); // to look at the page by hand
    }
    let text = run("pdftotext", &[path.to_str().unwrap(), "-"]);
    for needle in [
        "ЗАЯВЛЕНИЕ",
        NAME,
        IIN,
        "JaCarta",
        "Аутентификация",
        "Подпись",
    ] {
        assert!(
            text.contains(needle),
            "{needle:?} missing from the PDF text:\n{text}"
        );
    }
    for cert in &request.certificates {
        assert!(
            text.contains(&cert.serial),
            "serial {} missing:\n{text}",
            cert.serial
        );
        assert!(
            text.contains(&cert.sha256[..32]),
            "fingerprint missing:\n{text}"
        );
    }
    // Only the page's glyphs are embedded: a subset (pdffonts: emb yes, sub yes), not the font.
    let fonts = run("pdffonts", &[path.to_str().unwrap()]);
    let row = fonts.lines().last().unwrap_or_default();
    assert!(
        row.contains("+DejaVuSans") && row.contains("CID TrueType") && row.contains("yes yes"),
        "{fonts}"
    );
    assert!(pdf.len() < 40_000, "the application is {} bytes", pdf.len());
    let info = run("pdfinfo", &[path.to_str().unwrap()]);
    assert!(
        info.lines()
            .any(|l| l.starts_with("Title:") && l.ends_with(&format!(" Заявление {}", request.id))),
        "{info}"
    );
    run(
        "pdftoppm",
        &[
            "-png",
            "-r",
            "50",
            path.to_str().unwrap(),
            tmp.path().join("page").to_str().unwrap(),
        ],
    );
    let png = std::fs::read(tmp.path().join("page-1.png")).unwrap();
    assert!(
        png.len() > 2_000,
        "the page rendered to only {} bytes",
        png.len()
    );
    // Not before issuance, and not someone else's.
    let resp = ca
        .anonymous()
        .get(ca.api(&format!("/api/v1/requests/{}/application.pdf", request.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (serials, root) = {
        let ca = Ca {
            server: kilt_mock_ca::serve(kilt_mock_ca::Config::ephemeral(dir.path()))
                .await
                .unwrap(),
            dir: tempfile::tempdir().unwrap(),
        };
        let (certs, _, _) = provisioned(&ca).await;
        let root = ca.server.ca().pki().root_pem().to_owned();
        ca.server.shutdown().await;
        (
            certs.into_iter().map(|c| c.serial).collect::<Vec<_>>(),
            root,
        )
    };
    let server = kilt_mock_ca::serve(kilt_mock_ca::Config::ephemeral(dir.path()))
        .await
        .unwrap();
    assert_eq!(
        server.ca().pki().root_pem(),
        root,
        "the root must survive a restart"
    );
    let snapshot = server.ca().snapshot().unwrap();
    assert_eq!(snapshot.users, [LOGIN]);
    for serial in serials {
        assert!(snapshot.certificates.iter().any(|(s, _)| *s == serial));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn fault_knobs_fail_requests_and_drop_connections_but_spare_the_admin() {
    let ca = start().await;
    let admin = reqwest::Client::new();
    let set = |f: serde_json::Value| admin.put(ca.admin("/admin/faults")).json(&f).send();
    assert_eq!(
        set(serde_json::json!({"fail_percent": 100}))
            .await
            .unwrap()
            .status(),
        200
    );
    let resp = ca
        .anonymous()
        .get(ca.api("/crl/issuing.crl"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    // The admin listener is never faulted.
    assert_eq!(
        admin
            .get(ca.admin("/admin/clock"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let clamped: serde_json::Value = set(serde_json::json!({"drop_percent": 250}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(clamped["drop_percent"], 100);
    assert!(
        ca.anonymous()
            .get(ca.api("/crl/issuing.crl"))
            .send()
            .await
            .is_err(),
        "the connection should drop"
    );
    set(serde_json::json!({})).await.unwrap();
    assert_eq!(
        ca.anonymous()
            .get(ca.api("/crl/issuing.crl"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn each_listener_serves_exactly_what_its_document_says() {
    let ca = start().await;
    let public: serde_json::Value = ca
        .anonymous()
        .get(ca.api("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin: serde_json::Value = reqwest::get(ca.admin("/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client = ca.anonymous();
    kilt_test_support::assert_serves_exactly(&client, &ca.server.url(), &public, &admin).await;
    kilt_test_support::assert_serves_exactly(
        &reqwest::Client::new(),
        &ca.server.admin_url(),
        &admin,
        &public,
    )
    .await;
}

#[tokio::test]
async fn pages_show_the_menu_and_the_cabinet_in_three_languages() {
    let ca = start().await;
    let (certs, auth_key, _) = provisioned(&ca).await;
    let client = ca.with_cert(&certs[0].pem, &auth_key);
    for (lang, menu, valid) in [
        ("ru", "По сертификату", "Действителен"),
        ("en", "By certificate", "Valid"),
        ("kk", "Сертификат бойынша", "Жарамды"),
    ] {
        let page = client
            .get(ca.api(&format!("/?lang={lang}")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains(menu), "{lang}: {page}");
        // "По сертификату" + "Вход": a redirect to the cabinet with the session cookie.
        let resp = client
            .post(ca.api(&format!("/login?lang={lang}")))
            .form(&[("by_certificate", "on")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303);
        assert_eq!(
            resp.headers()["location"],
            format!("/cabinet?lang={lang}").as_str()
        );
        let cookie = resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let page = client
            .get(ca.api(&format!("/cabinet?lang={lang}")))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains(NAME) && page.contains(valid) && page.contains(&certs[0].serial),
            "{lang}: {page}"
        );
    }
    // A wrong password shows the reason on the login page.
    let page = ca
        .anonymous()
        .post(ca.api("/login"))
        .form(&[("login", LOGIN), ("password", "wrong-one")])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 401);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("wrong login or password")
    );
}

#[tokio::test]
async fn the_certificate_link_logs_in_by_the_tls_certificate_or_says_why_not() {
    let ca = start().await;
    let (certs, auth_key, _) = provisioned(&ca).await;
    let client = ca.with_cert(&certs[0].pem, &auth_key);
    let page = client.get(ca.api("/?lang=en")).send().await.unwrap();
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("href=\"/login/certificate?lang=en\"")
    );
    let resp = client
        .get(ca.api("/login/certificate?lang=kk"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/cabinet?lang=kk");
    let cookie = resp.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("kilt_ca_session=") && cookie.contains("HttpOnly"));
    // No client certificate: the login page again, with the reason, and no session.
    let resp = ca
        .anonymous()
        .get(ca.api("/login/certificate?lang=en"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.headers().get("set-cookie").is_none());
    let page = resp.text().await.unwrap();
    assert!(page.contains("carries no client certificate"), "{page}");
}
