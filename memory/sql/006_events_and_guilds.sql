-- Discord's own events (edit, delete), pause, one-time notices, per-guild settings, retention.

-- The Discord message an exchange answered (NULL for imports and the console), so an edit or
-- a delete of that message finds its exchange; looked up by (message id, user) or by
-- (message id, channel). ``revision`` counts edits: the worker re-derives an edited exchange
-- (old summaries and graph entries are replaced) and the outbox row keeps the revision it
-- was queued for, so a worker that processed an older text does not complete a newer edit.
ALTER TABLE exchanges ADD COLUMN message_id text, ADD COLUMN revision integer NOT NULL DEFAULT 0;
CREATE INDEX exchanges_message ON exchanges (message_id, user_id) WHERE message_id IS NOT NULL;
ALTER TABLE outbox ADD COLUMN revision integer NOT NULL DEFAULT 0;

-- Retention and active conversations read exchanges by age, across users (everywhere) or
-- within one guild's scope.
CREATE INDEX exchanges_created ON exchanges (created_at);
CREATE INDEX exchanges_scope_created ON exchanges (scope, created_at);

-- /memory pause: while a row exists, nothing new is stored for the user in that scope.
CREATE TABLE memory_pauses (
    user_id   text NOT NULL,
    scope     text NOT NULL,
    paused_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, scope)
);

-- The "I remember our conversations" notice, shown once per user and scope.
CREATE TABLE memory_notices (
    user_id  text NOT NULL,
    scope    text NOT NULL,
    shown_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, scope)
);

-- What a guild's admins set with /memory settings.
CREATE TABLE guild_settings (
    guild_id           text PRIMARY KEY,
    persona            text,                          -- NULL: the bot's BOT__PERSONA
    always_on_channels text[] NOT NULL DEFAULT '{}',  -- added to BOT__ALWAYS_ON_CHANNELS
    retention_days     integer CHECK (retention_days IS NULL OR retention_days >= 1),
    updated_by         text,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- Periodic jobs shared by every worker process: the row is claimed by the first process
-- whose interval has passed, and keeps what the job did.
CREATE TABLE job_runs (
    name          text PRIMARY KEY,
    last_run      timestamptz NOT NULL,
    runs          bigint NOT NULL DEFAULT 0,
    last_removed  jsonb NOT NULL DEFAULT '{}'::jsonb,
    total_removed bigint NOT NULL DEFAULT 0
);
