-- A user's own settings, the same in every guild and in DMs. For now the time zone (an IANA name)
-- their dates are read and shown in; NULL or no row means UTC. Forgetting everything removes the row.
CREATE TABLE user_settings (
    user_id    text PRIMARY KEY,
    time_zone  text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
