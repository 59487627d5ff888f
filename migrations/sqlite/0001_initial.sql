-- Accounts, refresh sessions, match history, player stats, bans and the audit log.
-- Keep in step with ../postgres/0001_initial.sql: same tables, columns, keys and indexes.
--
-- Types are what sqlx's SQLite driver binds: UUIDs as 16-byte BLOBs, timestamps as
-- RFC 3339 TEXT in UTC (which sorts and compares correctly as text; the store writes
-- only UTC, at most microsecond precision), booleans as INTEGER 0/1, JSON as TEXT.
-- STRICT makes a value of the wrong type an error instead of a silently missed lookup.

CREATE TABLE accounts (
    id            BLOB PRIMARY KEY,
    username      TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('player', 'admin')),
    created_at    TEXT NOT NULL,
    last_login_at TEXT,
    CONSTRAINT accounts_username_key UNIQUE (username)
) STRICT;

CREATE TABLE refresh_sessions (
    id         BLOB PRIMARY KEY,
    account_id BLOB NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    family_id  BLOB NOT NULL,
    token_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    rotated_at TEXT,
    revoked_at TEXT,
    user_agent TEXT,
    ip         TEXT,
    CONSTRAINT refresh_sessions_token_hash_key UNIQUE (token_hash)
) STRICT;
CREATE INDEX refresh_sessions_account_idx ON refresh_sessions (account_id, created_at DESC, id DESC);
CREATE INDEX refresh_sessions_family_idx ON refresh_sessions (family_id);
CREATE INDEX refresh_sessions_expires_idx ON refresh_sessions (expires_at);

CREATE TABLE matches (
    id           BLOB PRIMARY KEY,
    lobby_id     INTEGER NOT NULL,
    node_id      TEXT NOT NULL,
    mode         TEXT NOT NULL,
    map          TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    ended_at     TEXT NOT NULL,
    winner       BLOB,
    kill_target  INTEGER NOT NULL,
    player_count INTEGER NOT NULL
) STRICT;

CREATE TABLE match_players (
    match_id     BLOB NOT NULL REFERENCES matches (id) ON DELETE CASCADE,
    account_id   BLOB NOT NULL,
    display_name TEXT NOT NULL,
    kills        INTEGER NOT NULL,
    deaths       INTEGER NOT NULL,
    won          INTEGER NOT NULL,
    ended_at     TEXT NOT NULL,
    PRIMARY KEY (match_id, account_id)
) STRICT;
CREATE INDEX match_players_history_idx ON match_players (account_id, ended_at DESC, match_id DESC);

CREATE TABLE player_stats (
    account_id    BLOB PRIMARY KEY,
    display_name  TEXT NOT NULL,
    matches       INTEGER NOT NULL,
    wins          INTEGER NOT NULL,
    kills         INTEGER NOT NULL,
    deaths        INTEGER NOT NULL,
    last_match_at TEXT NOT NULL
) STRICT;
CREATE INDEX player_stats_leaderboard_idx ON player_stats (wins DESC, kills DESC, deaths ASC, account_id ASC);

CREATE TABLE bans (
    id         BLOB PRIMARY KEY,
    account_id BLOB NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    reason     TEXT NOT NULL,
    created_by BLOB REFERENCES accounts (id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    lifted_at  TEXT
) STRICT;
CREATE INDEX bans_account_idx ON bans (account_id, created_at DESC, id DESC);

CREATE TABLE audit_log (
    id     BLOB PRIMARY KEY,
    actor  BLOB,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT NOT NULL,
    at     TEXT NOT NULL
) STRICT;
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);
