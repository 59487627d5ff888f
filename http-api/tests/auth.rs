//! Accounts and sessions end to end, on both store backends.

mod common;

use common::*;
use serde_json::json;

async fn auth_flow(backend: Backend) {
    let Some(t) = TestApi::start(backend, &[]).await else { return };
    // Register; the username is case-insensitive.
    let reg = t.register("Alice_1").await;
    let access = reg["access_token"].as_str().unwrap().to_string();
    assert_eq!(reg["token_type"], "Bearer");
    assert_eq!(reg["expires_in"], 900);
    let (status, dup) =
        t.post("/v1/auth/register", json!({"username": "alice_1", "password": "another good one"}), None).await;
    assert_eq!((status, dup["code"].as_str()), (409, Some("USERNAME_TAKEN")));

    let (status, me) = t.get("/v1/me", Some(&access)).await;
    assert_eq!(status, 200);
    assert_eq!(me["username"], "alice_1");
    assert_eq!(me["display_name"], "Alice_1");

    // Login: wrong password and unknown user look the same.
    let (s1, e1) = t.post("/v1/auth/login", json!({"username": "alice_1", "password": "wrong password"}), None).await;
    let (s2, e2) =
        t.post("/v1/auth/login", json!({"username": "nobody_here", "password": "wrong password"}), None).await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(e1, e2);
    let (status, login) =
        t.post("/v1/auth/login", json!({"username": "ALICE_1", "password": "correct horse battery"}), None).await;
    assert_eq!(status, 200, "{login}");

    // Two sessions now; the login's is current for its token.
    let login_access = login["access_token"].as_str().unwrap();
    let (_, sessions) = t.get("/v1/me/sessions", Some(login_access)).await;
    let list = sessions["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);

    // Refresh rotates; the old refresh token is then refused and its reuse
    // revokes the whole family, including the rotated successor.
    let r0 = login["refresh_token"].as_str().unwrap();
    let (status, r1) = t.post("/v1/auth/refresh", json!({"refresh_token": r0}), None).await;
    assert_eq!(status, 200, "{r1}");
    let r1_token = r1["refresh_token"].as_str().unwrap();
    assert_ne!(r1_token, r0);
    let (status, reuse) = t.post("/v1/auth/refresh", json!({"refresh_token": r0}), None).await;
    assert_eq!((status, reuse["code"].as_str()), (401, Some("REFRESH_TOKEN_REUSED")));
    let (status, dead) = t.post("/v1/auth/refresh", json!({"refresh_token": r1_token}), None).await;
    assert_eq!(status, 401, "the family is revoked: {dead}");

    // Logout ends the registration session.
    let (status, _) = t.post("/v1/auth/logout", json!({}), Some(&access)).await;
    assert_eq!(status, 204);
    let (status, _) = t.post("/v1/auth/refresh", json!({"refresh_token": reg["refresh_token"]}), None).await;
    assert_eq!(status, 401);

    // Revoke one of several sessions from the list.
    let (_, a) =
        t.post("/v1/auth/login", json!({"username": "alice_1", "password": "correct horse battery"}), None).await;
    let (_, b) =
        t.post("/v1/auth/login", json!({"username": "alice_1", "password": "correct horse battery"}), None).await;
    let a_access = a["access_token"].as_str().unwrap();
    let (_, sessions) = t.get("/v1/me/sessions", Some(a_access)).await;
    let other = sessions["sessions"].as_array().unwrap().iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = t.delete(&format!("/v1/me/sessions/{other}"), Some(a_access)).await;
    assert_eq!(status, 204);
    let (status, _) = t.post("/v1/auth/refresh", json!({"refresh_token": b["refresh_token"]}), None).await;
    assert_eq!(status, 401, "the revoked session cannot refresh");
    let (status, _) = t.delete(&format!("/v1/me/sessions/{other}"), Some(a_access)).await;
    assert_eq!(status, 404);

    // Changing the password signs out every other session.
    let (_, c) =
        t.post("/v1/auth/login", json!({"username": "alice_1", "password": "correct horse battery"}), None).await;
    let (status, _) = t
        .post(
            "/v1/me/password",
            json!({"current_password": "correct horse battery", "new_password": "a brand new secret"}),
            Some(a_access),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = t.post("/v1/auth/refresh", json!({"refresh_token": c["refresh_token"]}), None).await;
    assert_eq!(status, 401);
    let (status, _) =
        t.post("/v1/auth/login", json!({"username": "alice_1", "password": "a brand new secret"}), None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn auth_flow_on_sqlite() {
    auth_flow(Backend::Sqlite).await;
}

#[tokio::test]
async fn auth_flow_on_postgres() {
    auth_flow(Backend::Postgres).await;
}

#[tokio::test]
async fn usernames_display_names_and_passwords_are_validated() {
    let t = TestApi::start(Backend::Sqlite, &[]).await.unwrap();
    let cases = [
        (json!({"username": "ab", "password": "long enough pw"}), "username"),
        (json!({"username": "admin", "password": "long enough pw"}), "username"),
        (json!({"username": "has space", "password": "long enough pw"}), "username"),
        (json!({"username": "valid_name", "password": "short"}), "password"),
        (json!({"username": "valid_name", "password": "password123"}), "password"),
        (
            json!({"username": "valid_name", "password": "long enough pw", "display_name": "\u{202e}evil"}),
            "display_name",
        ),
    ];
    for (body, field) in cases {
        let (status, err) = t.post("/v1/auth/register", body.clone(), None).await;
        assert_eq!(status, 422, "{body} -> {err}");
        assert_eq!(err["field"], field, "{err}");
        assert!(err["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
}

#[tokio::test]
async fn access_tokens_are_checked() {
    let t = TestApi::start(Backend::Sqlite, &[]).await.unwrap();
    let (status, err) = t.get("/v1/me", None).await;
    assert_eq!((status, err["code"].as_str()), (401, Some("MISSING_TOKEN")));
    let (status, err) = t.get("/v1/me", Some("not-a-jwt")).await;
    assert_eq!((status, err["code"].as_str()), (401, Some("INVALID_TOKEN")));
    // A token signed with another key.
    let other = http_api::auth::AccessKeys::new("a1", &[9u8; 32]).unwrap();
    let (forged, _) = other
        .issue(
            uuid::Uuid::new_v4(),
            "x",
            "admin",
            uuid::Uuid::new_v4(),
            std::time::Duration::from_secs(60),
            chrono::Utc::now().timestamp(),
        )
        .unwrap();
    let (status, _) = t.get("/v1/me", Some(&forged)).await;
    assert_eq!(status, 401);
    let resp = t.client.get(t.url("/v1/me")).header("Authorization", "Basic abc").send().await.unwrap();
    assert_eq!(resp.status(), 401);
}
