//! The production roles as separate processes: `trespasser api` on Postgres
//! and `trespasser game` with a real (PEM) certificate meet only through the
//! Redis directory; a player registers, matchmakes and joins.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use loadgen::{ClientConfig, GameClient, Trust};
use serde_json::{Value, json};

/// A child process killed when the test ends, with its stdout lines.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    fn spawn(args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_trespasser"));
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::inherit()).env("RUST_LOG", "warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn trespasser");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Proc { child, lines }
    }

    /// Waits for a stdout line containing `marker` and returns the word after it.
    fn word_after(&self, marker: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200))
                && let Some(rest) = line.split(marker).nth(1)
            {
                return rest.split_whitespace().next().unwrap().trim_end_matches(',').to_string();
            }
        }
        panic!("process never printed {marker:?}");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn redis_url() -> Option<String> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let probe = directory::Directory::redis(&url, "probe", Duration::from_secs(1), Duration::from_secs(1)).await;
    match probe {
        Ok(d) if d.ping().await.is_ok() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!("Redis is required in CI at REDIS_URL={url}"),
        _ => {
            eprintln!("WARNING: skipping: no Redis at REDIS_URL={url}");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_game_roles_meet_through_redis() {
    let Some(db) = http_api::store::testing::postgres().await else { return };
    let Some(redis) = redis_url().await else { return };
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let dir = std::env::temp_dir().join(format!("trespasser-prod-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, ck.cert.pem()).unwrap();
    std::fs::write(&key_path, ck.signing_key.serialize_pem()).unwrap();
    let ticket_key = protocol::defaults::to_hex(&[11u8; 32]);
    let access_key = protocol::defaults::to_hex(&[12u8; 32]);
    let shared = [
        ("REDIS_URL", redis.as_str()),
        ("TRESPASSER_DIRECTORY_PREFIX", prefix.as_str()),
        ("TRESPASSER_TICKET_KEY", &ticket_key),
    ];

    let api = Proc::spawn(
        &["api", "--http-addr", "127.0.0.1:0"],
        &[shared.as_slice(), &[("DATABASE_URL", db.url()), ("TRESPASSER_ACCESS_KEY", &access_key)]].concat(),
    );
    let game = Proc::spawn(
        &[
            "game",
            "--node-id",
            "prod-1",
            "--quic-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
        ],
        &shared,
    );
    let base = api.word_after("ready: ");
    let quic = game.word_after("ready: QUIC ");

    let http = reqwest::Client::new();
    let reg: Value = http
        .post(format!("{base}/v1/auth/register"))
        .json(&json!({"username": "prod_player", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = reg["access_token"].as_str().expect("registered").to_string();
    // The node appears in the directory within a heartbeat.
    let placement: Value = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let resp = http
                .post(format!("{base}/v1/matchmake"))
                .bearer_auth(&token)
                .json(&json!({"mode": "deathmatch"}))
                .send()
                .await
                .unwrap();
            if resp.status() == 200 {
                return resp.json().await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
    .await
    .expect("the game node is matchmade through Redis");
    assert_eq!(placement["node_id"], "prod-1");
    assert_eq!(format!("{}:{}", placement["host"].as_str().unwrap(), placement["port"]), quic);

    let addr = quic.parse().unwrap();
    let mut client = GameClient::connect(&ClientConfig::new(addr, Trust::Cert(ck.cert.der().to_vec()))).await.unwrap();
    let joined = client.join(placement["ticket"].as_str().unwrap()).await.expect("join with the API's ticket");
    assert_eq!(joined.roster[0].name, "prod_player");

    // The API is ready only with both its store and the directory.
    let ready: Value = http.get(format!("{base}/ready")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ok");
    drop((api, game));
    let _ = std::fs::remove_dir_all(&dir);
}
