-- Forget requests a derived tier could not carry out (it was down). The archive rows
-- are already gone; the worker retries the named tiers until they are clear too.
CREATE TABLE forget_requests (
    id           bigserial PRIMARY KEY,
    user_id      text NOT NULL,
    scope        text,                 -- NULL: every scope of the user
    exchange_ids text[],               -- NULL: everything in the scope(s)
    tiers        text[] NOT NULL,      -- which tiers still hold data
    requested_at timestamptz NOT NULL DEFAULT now(),
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text
);
