-- Corrections a user made to their profile (/memory profile): a line removed (replacement NULL)
-- or replaced by their own text. ``corrected`` is the line as it read when corrected: once the
-- facts behind the line change, the line is computed afresh and the correction no longer applies.
CREATE TABLE profile_corrections (
    user_id     text NOT NULL,
    scope       text NOT NULL,
    line_key    text NOT NULL,
    corrected   text NOT NULL,
    replacement text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, scope, line_key)
);

-- Saved facts get a category and an importance (1-5), so the context can rank them under a cap.
ALTER TABLE facts ADD COLUMN category text NOT NULL DEFAULT 'other';
ALTER TABLE facts ADD COLUMN importance smallint NOT NULL DEFAULT 3 CHECK (importance BETWEEN 1 AND 5);
