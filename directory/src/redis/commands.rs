//! Commands for nodes: the list `P:commands:{node}`, oldest first.

use std::num::NonZeroUsize;
use std::time::Duration;

use ::redis::AsyncCommands;
use protocol::directory::NodeCommand;

use super::{RedisDirectory, decode, encode, millis};
use crate::DirectoryError;

/// Commands kept per node before the oldest are dropped (a node that never
/// polls must not grow memory). Same bound as the in-process directory.
const MAX_COMMANDS_PER_NODE: usize = 1024;
/// A node that has not polled for this long is gone; its commands go too.
const COMMAND_TTL: Duration = Duration::from_secs(3600);

pub(super) async fn send(d: &RedisDirectory, node_id: &str, command: &NodeCommand) -> Result<(), DirectoryError> {
    let key = d.node_key("commands", node_id);
    let mut pipe = ::redis::pipe();
    // Atomic, so the list is never seen (or taken) above its bound.
    pipe.atomic()
        .rpush(&key, encode(command))
        .ignore()
        .ltrim(&key, -(MAX_COMMANDS_PER_NODE as isize), -1)
        .ignore()
        .cmd("PEXPIRE")
        .arg(&key)
        .arg(millis(COMMAND_TTL))
        .ignore();
    d.0.conn.run(|mut con| async move { pipe.query_async::<()>(&mut con).await }).await
}

pub(super) async fn take(d: &RedisDirectory, node_id: &str) -> Result<Vec<NodeCommand>, DirectoryError> {
    let key = d.node_key("commands", node_id);
    // One LPOP of the whole bound takes everything in one atomic step, so
    // two pollers never both get a command.
    let count = NonZeroUsize::new(MAX_COMMANDS_PER_NODE);
    let taken: Option<Vec<String>> = d.0.conn.run(|mut con| async move { con.lpop(&key, count).await }).await?;
    taken.unwrap_or_default().iter().map(|json| decode("node command", json)).collect()
}
