//! Bad input of every kind, rate limits, CORS, security headers, the
//! operational endpoints and the OpenAPI document.

mod common;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn bad_json_oversized_bodies_and_wrong_types_get_clear_errors() {
    let t = TestApi::start(Backend::Sqlite, &[]).await.unwrap();
    let post_raw = |body: &'static str, ctype: &'static str| {
        t.client.post(t.url("/v1/auth/login")).header("content-type", ctype).body(body).send()
    };
    let (status, e) = respond(post_raw("{not json", "application/json").await.unwrap()).await;
    assert_eq!((status, e["code"].as_str()), (400, Some("MALFORMED_JSON")));
    let (status, e) = respond(post_raw("{\"username\": 5}", "application/json").await.unwrap()).await;
    assert_eq!((status, e["code"].as_str()), (422, Some("INVALID_BODY")));
    let (status, e) =
        respond(post_raw("{\"username\":\"a\",\"password\":\"b\",\"x\":1}", "application/json").await.unwrap()).await;
    assert_eq!((status, e["code"].as_str()), (422, Some("INVALID_BODY")), "unknown fields are refused");
    let (status, e) = respond(post_raw("username=a", "application/x-www-form-urlencoded").await.unwrap()).await;
    assert_eq!((status, e["code"].as_str()), (415, Some("UNSUPPORTED_MEDIA_TYPE")));
    let big = format!("{{\"username\":\"{}\",\"password\":\"x\"}}", "a".repeat(64 * 1024));
    let resp = t
        .client
        .post(t.url("/v1/auth/login"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    let (status, e) = respond(resp).await;
    assert_eq!((status, e["code"].as_str()), (413, Some("BODY_TOO_LARGE")));
    // Every error is problem+json.
    let resp = post_raw("{", "application/json").await.unwrap();
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    // Unknown routes, methods, paths and queries.
    let (status, e) = t.get("/v1/nope", None).await;
    assert_eq!((status, e["code"].as_str()), (404, Some("NO_SUCH_ROUTE")));
    let (status, e) = t.delete("/v1/leaderboard", None).await;
    assert_eq!((status, e["code"].as_str()), (405, Some("METHOD_NOT_ALLOWED")));
    let (status, e) = t.get("/v1/players/not-a-uuid", None).await;
    assert_eq!((status, e["code"].as_str()), (400, Some("INVALID_PATH")));
    let (status, e) = t.get("/v1/leaderboard?limit=abc", None).await;
    assert_eq!((status, e["code"].as_str()), (400, Some("INVALID_QUERY")));
    let (status, e) = t.get("/v1/leaderboard?limit=1000", None).await;
    assert_eq!((status, e["field"].as_str()), (422, Some("limit")));
    let (status, _) = t.get("/v1/lobbies/18446744073709551616", None).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn sql_looking_input_is_just_data() {
    let t = TestApi::start(Backend::Sqlite, &[]).await.unwrap();
    let nasty = "x' OR '1'='1";
    let (status, e) = t.post("/v1/auth/login", json!({"username": nasty, "password": nasty}), None).await;
    assert_eq!((status, e["code"].as_str()), (401, Some("INVALID_CREDENTIALS")));
    let (status, e) = t
        .post(
            "/v1/auth/register",
            json!({"username": "robert'); DROP TABLE accounts;--", "password": "long enough pw"}),
            None,
        )
        .await;
    assert_eq!((status, e["field"].as_str()), (422, Some("username")));
    // A password full of SQL is just a password.
    let sql = "p'); DROP TABLE accounts;--";
    let (status, body) = t.post("/v1/auth/register", json!({"username": "bobby", "password": sql}), None).await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = t.get("/v1/lobbies?mode=x';--", None).await;
    assert_eq!(status, 422);
    let (status, _) = t.post("/v1/auth/login", json!({"username": "bobby", "password": sql}), None).await;
    assert_eq!(status, 200, "the accounts table is intact");
    let (_, me) = t.get("/v1/me", body["access_token"].as_str()).await;
    assert_eq!(me["username"], "bobby");
}

async fn trip(mut attempt: impl AsyncFnMut() -> reqwest::Response) -> reqwest::Response {
    for _ in 0..500 {
        let resp = attempt().await;
        if resp.status() == 429 {
            return resp;
        }
    }
    panic!("the rate limit never tripped");
}

#[tokio::test]
async fn rate_limits_trip_with_retry_after() {
    // No loopback exemption here, so the limits apply to the test client.
    let t = TestApi::start(Backend::Sqlite, &["--rate-limit-exempt", ""]).await.unwrap();
    let login = || {
        t.client.post(t.url("/v1/auth/login")).json(&json!({"username": "nobody_x", "password": "whatever pw"})).send()
    };
    let resp = trip(async || login().await.unwrap()).await;
    let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    let (_, e) = respond(resp).await;
    assert_eq!(e["code"], "RATE_LIMITED");
    assert_eq!(e["retry_after"], retry);

    // General endpoints have their own, looser, per-IP limit.
    let resp = trip(async || t.client.get(t.url("/v1/leaderboard")).send().await.unwrap()).await;
    assert_eq!(resp.status(), 429);
}

#[tokio::test]
async fn matchmaking_is_limited_per_account() {
    let t = TestApi::start(Backend::Sqlite, &[]).await.unwrap();
    let a = t.register("limited_one").await;
    let token = a["access_token"].as_str().unwrap().to_string();
    // Loopback is exempt from per-IP limits in this setup, so what trips is the account limit.
    let resp = trip(async || {
        t.client
            .post(t.url("/v1/matchmake"))
            .bearer_auth(&token)
            .json(&json!({"mode": "deathmatch"}))
            .send()
            .await
            .unwrap()
    })
    .await;
    assert_eq!(resp.status(), 429);
    // Another account is not affected.
    let b = t.register("limited_two").await;
    let (status, e) = t.post("/v1/matchmake", json!({"mode": "deathmatch"}), b["access_token"].as_str()).await;
    assert_eq!((status, e["code"].as_str()), (503, Some("NO_GAME_SERVERS")), "{e}");
}

#[tokio::test]
async fn cors_and_security_headers() {
    let t = TestApi::start(Backend::Sqlite, &["--cors-origins", "https://play.example"]).await.unwrap();
    let resp = t
        .client
        .request(reqwest::Method::OPTIONS, t.url("/v1/auth/login"))
        .header("Origin", "https://play.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["access-control-allow-origin"], "https://play.example");
    let resp = t.client.get(t.url("/v1/leaderboard")).header("Origin", "https://evil.example").send().await.unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert!(resp.headers().contains_key("content-security-policy"));
}

#[tokio::test]
async fn health_ready_and_metrics() {
    let t = TestApi::start(Backend::Sqlite, &[]).await.unwrap();
    assert_eq!(t.get("/health", None).await, (200, json!({"status": "ok"})));
    let (status, ready) = t.get("/ready", None).await;
    assert_eq!((status, ready["store"].as_str()), (200, Some("ok")));
    t.get("/v1/leaderboard", None).await;
    t.get("/v1/nope", None).await;
    let text = t.client.get(t.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("api_requests_total{method=\"GET\",route=\"/v1/leaderboard\",status=\"200\"} 1"), "{text}");
    assert!(text.contains("api_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}"));
    assert!(text.contains("api_request_duration_seconds_bucket{le="));
    assert!(text.contains("api_db_pool_max"));
    // The store going away makes the API unready, with a clear answer.
    t.api.state.store.close().await;
    let (status, ready) = t.get("/ready", None).await;
    assert_eq!((status, ready["store"].as_str()), (503, Some("unavailable")));
    let (status, e) = t.get("/v1/leaderboard", None).await;
    assert_eq!((status, e["code"].as_str()), (503, Some("STORE_UNAVAILABLE")));
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document() {
    let t = TestApi::start(Backend::Sqlite, &[]).await.unwrap();
    let (status, doc) = t.get("/v1/openapi.json", None).await;
    assert_eq!(status, 200);
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in http_api::openapi::ROUTES {
        assert!(
            paths.get(*path).and_then(|p| p.get(*method)).is_some(),
            "{method} {path} missing from the OpenAPI document"
        );
        // And the router serves it (anything but a routing 404/405).
        let concrete = path.replace("{id}", "00000000-0000-0000-0000-000000000001");
        let req = t.client.request(method.to_uppercase().parse().unwrap(), t.url(&concrete)).json(&json!({}));
        let (status, body): (u16, Value) = respond(req.send().await.unwrap()).await;
        assert!(
            body.get("code").is_none_or(|c| c != "NO_SUCH_ROUTE" && c != "METHOD_NOT_ALLOWED"),
            "{method} {path}: {status} {body}"
        );
    }
    assert_eq!(
        paths.len(),
        http_api::openapi::ROUTES.iter().map(|(_, p)| p).collect::<std::collections::HashSet<_>>().len()
    );
}
