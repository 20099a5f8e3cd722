-- Records of a legacy store that a migration could not map to an exchange (no
-- user, no text, text that fails validation), set aside for the operator.
-- Kept in the archive rather than in a file so that forget(user) removes what
-- they say about a user from every process and host, in the same place as the
-- rest of the user's data. One row per legacy record; a re-run updates it.
CREATE TABLE legacy_unmappable (
    collection_uuid text NOT NULL,           -- the legacy collection's own id
    legacy_id       text NOT NULL,
    collection      text NOT NULL,
    source          text NOT NULL,           -- allow-list name, or the path/URL the CLI was given
    user_id         text,                    -- the record's user_id when it names a valid one
    scope           text,                    -- 'dm' or 'g:<guild_id>' when that can be told
    reason          text NOT NULL,
    record          text NOT NULL,           -- the record as ASCII JSON: exact even with NUL or lone surrogates
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collection_uuid, legacy_id)
);
CREATE INDEX legacy_unmappable_user ON legacy_unmappable (user_id, scope);
