"""Migration from a legacy single-Chroma memory store into the four tiers.

``migrate_from_chroma`` reads one legacy collection page by page (an on-disk
Chroma directory or a Chroma server), maps its records to exchanges and stores
them through the manager with their original timestamps; the manager's worker
then fills the summaries and graph. Decisions (README "Migration"):

* Shapes. A record whose metadata has ``user_message``/``bot_response`` (or
  whose document is a ``User: ...`` / ``Assistant: ...`` transcript) is one
  exchange. A record with ``role``/``type`` user or assistant is one message:
  the messages of a conversation (``conversation_id``, else user + guild +
  channel) are paired in time order, a user message with the assistant
  messages that follow it (several replies are joined by a blank line).
* Nothing is dropped silently. A user message without a reply is stored with
  the reply ``(no reply recorded)``, a reply without a user message with the
  message ``(no message recorded)``; both carry ``legacy_unpaired: true``.
  Records that name no user (no metadata at all, or no ``user_id``), have no
  text, or fail validation are unmappable: their ids, reasons, documents and
  metadata are kept in the archive for the operator (``memory.set_aside``,
  listed by ``python -m memory migrate --list-unmappable``), never in a file in
  the working directory; forgetting a user removes the records that name them.
* Read only. A legacy store is never written to: an on-disk one is copied to a
  private temporary folder and the copy is opened (chromadb writes to any
  folder it opens); a dry run writes nothing anywhere.
* Time. Timestamps may be ISO strings or epoch numbers (s, ms or us). A record
  without a usable one gets the run's start time plus its legacy position in
  microseconds (so legacy order is kept) and ``legacy_timestamp_missing: true``.
* Ids. The exchange id is ``uuid5(namespace, collection uuid, name, legacy
  ids)``, so a re-run recognises what is archived (``existing_exchange_ids``)
  and skips it; an interrupted run resumes by running it again. The legacy
  collection's own uuid is in the key so two stores with the same collection
  name and ids ("0", "1", ...) cannot be mistaken for each other.
* Bounded memory. Pass 1 streams pages and stores exchange-shaped records at
  once, keeping only (position, id) of message-shaped ones per conversation;
  pass 2 fetches one conversation at a time, pairs and stores it.
* Tiers. Each stored batch is flushed through the worker, so summaries and
  graph (with the original dates) keep pace; a user's Redis cache fills from
  the archive on their next read, as for any user whose list expired.
* Embeddings. Legacy vectors are never copied. The legacy model is read from
  the collection's metadata/configuration and vector size, compared with the
  configured one, and reported; every migrated exchange is re-embedded from
  its text by the worker either way.
"""

from memory.migration.cli import add_migrate_parser, run_migrate_command
from memory.migration.mapping import (
    NO_MESSAGE,
    NO_REPLY,
    LegacyRecord,
    Mapper,
    Unmappable,
    classify,
    exchange_id_for,
    parse_timestamp,
)
from memory.migration.reader import LegacyChromaReader
from memory.migration.run import (
    EmbeddingCheck,
    MigrationProgress,
    MigrationReport,
    ProgressCallback,
    migrate_from_chroma,
)

__all__ = [
    "NO_MESSAGE", "NO_REPLY", "EmbeddingCheck", "LegacyChromaReader", "LegacyRecord", "Mapper",
    "MigrationProgress", "MigrationReport", "ProgressCallback", "Unmappable", "add_migrate_parser",
    "classify", "exchange_id_for", "migrate_from_chroma", "parse_timestamp", "run_migrate_command",
]
