-- The archive: every exchange at full fidelity (the source of truth), and the
-- outbox of derived work for the summaries and graph tiers.
CREATE TABLE exchanges (
    id           text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 100),
    user_id      text NOT NULL,
    scope        text NOT NULL,              -- 'dm' or 'g:<guild_id>'
    guild_id     text,
    channel_id   text,
    user_message text NOT NULL,
    bot_response text NOT NULL,
    created_at   timestamptz NOT NULL,
    stored_at    timestamptz NOT NULL DEFAULT now(),
    metadata     jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- capped: a tsvector holds at most 1 MB; the archive keeps the full text regardless
    search       tsvector GENERATED ALWAYS AS (
        to_tsvector('english'::regconfig, left(user_message, 110000) || ' ' || left(bot_response, 110000))
    ) STORED
);
CREATE INDEX exchanges_user_scope_time ON exchanges (user_id, scope, created_at DESC);
CREATE INDEX exchanges_search ON exchanges USING gin (search);

CREATE TABLE outbox (
    exchange_id  text PRIMARY KEY REFERENCES exchanges (id) ON DELETE CASCADE,
    enqueued_at  timestamptz NOT NULL DEFAULT now(),
    available_at timestamptz NOT NULL DEFAULT now(),
    attempts     integer NOT NULL DEFAULT 0,
    cache_stale  boolean NOT NULL DEFAULT false,
    last_error   text
);
CREATE INDEX outbox_available ON outbox (available_at);

-- Facts a user curates (/remember): kept apart from conversation logs.
CREATE TABLE facts (
    id         text PRIMARY KEY,
    user_id    text NOT NULL,
    scope      text NOT NULL,
    text       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX facts_user_scope ON facts (user_id, scope, created_at);

-- LLM token usage per user, scope and day.
CREATE TABLE token_usage (
    user_id           text NOT NULL,
    scope             text NOT NULL,
    day               date NOT NULL,
    prompt_tokens     bigint NOT NULL DEFAULT 0,
    completion_tokens bigint NOT NULL DEFAULT 0,
    requests          bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, scope, day)
);
