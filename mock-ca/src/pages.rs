//! The CA's web pages, mirroring the main menu of seed 004 (Логин, Пароль, По сертификату,
//! Вход; Русский / English / Қазақша; СОС, Инфо, Новости, Помощь) and a cabinet with the
//! user's certificates and requests.

use std::fmt::Write;

use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use kilt_protocol::Lang;
use kilt_protocol::ca::Device;
use serde::Deserialize;

use crate::error::{CaError, Result};
use crate::server::{AppState, PeerChain};
use crate::web::{
    LangQuery, RequestForm, blocking, esc, html, page_form, redirect_with_cookie, session_token,
};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(login_page))
        .route("/login", post(login))
        .route("/login/certificate", get(login_certificate))
        .route("/logout", get(logout))
        .route("/cabinet", get(cabinet))
        .route("/cabinet/request", post(request))
        .route("/crl", get(crl_page))
        .route("/help", get(help))
}

fn layout(lang: Lang, path: &str, title: &str, body: &str) -> String {
    let t = |ru, kk, en| lang.pick(ru, kk, en);
    let langs: String = Lang::ALL
        .iter()
        .map(|l| {
            let name = l.pick("Русский", "Қазақша", "English");
            if *l == lang {
                format!("<b>{name}</b>")
            } else {
                format!("<a href=\"{path}?lang={}\">{name}</a>", l.code())
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "<!doctype html><html lang=\"{code}\"><head><meta charset=\"utf-8\"><title>{title} — kilt-ca</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:60em}}nav a,nav b{{margin-right:1em}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:.3em .6em;text-align:left}}\
         .err{{color:#a00}}.ok{{color:#070}}</style></head><body>\
         <nav><a href=\"/crl?lang={code}\">{sos}</a><a href=\"/help?lang={code}\">{info}</a>\
         <span>{news}</span><a href=\"/help?lang={code}\">{help}</a> | {langs}</nav>\
         <p><small>{warn}</small></p><h1>{title}</h1>{body}</body></html>",
        code = lang.code(),
        sos = t("СОС", "КҚТ", "CRL"),
        info = t("Инфо", "Ақпарат", "Info"),
        news = t("Новости", "Жаңалықтар", "News"),
        help = t("Помощь", "Көмек", "Help"),
        warn = t(
            "Тестовый УЦ kilt — не для реальных ключей.",
            "kilt сынақ КО — нақты кілттерге арналмаған.",
            "kilt test CA — not for real keys.",
        ),
    )
}

fn login_form(lang: Lang, error: Option<&str>) -> String {
    let t = |ru, kk, en| lang.pick(ru, kk, en);
    let error = error
        .map(|e| format!("<p class=\"err\" id=\"error\">{}</p>", esc(e)))
        .unwrap_or_default();
    let body = format!(
        "{error}<form method=\"post\" action=\"/login?lang={code}\">\
         <p><label>{login} <input name=\"login\" autocomplete=\"username\"></label></p>\
         <p><label>{password} <input name=\"password\" type=\"password\" autocomplete=\"current-password\"></label></p>\
         <p><label><input type=\"checkbox\" name=\"by_certificate\" value=\"on\"> {bycert}</label></p>\
         <p><button type=\"submit\">{enter}</button></p></form>\
         <p><a id=\"by-certificate\" href=\"/login/certificate?lang={code}\">{bycert_link}</a></p>\
         <p><span>{register}</span> · <span>{restore}</span></p>",
        code = lang.code(),
        login = t("Логин", "Логин", "Login"),
        password = t("Пароль", "Құпиясөз", "Password"),
        bycert = t("По сертификату", "Сертификат бойынша", "By certificate"),
        bycert_link = t(
            "Войти по сертификату",
            "Сертификатпен кіру",
            "Sign in by certificate"
        ),
        enter = t("Вход", "Кіру", "Sign in"),
        register = t(
            "Дистанционная регистрация",
            "Қашықтан тіркелу",
            "Remote registration"
        ),
        restore = t(
            "Восстановление пароля",
            "Құпиясөзді қалпына келтіру",
            "Password recovery"
        ),
    );
    layout(
        lang,
        "/",
        t("Вход в личный кабинет", "Жеке кабинетке кіру", "Sign in"),
        &body,
    )
}

async fn login_page(Query(q): Query<LangQuery>) -> Response {
    html(StatusCode::OK, login_form(q.lang(), None))
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    by_certificate: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    Query(q): Query<LangQuery>,
    Extension(chain): Extension<PeerChain>,
    form: std::result::Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let lang = q.lang();
    let result = match page_form(form) {
        Ok(form) if form.by_certificate.is_some() => {
            crate::web::login_by_certificate(&state, chain).await
        }
        Ok(form) => {
            blocking(&state, move |ca| {
                ca.login_password(&form.login, &form.password)
            })
            .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(session) => redirect_with_cookie(
            &format!("/cabinet?lang={}", lang.code()),
            &session.token,
            session.expires_in,
        ),
        Err(e) => html(e.status_code().0, login_form(lang, Some(&e.to_string()))),
    }
}

/// «По сертификату» as a link: the browser's TLS client certificate logs in and the cabinet
/// opens; a refusal shows the login page with the reason.
async fn login_certificate(
    State(state): State<AppState>,
    Query(q): Query<LangQuery>,
    Extension(chain): Extension<PeerChain>,
) -> Response {
    let lang = q.lang();
    match crate::web::login_by_certificate(&state, chain).await {
        Ok(session) => redirect_with_cookie(
            &format!("/cabinet?lang={}", lang.code()),
            &session.token,
            session.expires_in,
        ),
        Err(e) => html(e.status_code().0, login_form(lang, Some(&e.to_string()))),
    }
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Response {
    if let Some(token) = session_token(&headers, crate::web::SESSION_COOKIE) {
        let _ = blocking(&state, move |ca| ca.logout(&token)).await;
    }
    let mut resp = axum::response::IntoResponse::into_response(Redirect::to(&format!(
        "/?lang={}",
        q.lang().code()
    )));
    resp.headers_mut().insert(
        axum::http::header::SET_COOKIE,
        axum::http::HeaderValue::from_static("kilt_ca_session=; Path=/; Max-Age=0"),
    );
    resp
}

async fn cabinet(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Response {
    let lang = q.lang();
    match cabinet_html(&state, &headers, lang, None).await {
        Ok(page) => html(StatusCode::OK, page),
        Err(e) => html(e.status_code().0, login_form(lang, Some(&e.to_string()))),
    }
}

async fn cabinet_html(
    state: &AppState,
    headers: &HeaderMap,
    lang: Lang,
    notice: Option<(&str, bool)>,
) -> Result<String> {
    let token = session_token(headers, crate::web::SESSION_COOKIE)
        .ok_or_else(|| CaError::Unauthenticated("log in first".into()))?;
    let (account, certs, requests) = blocking(state, move |ca| {
        let account = ca.session(&token)?;
        let certs = ca.certificates(&account)?;
        let requests = ca.requests(Some(&account))?;
        Ok((account, certs, requests))
    })
    .await?;
    let t = |ru, kk, en| lang.pick(ru, kk, en);
    let mut body = String::new();
    if let Some((text, ok)) = notice {
        let _ = write!(
            body,
            "<p class=\"{}\" id=\"notice\">{}</p>",
            if ok { "ok" } else { "err" },
            esc(text)
        );
    }
    let _ = write!(
        body,
        "<p>{}: <b>{}</b> ({} {}) · <a href=\"/logout?lang={}\">{}</a></p><h2>{}</h2>\
         <table id=\"certificates\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        t("Пользователь", "Пайдаланушы", "User"),
        esc(&account.user.full_name),
        t("ИИН", "ЖСН", "IIN"),
        esc(&account.user.iin),
        lang.code(),
        t("Выход", "Шығу", "Sign out"),
        t("Сертификаты", "Сертификаттар", "Certificates"),
        t("Назначение", "Мақсаты", "Purpose"),
        t("Серийный номер", "Сериялық нөмірі", "Serial number"),
        t("Действителен с", "Басталуы", "Valid from"),
        t("по", "аяқталуы", "to"),
        t("Статус", "Күйі", "Status"),
    );
    for c in &certs {
        let _ = write!(
            body,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            c.kind.label(lang),
            c.serial,
            c.not_before,
            c.not_after,
            c.status.label(lang)
        );
    }
    let _ = write!(
        body,
        "</table><h2>{}</h2><table id=\"requests\"><tr><th>№</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        t("Запросы", "Сұраулар", "Requests"),
        t("Устройство", "Құрылғы", "Device"),
        t("Дата", "Күні", "Date"),
        t("Статус", "Күйі", "Status"),
        t("Заявление", "Өтініш", "Application"),
    );
    for r in &requests {
        let pdf = if r.status == kilt_protocol::ca::RequestStatus::Issued {
            format!(
                "<a href=\"/api/v1/requests/{}/application.pdf?lang={}\">PDF</a>",
                r.id,
                lang.code()
            )
        } else {
            r.reason.as_deref().map(esc).unwrap_or_default()
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"status\">{}</td><td>{}</td></tr>",
            r.id,
            r.device.name(),
            r.created,
            r.status.label(lang),
            pdf
        );
    }
    let devices: String = Device::ALL
        .iter()
        .map(|d| format!("<option>{}</option>", d.name()))
        .collect();
    let _ = write!(
        body,
        "</table><h2>{title}</h2><form method=\"post\" action=\"/cabinet/request?lang={code}\">\
         <p><label>{device} <select name=\"device\">{devices}</select></label></p>\
         <p><label>{auth} (PKCS#10 PEM)<br><textarea name=\"auth_csr\" rows=\"6\" cols=\"70\"></textarea></label></p>\
         <p><label>{sign} (PKCS#10 PEM)<br><textarea name=\"sign_csr\" rows=\"6\" cols=\"70\"></textarea></label></p>\
         <p><button type=\"submit\">{send}</button></p></form>",
        title = t(
            "Запрос на выпуск сертификата",
            "Сертификат шығаруға сұрау",
            "Certificate request"
        ),
        code = lang.code(),
        device = t("Устройство", "Құрылғы", "Device"),
        auth = t("Аутентификация", "Аутентификация", "Authentication"),
        sign = t("Подпись", "Қолтаңба", "Signing"),
        send = t("Отправить", "Жіберу", "Send"),
    );
    Ok(layout(
        lang,
        "/cabinet",
        t("Личный кабинет", "Жеке кабинет", "Cabinet"),
        &body,
    ))
}

async fn request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
    form: std::result::Result<Form<RequestForm>, FormRejection>,
) -> Response {
    let lang = q.lang();
    let outcome = async {
        let token = session_token(&headers, crate::web::SESSION_COOKIE)
            .ok_or_else(|| CaError::Unauthenticated("log in first".into()))?;
        let request = page_form(form)?.into_request()?;
        blocking(&state, move |ca| {
            let account = ca.session(&token)?;
            ca.submit(&account, &request)
        })
        .await
    }
    .await;
    let (notice, status) = match &outcome {
        Ok(r) => (
            format!("№{}: {}", r.id, r.status.label(lang)),
            StatusCode::OK,
        ),
        Err(e) => (e.to_string(), e.status_code().0),
    };
    match cabinet_html(&state, &headers, lang, Some((&notice, outcome.is_ok()))).await {
        Ok(page) => html(status, page),
        Err(e) => html(e.status_code().0, login_form(lang, Some(&e.to_string()))),
    }
}

async fn crl_page(Query(q): Query<LangQuery>) -> Response {
    let lang = q.lang();
    let t = |ru, kk, en| lang.pick(ru, kk, en);
    let body = format!(
        "<p>{}</p><p><a href=\"/crl/issuing.crl\">issuing.crl</a> · <a href=\"/ca/issuing.crt\">issuing.crt</a> · \
         <a href=\"/ca/root.crt\">root.crt</a></p>",
        t(
            "Список отозванных сертификатов (СОС) издающего УЦ, формат DER (RFC 5280).",
            "Шығарушы КО кері қайтарылған сертификаттар тізімі, DER пішімі (RFC 5280).",
            "The issuing CA's certificate revocation list, DER (RFC 5280).",
        )
    );
    html(
        StatusCode::OK,
        layout(lang, "/crl", t("СОС", "КҚТ", "CRL"), &body),
    )
}

async fn help(Query(q): Query<LangQuery>) -> Response {
    let lang = q.lang();
    let t = |ru, kk, en| lang.pick(ru, kk, en);
    let body = format!(
        "<ol><li>{}</li><li>{}</li><li>{}</li><li>{}</li></ol><p><a href=\"/openapi.json\">OpenAPI</a></p>",
        t(
            "Подключите токен JaCarta.",
            "JaCarta токенін қосыңыз.",
            "Plug in the JaCarta token."
        ),
        t(
            "Отметьте «По сертификату» и нажмите «Вход»; выберите верхний сертификат.",
            "«Сертификат бойынша» белгілеп, «Кіру» басыңыз; жоғарғы сертификатты таңдаңыз.",
            "Tick \"By certificate\" and press \"Sign in\"; choose the upper certificate."
        ),
        t(
            "Нажмите «Запрос на выпуск сертификата», устройство — JaCarta.",
            "«Сертификат шығаруға сұрау» басыңыз, құрылғы — JaCarta.",
            "Press \"Certificate request\", device JaCarta."
        ),
        t(
            "Сохраните заявление (PDF) и отправьте его в банк.",
            "Өтінішті (PDF) сақтап, банкке жіберіңіз.",
            "Save the application (PDF) and send it to the bank."
        ),
    );
    html(
        StatusCode::OK,
        layout(lang, "/help", t("Помощь", "Көмек", "Help"), &body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(esc("ТЕСТОВ ТЕСТ"), "ТЕСТОВ ТЕСТ");
    }

    #[test]
    fn the_login_page_has_the_seed_menu_in_every_language() {
        for (lang, words) in [
            (
                Lang::Ru,
                ["Логин", "Пароль", "По сертификату", "Вход", "СОС", "Помощь"],
            ),
            (
                Lang::En,
                [
                    "Login",
                    "Password",
                    "By certificate",
                    "Sign in",
                    "CRL",
                    "Help",
                ],
            ),
            (
                Lang::Kk,
                [
                    "Логин",
                    "Құпиясөз",
                    "Сертификат бойынша",
                    "Кіру",
                    "КҚТ",
                    "Көмек",
                ],
            ),
        ] {
            let page = login_form(lang, None);
            for word in words {
                assert!(page.contains(word), "{lang:?} page lacks {word}");
            }
            assert!(
                page.contains("Русский") && page.contains("English") && page.contains("Қазақша")
            );
        }
    }
}
