//! A TCP proxy in front of Redis that fails on demand, the way networks and
//! servers do: closing connections (a restart) or going silent (a stalled
//! server, a black-holed route) while keeping them open.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Forward,
    /// Close every connection, and each new one as soon as it is accepted.
    Close,
    /// Keep every connection open and never answer again.
    Stall,
}

pub struct Proxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Proxies to the host and port of the `redis://` URL `upstream`.
    pub async fn start(upstream: &str, mode: Mode) -> Proxy {
        let target = authority(upstream).1.to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (tx, _) = watch::channel(mode);
        let modes = tx.clone();
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                tokio::spawn(relay(inbound, target.clone(), modes.subscribe()));
            }
        });
        Proxy { addr, mode: tx, accept }
    }

    /// `upstream` with its host and port replaced by the proxy's (user,
    /// password and database kept).
    pub fn url(&self, upstream: &str) -> String {
        let (user, _, path) = authority(upstream);
        format!("redis://{user}{}{path}", self.addr)
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn relay(mut inbound: TcpStream, target: String, mut mode: watch::Receiver<Mode>) {
    let now = *mode.borrow_and_update();
    match now {
        Mode::Close => return,
        Mode::Stall => return hold(inbound).await,
        Mode::Forward => {}
    }
    let Ok(mut outbound) = TcpStream::connect(&target).await else { return };
    let stall = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => false,
        changed = mode.wait_for(|m| *m != Mode::Forward) => matches!(changed.map(|m| *m), Ok(Mode::Stall)),
    };
    if stall {
        hold(inbound).await;
    }
}

/// Keeps the client's socket open and reads nothing from it, forever.
async fn hold(_socket: TcpStream) {
    std::future::pending::<()>().await
}

/// Splits `redis://user:pass@host:port/db` into (`user:pass@`, `host:port`, `/db`).
fn authority(url: &str) -> (&str, &str, &str) {
    let rest = url.strip_prefix("redis://").expect("a redis:// url");
    let (auth, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    match auth.rfind('@') {
        Some(i) => (&auth[..=i], &auth[i + 1..], path),
        None => ("", auth, path),
    }
}
