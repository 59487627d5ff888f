//! Donations and cosmetics end to end, on both store backends, against a
//! local fake of Stripe's API and webhooks signed with Stripe's real scheme.

mod common;

use common::*;
use http_api::payments::fake::{FAKE_SECRET_KEY, FakeStripe};
use serde_json::{Value, json};

const WHSEC: &str = "whsec_test_trespasser_0123456789";

async fn start(backend: Backend, fake: &FakeStripe, extra: &[&str]) -> Option<TestApi> {
    let base = fake.base_url();
    let mut args = vec![
        "--stripe-secret-key",
        FAKE_SECRET_KEY,
        "--stripe-webhook-secret",
        WHSEC,
        "--stripe-api-base",
        &base,
        "--admins",
        "boss",
    ];
    args.extend_from_slice(extra);
    TestApi::start(backend, &args).await
}

async fn webhook(t: &TestApi, event: &Value, secret: &str) -> (u16, Value) {
    let (body, header) = FakeStripe::signed(event, secret);
    let resp = t
        .client
        .post(t.url("/v1/webhooks/stripe"))
        .header("content-type", "application/json")
        .header("stripe-signature", header)
        .body(body)
        .send()
        .await
        .unwrap();
    respond(resp).await
}

fn token(v: &Value) -> &str {
    v["access_token"].as_str().unwrap()
}

async fn donation_flow(backend: Backend) {
    let fake = FakeStripe::start().await;
    let Some(t) = start(backend, &fake, &[]).await else { return };
    let donor = t.register("donor_one").await;
    let other = t.register("other_one").await;

    // Checkout goes to Stripe with the account in the metadata.
    let (status, checkout) = t.post("/v1/donations/checkout", json!({}), Some(token(&donor))).await;
    assert_eq!(status, 201, "{checkout}");
    assert!(checkout["checkout_url"].as_str().unwrap().starts_with("https://checkout.stripe.com/"));
    assert_eq!((checkout["amount_cents"].as_i64(), checkout["currency"].as_str()), (Some(500), Some("usd")));
    let session = fake.sessions().pop().unwrap();
    assert_eq!(session.amount_cents, 500);
    assert_eq!(session.metadata.get("account_id").map(String::as_str), donor["account_id"].as_str());

    // Before paying, supporter items cannot be equipped.
    let (status, e) =
        t.put("/v1/me/loadout", json!({"badge": "supporter", "name_color": "gold"}), Some(token(&donor))).await;
    assert_eq!((status, e["code"].as_str()), (403, Some("COSMETIC_NOT_OWNED")));
    let (status, _) = t.put("/v1/me/loadout", json!({"name_color": "red"}), Some(token(&donor))).await;
    assert_eq!(status, 200, "free colors are owned by everyone");

    // Bad signatures change nothing.
    let completed = fake.completed_event(&session);
    assert_eq!(webhook(&t, &completed, "whsec_wrong").await.0, 400);
    let (mut body, header) = FakeStripe::signed(&completed, WHSEC);
    body.extend_from_slice(b" ");
    let resp =
        t.client.post(t.url("/v1/webhooks/stripe")).header("stripe-signature", header).body(body).send().await.unwrap();
    assert_eq!(resp.status(), 400, "a tampered body is refused");
    let (body, stale) = FakeStripe::signed_at(&completed, WHSEC, chrono::Utc::now().timestamp() - 600);
    let resp =
        t.client.post(t.url("/v1/webhooks/stripe")).header("stripe-signature", stale).body(body).send().await.unwrap();
    assert_eq!(resp.status(), 400, "a stale timestamp is refused");
    let resp = t.client.post(t.url("/v1/webhooks/stripe")).body(completed.to_string()).send().await.unwrap();
    assert_eq!(resp.status(), 400, "an unsigned event is refused");
    let (_, mine) = t.get("/v1/me/donations", Some(token(&donor))).await;
    assert_eq!(mine["donations"][0]["status"], "pending");

    // The same event five times grants once.
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        let (status, ack) = webhook(&t, &completed, WHSEC).await;
        assert_eq!(status, 200, "{ack}");
        outcomes.push(ack["outcome"].as_str().unwrap().to_string());
    }
    assert_eq!(outcomes, ["granted", "duplicate", "duplicate", "duplicate", "duplicate"]);
    let (_, mine) = t.get("/v1/me/donations", Some(token(&donor))).await;
    assert_eq!(mine["donations"].as_array().unwrap().len(), 1);
    assert_eq!(mine["donations"][0]["status"], "completed");
    let (_, owned) = t.get("/v1/me/cosmetics", Some(token(&donor))).await;
    let ids: Vec<&str> =
        owned["owned"].as_array().unwrap().iter().map(|o| o["cosmetic"]["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"supporter") && ids.contains(&"gold"), "{ids:?}");

    // Equip; someone who did not donate still cannot.
    let (status, l) =
        t.put("/v1/me/loadout", json!({"badge": "supporter", "name_color": "gold"}), Some(token(&donor))).await;
    assert_eq!(status, 200, "{l}");
    assert_eq!(
        t.get("/v1/me/loadout", Some(token(&donor))).await.1,
        json!({"badge": "supporter", "name_color": "gold"})
    );
    let (status, _) = t.put("/v1/me/loadout", json!({"name_color": "gold"}), Some(token(&other))).await;
    assert_eq!(status, 403);
    let (status, _) = t.put("/v1/me/loadout", json!({"badge": "gold"}), Some(token(&donor))).await;
    assert_eq!(status, 403, "a color is not a badge");

    // Revenue adds up, for admins only.
    let boss = t.register("boss").await;
    let (status, _) = t.get("/v1/admin/revenue", Some(token(&donor))).await;
    assert_eq!(status, 403);
    let (status, rev) = t.get("/v1/admin/revenue", Some(token(&boss))).await;
    assert_eq!(status, 200, "{rev}");
    let usd = &rev["summary"]["currency_totals"][0];
    assert_eq!(
        (usd["gross_cents"].as_i64(), usd["refunded_cents"].as_i64(), usd["net_cents"].as_i64()),
        (Some(500), Some(0), Some(500))
    );
    assert_eq!(rev["summary"]["donors"], 1);
    assert_eq!(rev["break_even"]["donors_needed_per_month"], 500);

    // A full refund revokes the supporter items (policy: revoke) and unequips them.
    let (status, ack) = webhook(&t, &fake.refund_event(&session.payment_intent), WHSEC).await;
    assert_eq!((status, ack["outcome"].as_str()), (200, Some("revoked")), "{ack}");
    assert_eq!(t.get("/v1/me/loadout", Some(token(&donor))).await.1, json!({"badge": null, "name_color": null}));
    let (_, rev) = t.get("/v1/admin/revenue", Some(token(&boss))).await;
    let usd = &rev["summary"]["currency_totals"][0];
    assert_eq!(
        (usd["gross_cents"].as_i64(), usd["refunded_cents"].as_i64(), usd["net_cents"].as_i64()),
        (Some(500), Some(500), Some(0))
    );
    let (status, ack) = webhook(&t, &fake.dispute_event(&session.payment_intent), WHSEC).await;
    assert_eq!(status, 200, "{ack}");
}

#[tokio::test]
async fn donation_flow_on_sqlite() {
    donation_flow(Backend::Sqlite).await;
}

#[tokio::test]
async fn donation_flow_on_postgres() {
    donation_flow(Backend::Postgres).await;
}

async fn store_outage(backend: Backend) {
    let fake = FakeStripe::start().await;
    let Some(t) = start(backend, &fake, &[]).await else { return };
    let donor = t.register("outage_donor").await;
    t.post("/v1/donations/checkout", json!({}), Some(token(&donor))).await;
    let session = fake.sessions().pop().unwrap();
    let completed = fake.completed_event(&session);
    // The database goes away: the webhook fails with 5xx, so Stripe retries.
    t.api.state.store.close().await;
    let (status, e) = webhook(&t, &completed, WHSEC).await;
    assert_eq!((status, e["code"].as_str()), (503, Some("STORE_UNAVAILABLE")));
    // The API comes back on the same database; Stripe's retry grants once.
    let again = t.restart_on_same_store().await;
    let (status, ack) = webhook(&again, &completed, WHSEC).await;
    assert_eq!((status, ack["outcome"].as_str()), (200, Some("granted")));
    let (status, ack) = webhook(&again, &completed, WHSEC).await;
    assert_eq!((status, ack["outcome"].as_str()), (200, Some("duplicate")));
    let login = again.login("outage_donor").await;
    let (_, mine) = again.get("/v1/me/donations", Some(token(&login))).await;
    assert_eq!(mine["donations"][0]["status"], "completed");
}

#[tokio::test]
async fn a_store_outage_during_a_webhook_is_retried_exactly_once_on_sqlite() {
    store_outage(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_store_outage_during_a_webhook_is_retried_exactly_once_on_postgres() {
    store_outage(Backend::Postgres).await;
}

#[tokio::test]
async fn without_stripe_keys_donations_say_so() {
    let t = TestApi::start(Backend::Sqlite, &[]).await.unwrap();
    let a = t.register("no_stripe").await;
    let (status, e) = t.post("/v1/donations/checkout", json!({}), Some(token(&a))).await;
    assert_eq!((status, e["code"].as_str()), (503, Some("DONATIONS_NOT_CONFIGURED")));
    let (status, e) = t.post("/v1/webhooks/stripe", json!({}), None).await;
    assert_eq!((status, e["code"].as_str()), (503, Some("DONATIONS_NOT_CONFIGURED")));
    // The catalog is there regardless.
    let (status, catalog) = t.get("/v1/cosmetics", None).await;
    assert_eq!(status, 200);
    assert!(catalog["cosmetics"].as_array().unwrap().iter().any(|c| c["id"] == "supporter" && c["supporter"] == true));
}

#[tokio::test]
async fn the_keep_policy_keeps_cosmetics_after_a_refund() {
    let fake = FakeStripe::start().await;
    let t = start(Backend::Sqlite, &fake, &["--refund-policy", "keep"]).await.unwrap();
    let donor = t.register("keeper").await;
    t.post("/v1/donations/checkout", json!({}), Some(token(&donor))).await;
    let session = fake.sessions().pop().unwrap();
    webhook(&t, &fake.completed_event(&session), WHSEC).await;
    let (_, ack) = webhook(&t, &fake.refund_event(&session.payment_intent), WHSEC).await;
    assert_eq!(ack["outcome"], "marked");
    let (status, _) = t.put("/v1/me/loadout", json!({"name_color": "gold"}), Some(token(&donor))).await;
    assert_eq!(status, 200);
}
