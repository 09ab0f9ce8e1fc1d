//! The client's HTTP layer behind `wiremock` (and a socket that hangs up): 503s and slow
//! answers are retried with backoff, a server that keeps failing or drops every connection
//! gives one clear error, and refusals and malformed bodies are not retried.

use std::time::Duration;

use kilt_client::ClientError;
use kilt_client::api::{Api, Retry, http_client, tls_trusting};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn retry() -> Retry {
    Retry {
        attempts: 4,
        first_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(80),
        timeout: Duration::from_millis(400),
    }
}

fn api(base: &str) -> Api {
    let retry = retry();
    Api::new(
        "bank",
        base,
        http_client(tls_trusting(&[]).unwrap(), retry),
        retry,
    )
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn two_503s_then_success_is_three_requests_and_a_result() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/challenge"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "0"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/challenge"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"challenge": "ab", "expires_in": 120})),
        )
        .mount(&server)
        .await;
    let c: kilt_protocol::bank::Challenge = api(&server.uri())
        .post(
            "the challenge",
            "/api/v1/challenge",
            &serde_json::json!({"profile": "X"}),
        )
        .await
        .unwrap();
    assert_eq!(c.challenge, "ab");
    assert_eq!(requests(&server).await, 3);
}

#[tokio::test]
async fn a_server_that_keeps_failing_gives_one_clear_error_after_the_tries() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(503).set_body_json(
                serde_json::json!({"error": "unavailable", "message": "maintenance"}),
            ),
        )
        .mount(&server)
        .await;
    let e = api(&server.uri())
        .get::<serde_json::Value>("the profiles", "/api/v1/profiles")
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Unreachable { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("cannot reach the bank"), "{text}");
    assert!(text.contains("503 maintenance (after 4 tries)"), "{text}");
    assert!(text.contains("the journal resumes"), "{text}");
    assert_eq!(requests(&server).await, 4);
}

#[tokio::test]
async fn slow_answers_time_out_and_are_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!([]))
                .set_delay(Duration::from_secs(3)),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([1, 2])))
        .mount(&server)
        .await;
    let v: Vec<u32> = api(&server.uri())
        .get("the profiles", "/api/v1/profiles")
        .await
        .unwrap();
    assert_eq!(v, [1, 2]);
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn refusals_and_malformed_bodies_are_not_retried() {
    let server = MockServer::start().await;
    Mock::given(path("/refused"))
        .respond_with(ResponseTemplate::new(409).set_body_json(
            serde_json::json!({"error": "conflict", "message": "regeneration 7 is already \"Принят банком\""}),
        ))
        .mount(&server)
        .await;
    Mock::given(path("/garbage"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>proxy error</html>"))
        .mount(&server)
        .await;
    let a = api(&server.uri());
    let e = a
        .get::<serde_json::Value>("the request", "/refused")
        .await
        .unwrap_err();
    match &e {
        ClientError::Refused {
            status, message, ..
        } => {
            assert_eq!(*status, 409);
            assert!(message.contains("Принят банком"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let e = a
        .get::<kilt_protocol::bank::Regeneration>("the regeneration", "/garbage")
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Malformed { .. }), "{e:?}");
    assert!(e.to_string().contains("unreadable body"), "{e}");
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn dropped_connections_are_retried_then_reported() {
    // A server that accepts and hangs up at once, counting the connections.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(sock);
        }
    });
    let e = api(&format!("http://{addr}"))
        .get::<serde_json::Value>("the profiles", "/api/v1/profiles")
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Unreachable { .. }), "{e:?}");
    assert!(e.to_string().contains("after 4 tries"), "{e}");
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 4);
}
