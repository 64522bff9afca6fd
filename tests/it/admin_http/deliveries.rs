//! The delivery log: its chart, a delivery's page, retry, and unsuspend
//! before retry.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_log_chart_detail_and_retry() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    r.script("/fails", vec![Reply::Status(500)]);
    let w = s
        .create_webhook(
            &r.url("/fails"),
            json!({"name": "flaky-crm", "retry_schedule": []}),
        )
        .await;
    let wid = w["id"].as_i64().unwrap();
    let admin = sign_in(&s, MGMT_KEY, "").await;
    let empty = admin.page("/admin/deliveries").await;
    assert!(empty.contains("No deliveries match."), "{empty}");
    assert_eq!(legend_count(&empty, "failed"), 0);

    publish(&s, "default", "license.created").await;
    let d = wait_delivery(&s, "default", "failed", |d| d["status"] == "failed").await;
    let id = d["id"].as_i64().unwrap();
    assert_eq!(d["response_status"], 500, "{d}");

    let log = admin.page("/admin/deliveries").await;
    assert_eq!(row_ids(&log, "delivery"), vec![id]);
    let row = delivery_row(&log, id);
    assert!(
        row.contains("<span class=\"badge failed\">Failed</span>"),
        "{row}"
    );
    assert!(row.contains("<td class=\"num\">500</td>"), "{row}");
    assert!(row.contains("flaky-crm"), "{row}");
    assert!(row.contains(">license.created</code>"), "{row}");
    assert!(log.contains("<svg"), "no chart:\n{log}");
    assert!(
        log.contains("<rect class=\"bar failed\""),
        "no failed bar:\n{log}"
    );
    assert_eq!(legend_count(&log, "failed"), 1);
    assert_eq!(legend_count(&log, "succeeded"), 0);
    // Filters.
    let failed = admin
        .page(&format!("/admin/deliveries?status=failed&webhook_id={wid}"))
        .await;
    assert_eq!(row_ids(&failed, "delivery"), vec![id]);
    let succeeded = admin.page("/admin/deliveries?status=succeeded").await;
    assert!(row_ids(&succeeded, "delivery").is_empty(), "{succeeded}");
    for range in ["1h", "24h", "7d"] {
        let page = admin
            .page(&format!("/admin/deliveries?range={range}"))
            .await;
        assert_eq!(legend_count(&page, "failed"), 1, "range {range}");
    }

    // The detail page shows the attempt.
    let detail_path = format!("/admin/deliveries/{id}");
    let detail = admin.page(&detail_path).await;
    assert!(
        detail.contains("<span class=\"badge failed\" id=\"delivery-status\">Failed</span>"),
        "{detail}"
    );
    let attempts = &detail[detail.find("id=\"attempts\"").expect("attempts table")..];
    assert!(attempts.contains("<td class=\"num\">1</td>"), "{attempts}");
    assert!(attempts.contains(&r.url("/fails")), "{attempts}");
    assert!(
        attempts.contains("<td class=\"num\">500</td>"),
        "{attempts}"
    );
    assert!(attempts.contains("scripted"), "response body not shown");
    assert!(!attempts.contains("<td class=\"num\">2</td>"), "{attempts}");

    // Retry: another attempt, which succeeds (the script ran out).
    let retry = format!("/admin/deliveries/{id}/retry");
    let fields = form_fields(&detail, &retry);
    assert_eq!(value_of(&fields, "csrf_token"), Some(admin.csrf.as_str()));
    let p = admin.post_raw(&retry, &fields, &[]).await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location(), format!("/admin/deliveries/{id}?done=retried"));
    r.wait_for("/fails", 2, WAIT).await;
    let d = wait_delivery(&s, "default", "succeeded", |d| {
        d["id"] == id && d["status"] == "succeeded"
    })
    .await;
    assert_eq!(d["attempt_count"], 2, "{d}");
    let detail = admin.page(&detail_path).await;
    assert!(
        detail.contains("id=\"delivery-status\">Succeeded</span>"),
        "{detail}"
    );
    let attempts = &detail[detail.find("id=\"attempts\"").unwrap()..];
    assert!(attempts.contains("<td class=\"num\">2</td>"), "{attempts}");
    assert!(
        attempts.contains("<td class=\"num\">200</td>"),
        "{attempts}"
    );
    assert_eq!(r.received("/fails").len(), 2);

    // Deliveries that do not exist.
    for path in [
        "/admin/deliveries/999999",
        "/admin/deliveries/abc",
        "/admin/deliveries/0",
        "/admin/deliveries/-1",
    ] {
        admin.get(path).await.assert_error_page(404, path);
    }
    admin
        .post("/admin/deliveries/999999/retry", &Vec::new())
        .await
        .assert_error_page(404, "retry of a missing delivery");
    admin
        .post("/admin/deliveries/abc/retry", &Vec::new())
        .await
        .assert_error_page(404, "retry of delivery abc");
}

#[tokio::test]
async fn a_suspended_webhook_is_unsuspended_before_its_deliveries_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let r = Receiver::start().await;
    r.script("/gone", vec![Reply::Status(410)]);
    let w = s
        .create_webhook(
            &r.url("/gone"),
            json!({"name": "Gone hook", "events": ["license.created"]}),
        )
        .await;
    let id = w["id"].as_i64().unwrap();
    publish(&s, "default", "license.created").await;
    let d = wait_delivery(&s, "default", "diverted by the 410", |d| {
        d["status"] == "diverted"
    })
    .await;
    let delivery = d["id"].as_i64().unwrap();
    assert_eq!(webhook(&s, "default", id).await.1["suspended"], true);

    let admin = sign_in(&s, MGMT_KEY, "").await;
    let list = admin.page("/admin/webhooks").await;
    assert!(
        find_form(&list, &format!("/admin/webhooks/{id}/unsuspend")).is_some(),
        "the suspended row offers Unsuspend"
    );
    // Retrying would only divert it again: refused, saying why.
    let p = admin
        .post(&format!("/admin/deliveries/{delivery}/retry"), &pairs(&[]))
        .await;
    p.assert_error_page(409, "retry while suspended");
    assert!(p.body.contains("Unsuspend it first"), "{}", p.body);

    let unsuspend = format!("/admin/webhooks/{id}/unsuspend");
    let p = admin
        .post_raw(&unsuspend, &form_fields(&list, &unsuspend), &[])
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(
        p.location(),
        format!("/admin/webhooks?done=unsuspended#toggle-{id}")
    );
    assert_eq!(webhook(&s, "default", id).await.1["suspended"], false);
    let p = admin
        .post(&format!("/admin/deliveries/{delivery}/retry"), &pairs(&[]))
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    wait_delivery(&s, "default", "retried to success", |d| {
        d["id"] == delivery && d["status"] == "succeeded"
    })
    .await;
}
