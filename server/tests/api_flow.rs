//! The API and a game node together, as `trespasser serve` runs them:
//! players register and matchmake through HTTP, play over QUIC, and the
//! finished match lands in their stats exactly once.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use common::*;
use directory::Directory;
use http_api::{Api, ApiOptions};
use loadgen::{ClientConfig, GameClient, Trust};
use protocol::control::{ErrorCode, ServerControl};
use protocol::datagram::Buttons;
use protocol::results::MatchResult;
use serde_json::{Value, json};
use server::config::{Cli, Command};
use server::directory_link;
use server::node::{Node, NodeOptions, Role, ticket_keys};
use server::results::{MatchResultSink, MemorySink};

/// Records results and forwards them to the directory, like the real sink.
struct Tee(Arc<MemorySink>, directory_link::DirectorySink);

impl MatchResultSink for Tee {
    fn submit(&self, result: MatchResult) {
        self.0.submit(result.clone());
        self.1.submit(result);
    }
}

struct Stack {
    node: Node,
    api: Api,
    base: String,
    http: reqwest::Client,
    directory: Directory,
    results: Arc<MemorySink>,
    _server: tokio::task::JoinHandle<()>,
}

async fn stack(extra: &[&str]) -> Stack {
    let dir = std::env::temp_dir().join(format!("trespasser-stack-{}", uuid::Uuid::new_v4()));
    let dir_s = dir.to_string_lossy().to_string();
    let mut argv =
        vec!["trespasser", "serve", "--quic-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--data-dir", &dir_s];
    argv.extend_from_slice(extra);
    let Some(Command::Serve(args)) = Cli::parse_from(argv).command else { unreachable!() };
    let directory = Directory::local();
    let results = Arc::new(MemorySink::default());
    let sink = Arc::new(Tee(results.clone(), directory_link::result_sink(directory.clone())));
    let opts = NodeOptions { sink, directory: Some(directory.clone()), http: false };
    let node = Node::start(&args.node, Role::Embedded, opts).await.expect("node");
    let keys = ticket_keys(&args.node, Role::Embedded).unwrap();
    let api_opts = ApiOptions {
        role: http_api::Role::Embedded,
        data_dir: dir.clone(),
        ticket_key: keys[0].clone(),
        directory: directory.clone(),
    };
    let api = Api::build(&args.api, api_opts).await.expect("api");
    let router = api.router(vec![node.registry.clone()]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    Stack {
        node,
        api,
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        directory,
        results,
        _server: server,
    }
}

impl Stack {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Registers and returns (account id, access token).
    async fn player(&self, name: &str) -> (String, String) {
        let body = json!({"username": name, "password": "correct horse battery"});
        let (status, r) = self.call(reqwest::Method::POST, "/v1/auth/register", Some(body), None).await;
        assert_eq!(status, 201, "{r}");
        (r["account_id"].as_str().unwrap().to_string(), r["access_token"].as_str().unwrap().to_string())
    }

    async fn matchmake(&self, token: &str) -> Value {
        let body = json!({"mode": "deathmatch"});
        let (status, placement) = self.call(reqwest::Method::POST, "/v1/matchmake", Some(body), Some(token)).await;
        assert_eq!(status, 200, "{placement}");
        placement
    }

    async fn connect(&self, placement: &Value) -> GameClient {
        let host = placement["host"].as_str().unwrap();
        let port = placement["port"].as_u64().unwrap() as u16;
        let addr: SocketAddr = format!("{host}:{port}").parse().unwrap();
        assert_eq!(addr, self.node.quic_addr);
        let cert_hash = placement["cert_sha256"].as_str().unwrap();
        assert_eq!(cert_hash.len(), 64, "the placement names the certificate hash for browsers");
        GameClient::connect(&ClientConfig::new(addr, Trust::Cert(self.node.cert_der.clone()))).await.expect("connect")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matchmade_ticket_is_accepted_once() {
    let s = stack(&[]).await;
    let (_, token) = s.player("ticket_user").await;
    let placement = s.matchmake(&token).await;
    let ticket = placement["ticket"].as_str().unwrap();
    let mut c = s.connect(&placement).await;
    let joined = c.join(ticket).await.expect("the node accepts the API's ticket");
    assert_eq!(joined.roster[0].name, "ticket_user");
    let mut again = s.connect(&placement).await;
    expect_refused(again.join(ticket).await, ErrorCode::TicketReused).await;

    // The lobby shows up in the API's lobby browser, and can be joined by id.
    let lobby_id = joined.lobby.id;
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let (_, list) = s.call(reqwest::Method::GET, "/v1/lobbies?mode=deathmatch", None, None).await;
            if let Some(l) = list["lobbies"].as_array().unwrap().iter().find(|l| l["id"] == lobby_id) {
                return l.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("lobby listed");
    assert_eq!(found["players"], 1);
    let (_, token2) = s.player("by_id_user").await;
    let (status, p2) =
        s.call(reqwest::Method::POST, &format!("/v1/lobbies/{lobby_id}/join"), None, Some(&token2)).await;
    assert_eq!(status, 200, "{p2}");
    let mut c2 = s.connect(&p2).await;
    assert_eq!(c2.join(p2["ticket"].as_str().unwrap()).await.unwrap().lobby.id, lobby_id);
    let (status, e) = s.call(reqwest::Method::GET, "/v1/lobbies/424242", None, None).await;
    assert_eq!((status, e["code"].as_str()), (404, Some("LOBBY_NOT_FOUND")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_match_lands_in_both_players_stats_exactly_once() {
    let s = stack(&[
        "--map",
        &fixture("open.toml"),
        "--kill-target",
        "3",
        "--damage",
        "100",
        "--spawn-protection",
        "0s",
        "--respawn-delay",
        "50ms",
        "--fire-cooldown",
        "50ms",
    ])
    .await;
    let (alice_id, alice) = s.player("alice").await;
    let (bob_id, bob) = s.player("bob").await;
    let pa = s.matchmake(&alice).await;
    let mut a = s.connect(&pa).await;
    let ja = a.join(pa["ticket"].as_str().unwrap()).await.unwrap();
    let pb = s.matchmake(&bob).await;
    assert_eq!(pb["node_id"], pa["node_id"]);
    let mut b = s.connect(&pb).await;
    let jb = b.join(pb["ticket"].as_str().unwrap()).await.unwrap();
    assert_eq!(ja.lobby.id, jb.lobby.id, "matchmaking put both players in one lobby");

    // Alice shoots Bob until the match ends.
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let snap = next_snapshot(&mut a).await;
            if let (Some(me), Some(them)) = (pos(&snap, ja.you), pos(&snap, jb.you)) {
                a.send_input(Buttons(Buttons::FIRE), aim_at(me, them)).unwrap();
            }
            if a.events_pending().iter().any(|e| matches!(e, ServerControl::MatchEnded(_))) {
                break;
            }
        }
    })
    .await
    .expect("match ends");

    let stats = |id: String| {
        let s = &s;
        async move { s.call(reqwest::Method::GET, &format!("/v1/players/{id}"), None, None).await.1 }
    };
    tokio::time::timeout(WAIT, async {
        while stats(alice_id.clone()).await["matches"] != 1 || stats(bob_id.clone()).await["matches"] != 1 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the result is stored");
    let a_stats = stats(alice_id.clone()).await;
    assert_eq!(
        (a_stats["wins"].as_i64(), a_stats["kills"].as_i64(), a_stats["deaths"].as_i64()),
        (Some(1), Some(3), Some(0))
    );
    let b_stats = stats(bob_id.clone()).await;
    assert_eq!(
        (b_stats["wins"].as_i64(), b_stats["kills"].as_i64(), b_stats["deaths"].as_i64()),
        (Some(0), Some(0), Some(3))
    );

    // The node reports the same match again (a retry after a lost ack, say).
    let result = s.results.results.lock().unwrap()[0].clone();
    s.directory.push_result(&result).await.unwrap();
    tokio::time::timeout(WAIT, async {
        loop {
            let text = s.http.get(format!("{}/metrics", s.base)).send().await.unwrap().text().await.unwrap();
            if text.contains("api_match_results_duplicate_total 1") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the duplicate is seen and ignored");
    assert_eq!(stats(alice_id.clone()).await["matches"], 1);
    assert_eq!(stats(bob_id.clone()).await["matches"], 1);

    let (_, history) = s.call(reqwest::Method::GET, &format!("/v1/players/{alice_id}/matches"), None, None).await;
    assert_eq!(history["matches"].as_array().unwrap().len(), 1);
    assert_eq!(history["matches"][0]["won"], true);
    let (_, board) = s.call(reqwest::Method::GET, "/v1/leaderboard", None, None).await;
    assert_eq!(board["entries"][0]["id"].as_str(), Some(alice_id.as_str()));
    assert_eq!(board["entries"][0]["rank"], 1);
    let _ = &s.api;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_donors_badge_and_color_show_in_the_roster_others_see() {
    use http_api::payments::fake::{FAKE_SECRET_KEY, FakeStripe};
    const WHSEC: &str = "whsec_roster_test";
    let fake = FakeStripe::start().await;
    let base = fake.base_url();
    let s =
        stack(&["--stripe-secret-key", FAKE_SECRET_KEY, "--stripe-webhook-secret", WHSEC, "--stripe-api-base", &base])
            .await;
    let (donor_id, donor) = s.player("generous").await;
    let (_, other) = s.player("watcher").await;

    // Donate through the (fake) Stripe checkout and its signed webhook.
    let (status, _) = s.call(reqwest::Method::POST, "/v1/donations/checkout", None, Some(&donor)).await;
    assert_eq!(status, 201);
    let session = fake.sessions().pop().unwrap();
    let (body, sig) = FakeStripe::signed(&fake.completed_event(&session), WHSEC);
    let resp = s
        .http
        .post(format!("{}/v1/webhooks/stripe", s.base))
        .header("stripe-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let loadout = json!({"badge": "supporter", "name_color": "gold"});
    let (status, l) = s.call(reqwest::Method::PUT, "/v1/me/loadout", Some(loadout), Some(&donor)).await;
    assert_eq!(status, 200, "{l}");

    // Both join one lobby; the watcher's roster shows the donor's cosmetics.
    let pd = s.matchmake(&donor).await;
    let mut d = s.connect(&pd).await;
    d.join(pd["ticket"].as_str().unwrap()).await.unwrap();
    let pw = s.matchmake(&other).await;
    let mut w = s.connect(&pw).await;
    let joined = w.join(pw["ticket"].as_str().unwrap()).await.unwrap();
    let entry = joined.roster.iter().find(|p| p.account.to_string() == donor_id).expect("donor in roster");
    assert_eq!(entry.cosmetics.badge.as_deref(), Some("supporter"));
    assert_eq!(entry.cosmetics.name_color.as_deref(), Some("#ffcc33"));
    let me = joined.roster.iter().find(|p| p.account.to_string() != donor_id).unwrap();
    assert_eq!(me.cosmetics, protocol::control::Cosmetics::default());

    // A loadout change applies from the next join.
    let (status, _) =
        s.call(reqwest::Method::PUT, "/v1/me/loadout", Some(json!({"name_color": "blue"})), Some(&donor)).await;
    assert_eq!(status, 200);
    d.leave().await.unwrap();
    let pd2 = s.matchmake(&donor).await;
    let mut d2 = s.connect(&pd2).await;
    let again = d2.join(pd2["ticket"].as_str().unwrap()).await.unwrap();
    let entry = again.roster.iter().find(|p| p.account.to_string() == donor_id).unwrap();
    assert_eq!((entry.cosmetics.badge.as_deref(), entry.cosmetics.name_color.as_deref()), (None, Some("#5599ff")));
}
