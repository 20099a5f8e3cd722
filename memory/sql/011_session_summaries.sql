-- Dated summaries of finished conversation sessions (memory.sessions): consecutive exchanges of
-- one user and scope with short gaps, closed when idle or when the window overflowed its tokens.
-- Searchable by text; forget removes the sessions covering forgotten exchanges.
CREATE TABLE session_summaries (
    user_id      text NOT NULL,
    scope        text NOT NULL,
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz NOT NULL,
    exchange_ids text[] NOT NULL,
    text         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    tsv          tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
    PRIMARY KEY (user_id, scope, started_at)
);
CREATE INDEX session_summaries_tsv ON session_summaries USING gin (tsv);
CREATE INDEX session_summaries_ids ON session_summaries USING gin (exchange_ids);
CREATE INDEX session_summaries_span ON session_summaries (user_id, scope, ended_at);
