-- Donations (the revenue ledger), the Stripe event log, the cosmetics catalog,
-- entitlements and loadouts. As in 0001, every timestamp is bound by the API.
-- Keep in step with ../sqlite/0002_donations_cosmetics.sql: same tables, columns, keys and indexes.

-- No CHECK on kind: a new kind is new rows (and a new CosmeticKind variant), and on
-- SQLite changing a CHECK means rebuilding a table that others reference.
CREATE TABLE cosmetics (
    id        TEXT PRIMARY KEY,
    kind      TEXT NOT NULL,
    name      TEXT NOT NULL,
    -- a badge's label, or a name color as #rrggbb
    value     TEXT NOT NULL,
    -- granted by donating; false: free for everyone, no entitlement row needed
    supporter BOOLEAN NOT NULL,
    sort      INTEGER NOT NULL
);

INSERT INTO cosmetics (id, kind, name, value, supporter, sort) VALUES
    ('supporter', 'badge', 'Supporter', '★', TRUE, 10),
    ('white', 'name_color', 'White', '#ffffff', FALSE, 10),
    ('red', 'name_color', 'Red', '#ff5555', FALSE, 20),
    ('blue', 'name_color', 'Blue', '#5599ff', FALSE, 30),
    ('green', 'name_color', 'Green', '#55dd77', FALSE, 40),
    ('gold', 'name_color', 'Gold', '#ffcc33', TRUE, 50),
    ('violet', 'name_color', 'Violet', '#bb77ff', TRUE, 60),
    ('cyan', 'name_color', 'Cyan', '#33dddd', TRUE, 70);

-- The ledger. Rows are never deleted: an account with donations cannot be deleted
-- out from under its money (no ON DELETE CASCADE).
CREATE TABLE donations (
    id                  UUID PRIMARY KEY,
    account_id          UUID NOT NULL REFERENCES accounts (id),
    checkout_session_id TEXT NOT NULL,
    -- set when the payment completes; refunds and disputes arrive keyed by it
    payment_intent_id   TEXT,
    -- smallest currency unit
    amount_cents        BIGINT NOT NULL CHECK (amount_cents >= 0),
    -- lower-case ISO code, as Stripe spells it
    currency            TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('pending', 'completed', 'refunded', 'disputed')),
    created_at          TIMESTAMPTZ NOT NULL,
    completed_at        TIMESTAMPTZ,
    refunded_at         TIMESTAMPTZ,
    disputed_at         TIMESTAMPTZ,
    CONSTRAINT donations_checkout_session_id_key UNIQUE (checkout_session_id),
    -- NULLs are distinct, so any number of pending rows may lack one
    CONSTRAINT donations_payment_intent_id_key UNIQUE (payment_intent_id)
);
CREATE INDEX donations_account_idx ON donations (account_id, created_at DESC, id DESC);
-- the revenue summary scans both ranges
CREATE INDEX donations_completed_idx ON donations (completed_at);
CREATE INDEX donations_refunded_idx ON donations (refunded_at);

-- One row per Stripe event id ever applied, written in the same transaction as the
-- event's effects: its primary key is what makes webhook delivery exactly-once.
CREATE TABLE stripe_events (
    event_id    TEXT PRIMARY KEY,
    event_type  TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    -- what applying it did (EventOutcome::as_str), for the admin console and audits
    outcome     TEXT NOT NULL
);

-- Cosmetics an account holds beyond the free ones. One row per item however many
-- donations paid for it; donation_id names the donation that currently does.
CREATE TABLE entitlements (
    account_id  UUID NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    cosmetic_id TEXT NOT NULL REFERENCES cosmetics (id),
    -- 'donation' today; room for grants of other kinds
    source      TEXT NOT NULL,
    donation_id UUID REFERENCES donations (id),
    granted_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, cosmetic_id)
);

-- What each account has equipped; no row means nothing equipped.
CREATE TABLE loadouts (
    account_id UUID PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    badge      TEXT REFERENCES cosmetics (id),
    name_color TEXT REFERENCES cosmetics (id),
    updated_at TIMESTAMPTZ NOT NULL
);

-- Active players (for the donation conversion rate) are counted by match end time.
CREATE INDEX match_players_ended_idx ON match_players (ended_at);
