//! The pages in headless Chromium: the customer's "Профили" page (banner, table, signature
//! parameters) and the operator's page, each in Русский, Қазақша and English, with a
//! screenshot and the status labels read from the rendered DOM.

mod common;

use std::path::Path;

use common::*;
use kilt_protocol::Lang;
use kilt_protocol::bank::Status;

/// Renders `url` in headless Chromium; returns the DOM and writes a screenshot to `png`.
fn chromium(url: &str, png: &Path) -> Option<String> {
    let profile = tempfile::tempdir().unwrap();
    // Our self-signed TLS, and a window the pages fit.
    let browser = || {
        kilt_test_support::headless_chromium(profile.path()).map(|mut c| {
            c.args(["--ignore-certificate-errors", "--window-size=1200,700"]);
            c
        })
    };
    let mut shot = browser()?;
    let shot = shot
        .arg(format!("--screenshot={}", png.display()))
        .arg(url)
        .output()
        .unwrap();
    assert!(
        shot.status.success(),
        "chromium --screenshot failed: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let dom = browser()?.arg("--dump-dom").arg(url).output().unwrap();
    assert!(
        dom.status.success(),
        "chromium --dump-dom failed: {}",
        String::from_utf8_lossy(&dom.stderr)
    );
    Some(String::from_utf8_lossy(&dom.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_render_in_chromium_with_the_status_labels_in_three_languages() {
    let bank = start_with(|c| c.settings.auto_process = false).await;
    let old = key();
    let profile = bank.subscriber(&old, 20).await;
    let cert = bank.current_certificate(&profile.identifier);
    let token = bank.login(&profile.identifier, &cert, &old).await.token;
    let shots = tempfile::tempdir().unwrap();
    for lang in [Lang::Ru, Lang::Kk, Lang::En] {
        // The customer's page, opened with the session the client made.
        let url = bank.api(&format!("/enter?token={token}&lang={}", lang.code()));
        let png = shots.path().join(format!("profiles-{}.png", lang.code()));
        let (u, p) = (url.clone(), png.clone());
        let Some(dom) = tokio::task::spawn_blocking(move || chromium(&u, &p))
            .await
            .unwrap()
        else {
            return;
        };
        assert!(
            dom.contains(Status::RegenerationRequired.label(lang)),
            "{lang:?}: {dom}"
        );
        assert!(
            dom.contains(SUBSCRIBER)
                && dom.contains(&profile.identifier)
                && dom.contains("Tumar CSP"),
            "{lang:?}: {dom}"
        );
        assert!(
            dom.contains(lang.pick(
                "Параметры подписи",
                "Қолтаңба параметрлері",
                "Signature parameters"
            )),
            "{lang:?}"
        );
        assert!(
            dom.contains("id=\"banner\""),
            "{lang:?}: the critical banner is missing"
        );
        assert!(
            std::fs::metadata(&png).unwrap().len() > 10_000,
            "{lang:?}: the screenshot is nearly empty"
        );
    }
    // The operator's page with a request at every stage it can show.
    let r: kilt_protocol::bank::Regeneration = bank
        .post(
            &token,
            &format!("/api/v1/profiles/{}/regenerations", profile.identifier),
            serde_json::json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    let new = key();
    let c = csr(&new, SUBSCRIBER);
    bank.post(
        &token,
        &format!("/api/v1/regenerations/{}/submit", r.id),
        serde_json::json!({"csr": c, "signature": sign(&old, &der(&c))}),
    )
    .await;
    for lang in [Lang::Ru, Lang::Kk, Lang::En] {
        let url = bank.admin(&format!("/operator?lang={}", lang.code()));
        let png = shots.path().join(format!("operator-{}.png", lang.code()));
        let (u, p) = (url.clone(), png.clone());
        let dom = tokio::task::spawn_blocking(move || chromium(&u, &p))
            .await
            .unwrap()
            .unwrap();
        assert!(
            dom.contains(Status::AcceptedByBank.label(lang)),
            "{lang:?}: {dom}"
        );
        assert!(
            dom.contains(lang.pick("Одобрить", "Мақұлдау", "Approve")),
            "{lang:?}"
        );
    }
    if let Some(keep) = std::env::var_os("KILT_KEEP_SCREENSHOTS") {
        for entry in std::fs::read_dir(shots.path()).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), Path::new(&keep).join(entry.file_name())).unwrap();
        }
    }
}
