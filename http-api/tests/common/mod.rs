//! Harness for the API's end-to-end tests: the real router on a real TCP
//! socket, a real store (SQLite file or a fresh Postgres schema) and an
//! in-process directory.
#![allow(dead_code)]

use std::net::SocketAddr;

use clap::Parser;
use directory::Directory;
use http_api::{Api, ApiArgs, ApiOptions, Role};
use protocol::ticket::TicketKey;
use serde_json::{Value, json};

#[derive(Parser)]
struct Wrapper {
    #[command(flatten)]
    api: ApiArgs,
}

pub const TICKET_KEY: [u8; 32] = [5u8; 32];

pub struct TestApi {
    pub base: String,
    pub api: Api,
    pub directory: Directory,
    pub client: reqwest::Client,
    pub data_dir: std::path::PathBuf,
    server: tokio::task::JoinHandle<()>,
    /// The flags it was started with (for a restart).
    argv: Vec<String>,
    /// A fresh Postgres schema, dropped with the test.
    _schema: Option<http_api::store::testing::TestStore>,
    owns_dir: bool,
}

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl TestApi {
    /// Starts the API with `extra` flags (after test defaults) on `backend`.
    /// Returns None only for Postgres when it is unavailable outside CI.
    pub async fn start(backend: Backend, extra: &[&str]) -> Option<TestApi> {
        let data_dir = std::env::temp_dir().join(format!("trespasser-api-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&data_dir).unwrap();
        let (db_url, schema) = match backend {
            Backend::Sqlite => (format!("sqlite://{}", data_dir.join("api.db").display()), None),
            Backend::Postgres => {
                let ts = http_api::store::testing::postgres().await?;
                (ts.url().to_string(), Some(ts))
            }
        };
        let mut argv = vec![
            "x",
            "--database-url",
            &db_url,
            "--access-key",
            "6b6579206f6620616363657373203332206279746573206c6f6e672121212121",
        ];
        argv.extend_from_slice(extra);
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let args = Wrapper::parse_from(argv.iter().map(String::as_str)).api;
        let directory = Directory::local();
        let opts = ApiOptions {
            role: Role::Embedded,
            data_dir: data_dir.clone(),
            ticket_key: TicketKey::new("k1", TICKET_KEY.to_vec()).unwrap(),
            directory: directory.clone(),
        };
        let api = Api::build(&args, opts).await.expect("api builds");
        let router = api.router(Vec::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
        });
        Some(TestApi {
            base: format!("http://{addr}"),
            api,
            directory,
            client: reqwest::Client::new(),
            data_dir,
            server,
            argv,
            _schema: schema,
            owns_dir: true,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
        let mut req = self.client.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        respond(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        respond(req.send().await.unwrap()).await
    }

    pub async fn put(&self, path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
        let mut req = self.client.put(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        respond(req.send().await.unwrap()).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.client.delete(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        respond(req.send().await.unwrap()).await
    }

    /// Logs `username` in (password of [`TestApi::register`]).
    pub async fn login(&self, username: &str) -> Value {
        let (status, body) =
            self.post("/v1/auth/login", json!({"username": username, "password": "correct horse battery"}), None).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// A second API instance on the same store and flags, as after a restart.
    pub async fn restart_on_same_store(&self) -> TestApi {
        let args = Wrapper::parse_from(self.argv.iter().map(String::as_str)).api;
        let opts = ApiOptions {
            role: Role::Embedded,
            data_dir: self.data_dir.clone(),
            ticket_key: TicketKey::new("k1", TICKET_KEY.to_vec()).unwrap(),
            directory: self.directory.clone(),
        };
        let api = Api::build(&args, opts).await.expect("api builds again");
        let router = api.router(Vec::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
        });
        TestApi {
            base: format!("http://{addr}"),
            api,
            directory: self.directory.clone(),
            client: reqwest::Client::new(),
            data_dir: self.data_dir.clone(),
            server,
            argv: self.argv.clone(),
            _schema: None,
            owns_dir: false,
        }
    }

    /// Registers `username` and returns the token response.
    pub async fn register(&self, username: &str) -> Value {
        let (status, body) = self
            .post("/v1/auth/register", json!({"username": username, "password": "correct horse battery"}), None)
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }
}

impl Drop for TestApi {
    fn drop(&mut self) {
        self.server.abort();
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

pub async fn respond(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, body)
}
