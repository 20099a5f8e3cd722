-- Exchanges the worker failed on repeatedly (a bad record, not an outage) leave the
-- outbox for this table, with their error, so they stop holding back everyone else.
-- `python -m memory dead-letters --retry` queues them again. Deleting the exchange
-- (forget) deletes its dead letter too: the error text may quote the message.
CREATE TABLE dead_letters (
    exchange_id text PRIMARY KEY REFERENCES exchanges (id) ON DELETE CASCADE,
    user_id     text NOT NULL,
    attempts    integer NOT NULL,
    cache_stale boolean NOT NULL DEFAULT false,
    error       text NOT NULL,
    failed_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_user ON dead_letters (user_id);

-- Failures of a record in the worker; claims (attempts) also count outages and crashes.
ALTER TABLE outbox ADD COLUMN failures integer NOT NULL DEFAULT 0;

-- Cached recent lists the worker could not drop (Redis was down while it finished an
-- exchange the cache had missed): retried until Redis answers, so a list never stays
-- stale once Redis is back.
CREATE TABLE stale_caches (
    user_id    text NOT NULL,
    scope      text NOT NULL,
    since      timestamptz NOT NULL DEFAULT now(),
    last_error text,
    PRIMARY KEY (user_id, scope)
);
