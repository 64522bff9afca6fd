//! A webhook's secret (read, rotated with a 24 h overlap) and unsuspend.

use super::*;

#[tokio::test]
async fn get_secret_returns_the_secret_from_the_create_answer() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s.create_webhook("https://example.com/sec", json!({})).await;
    let (status, sec) = s.get(&format!("{HOOKS}/{}/secret", w["id"])).await;
    assert_eq!(status, 200, "{sec}");
    assert_eq!(sec["secret"], w["secret"]);
    assert!(sec["previous_secret_expires_at"].is_null(), "{sec}");
    // Each webhook has its own secret.
    let other = s
        .create_webhook("https://example.com/sec2", json!({}))
        .await;
    assert_ne!(other["secret"], w["secret"]);
}

#[tokio::test]
async fn rotate_secret_returns_a_new_one_and_the_old_keeps_signing_for_24h() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s.create_webhook("https://example.com/rot", json!({})).await;
    let old = assert_whsec(&w["secret"]);
    let path = format!("{HOOKS}/{}/secret", w["id"]);

    let before = time::OffsetDateTime::now_utc();
    let (status, rotated) = s.post(&format!("{path}/rotate"), json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    let new = assert_whsec(&rotated["secret"]);
    assert_ne!(new, old);
    let until = parse_ts(
        rotated["previous_secret_expires_at"]
            .as_str()
            .expect("expiry set"),
    );
    let expected = before + time::Duration::hours(24);
    assert!(
        (until - expected).abs() < time::Duration::minutes(5),
        "previous secret expires at {until}, expected about {expected}"
    );

    let (status, sec) = s.get(&path).await;
    assert_eq!(status, 200, "{sec}");
    assert_eq!(sec["secret"], new.as_str());
    assert_eq!(
        sec["previous_secret_expires_at"],
        rotated["previous_secret_expires_at"]
    );

    // Rotating with no body at all works too, and gives yet another secret.
    let (status, again) = send(s.req(Method::POST, &format!("{path}/rotate"))).await;
    assert_eq!(status, 200, "{again}");
    let newer = assert_whsec(&again["secret"]);
    assert_ne!(newer, new);
    assert_ne!(newer, old);
    let (_, sec) = s.get(&path).await;
    assert_eq!(sec["secret"], newer.as_str());
}

#[tokio::test]
async fn secret_and_rotate_of_unknown_webhook_are_404() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (status, ct, problem) = full(s.req(Method::GET, &format!("{HOOKS}/4242/secret"))).await;
    assert_problem(status, &ct, &problem, 404);
    let (status, ct, problem) =
        full(s.req(Method::POST, &format!("{HOOKS}/4242/secret/rotate"))).await;
    assert_problem(status, &ct, &problem, 404);
}

#[tokio::test]
async fn rotate_with_invalid_json_is_400_and_keeps_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s.create_webhook("https://example.com/rj", json!({})).await;
    let path = format!("{HOOKS}/{}/secret", w["id"]);
    let (status, ct, problem) = raw(&s, Method::POST, &format!("{path}/rotate"), "{").await;
    assert_problem(status, &ct, &problem, 400);
    let (status, ct, problem) =
        raw(&s, Method::POST, &format!("{path}/rotate"), "{\"nope\": 1}").await;
    assert_problem(status, &ct, &problem, 400);
    let (_, sec) = s.get(&path).await;
    assert_eq!(sec["secret"], w["secret"]);
}

#[tokio::test]
async fn unsuspend_answers_200_with_the_webhook_not_suspended() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let w = s.create_webhook("https://example.com/uns", json!({})).await;
    let (status, u) = send(s.req(Method::POST, &format!("{HOOKS}/{}/unsuspend", w["id"]))).await;
    assert_eq!(status, 200, "{u}");
    assert_eq!(u["id"], w["id"]);
    assert_eq!(u["suspended"], false);
    assert!(u["suspended_at"].is_null(), "{u}");
    assert_eq!(u["name"], w["name"]);
    let (status, ct, problem) = full(s.req(Method::POST, &format!("{HOOKS}/999/unsuspend"))).await;
    assert_problem(status, &ct, &problem, 404);
}
