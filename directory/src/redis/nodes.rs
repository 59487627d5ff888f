//! Node registry and lobby summaries: `P:node:{id}`, `P:lobbies:{id}` and
//! the `P:nodes` index (see the layout in the parent module).

use std::sync::LazyLock;

use ::redis::Script;
use protocol::LobbyId;
use protocol::directory::{LobbySummary, NodeStatus};

use super::{RedisDirectory, decode, encode, millis};
use crate::DirectoryError;

/// Reads live nodes in one round trip, whatever their number.
///
/// The index is pruned here rather than by a timer: a member whose status
/// key has expired is removed in the same atomic step that saw it missing,
/// so a node heartbeating concurrently is never dropped from the index.
///
/// KEYS[1] the index; ARGV[1] the prefix; ARGV[2] what to return: `nodes`
/// (status JSON per live node), `lobbies` (every lobby of live nodes) or
/// `lobby` (lobby ARGV[3], found on the first live node that has it).
const LIVE_LUA: &str = r"
local ids = redis.call('SMEMBERS', KEYS[1])
table.sort(ids)
local out = {}
for _, id in ipairs(ids) do
  local status = redis.call('GET', ARGV[1] .. ':node:' .. id)
  local lobbies = ARGV[1] .. ':lobbies:' .. id
  if not status then
    redis.call('SREM', KEYS[1], id)
  elseif ARGV[2] == 'nodes' then
    table.insert(out, status)
  elseif ARGV[2] == 'lobbies' then
    for _, l in ipairs(redis.call('HVALS', lobbies)) do
      table.insert(out, l)
    end
  else
    local l = redis.call('HGET', lobbies, ARGV[3])
    if l then
      return { l }
    end
  end
end
return out
";

static LIVE: LazyLock<Script> = LazyLock::new(|| Script::new(LIVE_LUA));

pub(super) async fn heartbeat(
    d: &RedisDirectory,
    status: &NodeStatus,
    lobbies: &[LobbySummary],
) -> Result<(), DirectoryError> {
    let id = &status.node_id;
    let ttl = millis(d.0.node_ttl);
    let lobbies_key = d.node_key("lobbies", id);
    let mut pipe = ::redis::pipe();
    // One transaction, so readers see either the old lobby list or the new
    // one, never a mix, and never lobbies without their node.
    pipe.atomic().pset_ex(d.node_key("node", id), encode(status), ttl).ignore().del(&lobbies_key).ignore();
    if !lobbies.is_empty() {
        let fields: Vec<(String, String)> = lobbies.iter().map(|l| (l.id.to_string(), encode(l))).collect();
        pipe.cmd("HSET").arg(&lobbies_key).arg(&fields).ignore();
        pipe.cmd("PEXPIRE").arg(&lobbies_key).arg(ttl).ignore();
    }
    pipe.sadd(d.key("nodes"), id).ignore();
    d.0.conn.run(|mut con| async move { pipe.query_async::<()>(&mut con).await }).await
}

pub(super) async fn remove(d: &RedisDirectory, node_id: &str) -> Result<(), DirectoryError> {
    let mut pipe = ::redis::pipe();
    pipe.atomic()
        .del(&[d.node_key("node", node_id), d.node_key("lobbies", node_id), d.node_key("commands", node_id)])
        .ignore()
        .srem(d.key("nodes"), node_id)
        .ignore();
    d.0.conn.run(|mut con| async move { pipe.query_async::<()>(&mut con).await }).await
}

async fn live(d: &RedisDirectory, what: &str, lobby: Option<LobbyId>) -> Result<Vec<String>, DirectoryError> {
    let mut call = LIVE.prepare_invoke();
    call.key(d.key("nodes")).arg(&d.0.prefix).arg(what);
    if let Some(id) = lobby {
        call.arg(id.to_string());
    }
    d.0.conn.run(|mut con| async move { call.invoke_async::<Vec<String>>(&mut con).await }).await
}

pub(super) async fn list(d: &RedisDirectory) -> Result<Vec<NodeStatus>, DirectoryError> {
    // The script returns them sorted by node id already.
    live(d, "nodes", None).await?.iter().map(|json| decode("node status", json)).collect()
}

pub(super) async fn lobbies(d: &RedisDirectory, mode: Option<&str>) -> Result<Vec<LobbySummary>, DirectoryError> {
    let mut v = Vec::new();
    for json in live(d, "lobbies", None).await? {
        let lobby: LobbySummary = decode("lobby summary", &json)?;
        if mode.is_none_or(|m| lobby.mode == m) {
            v.push(lobby);
        }
    }
    v.sort_by(|a, b| a.node_id.cmp(&b.node_id).then(a.id.cmp(&b.id)));
    Ok(v)
}

pub(super) async fn lobby(d: &RedisDirectory, id: LobbyId) -> Result<Option<LobbySummary>, DirectoryError> {
    live(d, "lobby", Some(id)).await?.first().map(|json| decode("lobby summary", json)).transpose()
}
