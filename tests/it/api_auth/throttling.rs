//! SPEC §14: repeated wrong API keys from one client are answered 429
//! (problem+json, `Retry-After`) after a burst of 10, refilled one per
//! 6 s; a key that already authenticated from that client, and every other
//! client, keep passing. In-process: the clock moves instead of sleeping.

use std::net::IpAddr;
use std::time::Duration;

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn repeated_bad_keys_are_answered_429_with_retry_after_while_valid_keys_pass() {
    let dir = tempfile::tempdir().unwrap();
    let (s, clock) = ServerConfig::new(dir.path()).start_in_process().await;
    let reader = s.api_key("default", &["webhooks:list"]).await;
    let status_of = |key: &str| {
        let rb = s.req_as(key, Method::GET, HOOKS);
        async move { rb.send().await.unwrap().status().as_u16() }
    };

    // A failure, then the management key authenticates from this client.
    assert_eq!(status_of("hk_wrong_0").await, 401);
    assert_eq!(status_of(MGMT_KEY).await, 200);
    // The rest of the burst of 10, on the management API and publishing.
    for i in 1..10 {
        let (status, body) = send(
            s.req_as(&format!("hk_wrong_{i}"), Method::POST, "/v1/events")
                .json(&json!({"type": "a.b", "data": {}})),
        )
        .await;
        assert_eq!(status, 401, "failure {i}: {body}");
    }

    // The 11th: 429, problem+json, with the wait until the next try.
    let (status, ct, body) = full(
        s.req_as("hk_wrong_10", Method::POST, "/v1/events")
            .json(&json!({"type": "a.b", "data": {}})),
    )
    .await;
    assert_problem(status, &ct, &body, 429);
    assert!(
        body["detail"].as_str().unwrap().contains("try again"),
        "{body}"
    );
    let r = s
        .req_as("hk_wrong_11", Method::GET, HOOKS)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "6");

    // A key that authenticated from this client still passes...
    assert_eq!(status_of(MGMT_KEY).await, 200);
    // ...a key not seen from it is not even checked...
    assert_eq!(status_of(&reader).await, 429);
    // ...and another client has a budget of its own.
    let other = reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let from_other = |key: &str| {
        let rb = other.get(s.url(HOOKS)).bearer_auth(key);
        async move { rb.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(from_other(&reader).await, 200);
    assert_eq!(from_other("hk_wrong_other").await, 401);

    // 6 s later a key is checked again: a valid one passes (spending
    // nothing), one more failure is allowed, then 429 again.
    clock.advance(Duration::from_secs(6));
    assert_eq!(status_of(&reader).await, 200);
    assert_eq!(status_of("hk_wrong_12").await, 401);
    assert_eq!(status_of("hk_wrong_13").await, 429);
    // Once the budget is whole again, the whole burst is allowed.
    clock.advance(Duration::from_secs(60));
    for i in 0..10 {
        assert_eq!(status_of(&format!("hk_again_{i}")).await, 401);
    }
    assert_eq!(status_of("hk_again_10").await, 429);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_without_a_key_spends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _clock) = ServerConfig::new(dir.path()).start_in_process().await;
    for _ in 0..20 {
        let r = s.client.get(s.url(HOOKS)).send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
    assert_eq!(
        s.req_as(MGMT_KEY, Method::GET, HOOKS)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        s.req_as("hk_wrong", Method::GET, HOOKS)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_used_before_a_flood_of_bad_keys_keeps_passing() {
    let dir = tempfile::tempdir().unwrap();
    let s = ServerConfig::new(dir.path()).start().await;
    // The management key works from this address before any failure.
    assert_eq!(s.get(HOOKS).await.0, 200);
    for i in 0..20 {
        let status = s
            .req_as(&format!("hk_wrong_{i}"), Method::GET, HOOKS)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert!(status == 401 || status == 429, "{status}");
    }
    // Throttled for unknown keys, not for the key already at work here.
    assert_eq!(
        s.req_as("hk_wrong_x", Method::GET, HOOKS)
            .send()
            .await
            .unwrap()
            .status(),
        429
    );
    let (status, body) = s
        .post("/v1/events", json!({"type": "license.created", "data": {}}))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(s.get(HOOKS).await.0, 200);
}
