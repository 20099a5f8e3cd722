-- New rows wait in the full-text index's pending list until it is merged, and every search
-- scans that list row by row. At the default 4 MB limit a bulk import (or a server stopped
-- between short runs, so autovacuum never merges it) left thousands of rows there and made
-- searches 3-5x slower. At 128 kB an insert merges the list once in a while, and a search
-- never scans more than a few hundred rows of it.
ALTER INDEX exchanges_owner_search SET (fastupdate = on, gin_pending_list_limit = 128);
SELECT gin_clean_pending_list('exchanges_owner_search'::regclass);
