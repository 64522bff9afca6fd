//! OAuth2 client credentials: the token is fetched once and shared, sent
//! as a bearer token the receiver checks, refreshed once on a 401 and
//! shortly before it expires; a failing token endpoint is an attempt of
//! error kind `auth`, retried on the schedule; token requests obey the
//! outbound address policy.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{WAIT, assert_hidden, attempts, publish, server, wait_delivery, wait_status};
use crate::common::ServerConfig;
use crate::common::oauth_server::OAuthServer;

const CLIENT_ID: &str = "hookd-client";
const CLIENT_SECRET: &str = "cs_9f3b2a77e1d04c5b8a6e";

fn auth(token_url: &str) -> serde_json::Value {
    json!({
        "type": "oauth2_client_credentials",
        "token_url": token_url,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scope": "webhooks:receive",
        "audience": "https://receiver.example.test",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_deliveries_share_one_token_while_it_lives() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let o = OAuthServer::start(CLIENT_ID, CLIENT_SECRET, Some(3600)).await;
    s.create_webhook(&o.url("/hook"), json!({"auth": auth(&o.url("/token"))}))
        .await;

    const N: usize = 10_000;
    let started = Instant::now();
    for _ in 0..N / 1000 {
        let events: Vec<_> = (0..1000)
            .map(|i| json!({"type": "license.created", "data": {"i": i}}))
            .collect();
        let (status, b) = s
            .post("/v1/events/batch", json!({ "events": events }))
            .await;
        assert_eq!(status, 202, "{b}");
    }
    let deadline = Instant::now() + Duration::from_secs(240);
    while o.accepted() < N {
        assert!(
            Instant::now() < deadline,
            "{} of {N} deliveries accepted; token requests: {}",
            o.accepted(),
            o.token_requests().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    let requests = o.token_requests();
    println!(
        "measured: {N} OAuth2 deliveries in {elapsed:?} ({:.0}/s), {} token request(s), {} refused",
        N as f64 / elapsed.as_secs_f64(),
        requests.len(),
        o.hooks().len() - o.accepted()
    );
    assert_eq!(requests.len(), 1, "one token for all deliveries");
    assert_eq!(o.hooks().len(), N, "no delivery was refused or repeated");
    // The request itself: client credentials by Basic, scope and audience
    // as form fields.
    let r = &requests[0];
    assert_eq!(
        r.client,
        Some((CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned()))
    );
    assert_eq!(r.form["grant_type"], "client_credentials");
    assert_eq!(r.form["scope"], "webhooks:receive");
    assert_eq!(r.form["audience"], "https://receiver.example.test");
    assert!(!r.form.contains_key("client_secret"), "{:?}", r.form);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_refreshed_once_and_the_attempt_goes_through() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let o = OAuthServer::start(CLIENT_ID, CLIENT_SECRET, Some(3600)).await;
    s.create_webhook(&o.url("/hook"), json!({"auth": auth(&o.url("/token"))}))
        .await;
    let first = publish(&s).await;
    wait_status(&s, &first, "succeeded").await;
    assert_eq!(o.token_requests().len(), 1);

    // The authorization server forgets its tokens: the receiver refuses
    // the cached one, hookd gets a new one and tries again, once.
    o.revoke_all();
    let second = publish(&s).await;
    let d = wait_status(&s, &second, "succeeded").await;
    assert_eq!(attempts(&d).len(), 1, "one attempt, refreshed inside: {d}");
    assert_eq!(o.token_requests().len(), 2);
    let hooks = o.hooks();
    let statuses: Vec<u16> = hooks.iter().map(|h| h.status).collect();
    assert_eq!(statuses, vec![200, 401, 200], "{hooks:?}");
    assert_ne!(hooks[1].authorization, hooks[2].authorization);

    // A receiver that refuses every token gets two tries per attempt,
    // not a loop.
    let s2dir = tempfile::tempdir().unwrap();
    let s2 = ServerConfig::new(s2dir.path())
        .arg("--allow-private-targets")
        .start()
        .await;
    let wrong = OAuthServer::start(CLIENT_ID, CLIENT_SECRET, Some(3600)).await;
    // Tokens from one server, checked by another: always 401.
    s2.create_webhook(
        &wrong.url("/hook"),
        json!({"auth": auth(&o.url("/token")), "retry_schedule": []}),
    )
    .await;
    let third = publish(&s2).await;
    let d = wait_status(&s2, &third, "failed").await;
    assert_eq!(attempts(&d)[0]["response_status"], 401, "{d}");
    assert_eq!(wrong.hooks().len(), 2, "{:?}", wrong.hooks());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_token_endpoint_is_an_auth_attempt_retried_on_the_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let o = OAuthServer::start(CLIENT_ID, CLIENT_SECRET, Some(3600)).await;
    o.fail_next(&[503]);
    s.create_webhook(
        &o.url("/hook"),
        json!({"auth": auth(&o.url("/token")), "retry_schedule": ["200ms"]}),
    )
    .await;
    let event = publish(&s).await;
    let d = wait_delivery(&s, &event, |d| attempts(d).len() == 2).await;
    assert_eq!(d["status"], "succeeded", "{d}");
    let a = attempts(&d);
    assert_eq!(a[0]["error_kind"], "auth", "{d}");
    assert!(a[0]["response_status"].is_null(), "{d}");
    let error = a[0]["error"].as_str().unwrap();
    assert!(error.contains("503"), "{error}");
    assert!(a[1]["error_kind"].is_null(), "{d}");
    // The receiver saw only the attempt that had a token.
    assert_eq!(o.hooks().len(), 1);
    assert_eq!(o.token_requests().len(), 2);
    // Neither the client secret nor the token is in the record.
    let token = o.hooks()[0].authorization.clone().unwrap();
    let token = token.strip_prefix("Bearer ").unwrap();
    assert_hidden(
        &d.to_string(),
        &[CLIENT_SECRET, token],
        "the attempt record",
    );
    assert_eq!(
        a[1]["request_headers"]["authorization"], "[redacted]",
        "{d}"
    );

    // A wrong client secret is refused by the token endpoint: also `auth`.
    let w = s
        .create_webhook(
            &o.url("/other"),
            json!({"auth": {
                "type": "oauth2_client_credentials",
                "token_url": o.url("/token"),
                "client_id": CLIENT_ID,
                "client_secret": "wrong",
            }, "retry_schedule": []}),
        )
        .await;
    let (status, t) = s
        .post(&format!("/management/webhooks/{}/test", w["id"]), json!({}))
        .await;
    assert_eq!(status, 202, "{t}");
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, list) = s
            .get(&format!(
                "/management/deliveries?webhook_id={}&status=failed",
                w["id"]
            ))
            .await;
        if let Some(id) = list["data"][0]["id"].as_i64() {
            let (_, d) = s.get(&format!("/management/deliveries/{id}")).await;
            assert_eq!(attempts(&d)[0]["error_kind"], "auth", "{d}");
            assert!(
                attempts(&d)[0]["error"]
                    .as_str()
                    .unwrap()
                    .contains("invalid_client"),
                "{d}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{list}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_requests_obey_the_outbound_address_policy() {
    let dir = tempfile::tempdir().unwrap();
    // Deliveries may reach 127.0.0.1 only; the token endpoint is on 127.0.0.2.
    let s = ServerConfig::new(dir.path())
        .arg("--allowed-target-cidrs")
        .arg("127.0.0.1/32")
        .start()
        .await;
    let receiver = OAuthServer::start(CLIENT_ID, CLIENT_SECRET, Some(3600)).await;
    let elsewhere = OAuthServer::start_on("127.0.0.2", CLIENT_ID, CLIENT_SECRET, Some(3600)).await;
    s.create_webhook(
        &receiver.url("/hook"),
        json!({"auth": auth(&elsewhere.url("/token")), "retry_schedule": []}),
    )
    .await;
    let event = publish(&s).await;
    let d = wait_status(&s, &event, "failed").await;
    let a = &attempts(&d)[0];
    assert_eq!(a["error_kind"], "auth", "{d}");
    assert!(
        a["error"].as_str().unwrap().contains("outbound safety"),
        "{d}"
    );
    assert!(elsewhere.token_requests().is_empty());
    assert!(receiver.hooks().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_replaced_shortly_before_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let (s, clock) = ServerConfig::new(dir.path())
        .arg("--allow-private-targets")
        .start_in_process()
        .await;
    let o = OAuthServer::start(CLIENT_ID, CLIENT_SECRET, Some(3600)).await;
    s.create_webhook(&o.url("/hook"), json!({"auth": auth(&o.url("/token"))}))
        .await;
    let first = publish(&s).await;
    wait_status(&s, &first, "succeeded").await;
    // Most of an hour later the token is still used…
    clock.advance(Duration::from_secs(3000));
    let second = publish(&s).await;
    wait_status(&s, &second, "succeeded").await;
    assert_eq!(o.token_requests().len(), 1);
    // …and within its last 30 s it is replaced before the receiver would
    // refuse it.
    clock.advance(Duration::from_secs(580));
    let third = publish(&s).await;
    wait_status(&s, &third, "succeeded").await;
    assert_eq!(o.token_requests().len(), 2);
    let hooks = o.hooks();
    assert!(hooks.iter().all(|h| h.status == 200), "{hooks:?}");
    assert_ne!(hooks[1].authorization, hooks[2].authorization);
}
