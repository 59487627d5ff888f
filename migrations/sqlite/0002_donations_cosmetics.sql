-- Donations (the revenue ledger), the Stripe event log, the cosmetics catalog,
-- entitlements and loadouts.
-- Keep in step with ../postgres/0002_donations_cosmetics.sql: same tables, columns, keys and indexes.
-- Types as in 0001: UUIDs as BLOB, timestamps as RFC 3339 TEXT in UTC, booleans as INTEGER 0/1.

-- No CHECK on kind: a new kind is new rows (and a new CosmeticKind variant), and
-- changing a CHECK here means rebuilding a table that others reference.
CREATE TABLE cosmetics (
    id        TEXT PRIMARY KEY,
    kind      TEXT NOT NULL,
    name      TEXT NOT NULL,
    value     TEXT NOT NULL,
    supporter INTEGER NOT NULL CHECK (supporter IN (0, 1)),
    sort      INTEGER NOT NULL
) STRICT;

INSERT INTO cosmetics (id, kind, name, value, supporter, sort) VALUES
    ('supporter', 'badge', 'Supporter', '★', 1, 10),
    ('white', 'name_color', 'White', '#ffffff', 0, 10),
    ('red', 'name_color', 'Red', '#ff5555', 0, 20),
    ('blue', 'name_color', 'Blue', '#5599ff', 0, 30),
    ('green', 'name_color', 'Green', '#55dd77', 0, 40),
    ('gold', 'name_color', 'Gold', '#ffcc33', 1, 50),
    ('violet', 'name_color', 'Violet', '#bb77ff', 1, 60),
    ('cyan', 'name_color', 'Cyan', '#33dddd', 1, 70);

CREATE TABLE donations (
    id                  BLOB PRIMARY KEY,
    account_id          BLOB NOT NULL REFERENCES accounts (id),
    checkout_session_id TEXT NOT NULL,
    payment_intent_id   TEXT,
    amount_cents        INTEGER NOT NULL CHECK (amount_cents >= 0),
    currency            TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('pending', 'completed', 'refunded', 'disputed')),
    created_at          TEXT NOT NULL,
    completed_at        TEXT,
    refunded_at         TEXT,
    disputed_at         TEXT,
    CONSTRAINT donations_checkout_session_id_key UNIQUE (checkout_session_id),
    CONSTRAINT donations_payment_intent_id_key UNIQUE (payment_intent_id)
) STRICT;
CREATE INDEX donations_account_idx ON donations (account_id, created_at DESC, id DESC);
CREATE INDEX donations_completed_idx ON donations (completed_at);
CREATE INDEX donations_refunded_idx ON donations (refunded_at);

CREATE TABLE stripe_events (
    event_id    TEXT PRIMARY KEY,
    event_type  TEXT NOT NULL,
    received_at TEXT NOT NULL,
    outcome     TEXT NOT NULL
) STRICT;

CREATE TABLE entitlements (
    account_id  BLOB NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    cosmetic_id TEXT NOT NULL REFERENCES cosmetics (id),
    source      TEXT NOT NULL,
    donation_id BLOB REFERENCES donations (id),
    granted_at  TEXT NOT NULL,
    PRIMARY KEY (account_id, cosmetic_id)
) STRICT;

CREATE TABLE loadouts (
    account_id BLOB PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    badge      TEXT REFERENCES cosmetics (id),
    name_color TEXT REFERENCES cosmetics (id),
    updated_at TEXT NOT NULL
) STRICT;

CREATE INDEX match_players_ended_idx ON match_players (ended_at);
