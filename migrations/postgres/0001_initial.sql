-- Accounts, refresh sessions, match history, player stats, bans and the audit log.
-- Every timestamp is written by the API (bound from Rust), never defaulted by the
-- database, so both backends agree on the clock and tests can pin it.
-- Keep in step with ../sqlite/0001_initial.sql: same tables, columns, keys and indexes.

CREATE TABLE accounts (
    id            UUID PRIMARY KEY,
    -- lower-cased by the store, so uniqueness is case-insensitive
    username      TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('player', 'admin')),
    created_at    TIMESTAMPTZ NOT NULL,
    last_login_at TIMESTAMPTZ,
    CONSTRAINT accounts_username_key UNIQUE (username)
);

-- One row per refresh token ever issued. A rotated row stays until it expires so that
-- presenting it again is recognised as reuse and revokes the whole family.
CREATE TABLE refresh_sessions (
    id         UUID PRIMARY KEY,
    account_id UUID NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    family_id  UUID NOT NULL,
    -- the token itself is never stored
    token_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    rotated_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ,
    user_agent TEXT,
    ip         TEXT,
    CONSTRAINT refresh_sessions_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX refresh_sessions_account_idx ON refresh_sessions (account_id, created_at DESC, id DESC);
CREATE INDEX refresh_sessions_family_idx ON refresh_sessions (family_id);
CREATE INDEX refresh_sessions_expires_idx ON refresh_sessions (expires_at);

-- Match rows carry no foreign key to accounts: players joined with dev tickets may
-- have no account, and history must survive an account's deletion.
CREATE TABLE matches (
    id           UUID PRIMARY KEY,
    lobby_id     BIGINT NOT NULL,
    node_id      TEXT NOT NULL,
    mode         TEXT NOT NULL,
    map          TEXT NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    ended_at     TIMESTAMPTZ NOT NULL,
    winner       UUID,
    kill_target  INTEGER NOT NULL,
    player_count BIGINT NOT NULL
);

CREATE TABLE match_players (
    match_id     UUID NOT NULL REFERENCES matches (id) ON DELETE CASCADE,
    account_id   UUID NOT NULL,
    display_name TEXT NOT NULL,
    kills        BIGINT NOT NULL,
    deaths       BIGINT NOT NULL,
    won          BOOLEAN NOT NULL,
    -- copied from matches so a player's history is one index range scan
    ended_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (match_id, account_id)
);
CREATE INDEX match_players_history_idx ON match_players (account_id, ended_at DESC, match_id DESC);

-- Running totals, updated in the same transaction that records a match.
CREATE TABLE player_stats (
    account_id    UUID PRIMARY KEY,
    -- the name from the player's latest match (by end time)
    display_name  TEXT NOT NULL,
    matches       BIGINT NOT NULL,
    wins          BIGINT NOT NULL,
    kills         BIGINT NOT NULL,
    deaths        BIGINT NOT NULL,
    last_match_at TIMESTAMPTZ NOT NULL
);
-- matches the leaderboard's ORDER BY exactly, so a page is an index scan
CREATE INDEX player_stats_leaderboard_idx ON player_stats (wins DESC, kills DESC, deaths ASC, account_id ASC);

CREATE TABLE bans (
    id         UUID PRIMARY KEY,
    account_id UUID NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    reason     TEXT NOT NULL,
    created_by UUID REFERENCES accounts (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL,
    -- NULL: permanent
    expires_at TIMESTAMPTZ,
    lifted_at  TIMESTAMPTZ
);
CREATE INDEX bans_account_idx ON bans (account_id, created_at DESC, id DESC);

-- Append-only. No foreign key on actor: the trail must outlive the accounts it names.
CREATE TABLE audit_log (
    id     UUID PRIMARY KEY,
    actor  UUID,
    action TEXT NOT NULL,
    target TEXT,
    detail JSONB NOT NULL,
    at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);
