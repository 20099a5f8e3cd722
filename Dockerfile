# syntax=docker/dockerfile:1
# mnemo: the Discord bot and the memory CLI (`python -m memory ...`) in one image.
# docker-compose.yml runs it next to Redis, PostgreSQL, Chroma and Neo4j.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY memory ./memory
COPY bot ./bot
# The pip cache lives in a BuildKit cache mount, so rebuilds after a code change
# do not download the dependencies again and the image carries no cache.
RUN --mount=type=cache,target=/root/.cache/pip pip install .

# A fixed uid so files in the data volume keep one owner across rebuilds.
RUN useradd --create-home --uid 10001 mnemo \
    && mkdir -p /var/lib/mnemo \
    && chown mnemo:mnemo /var/lib/mnemo

USER mnemo
ENV MEMORY_DATA_DIR=/var/lib/mnemo
# Build the int8 embedding model once, into the image (~/.cache/mnemo), not at every start.
RUN python -c "from memory.embedding import OnnxMiniLMEmbedder; OnnxMiniLMEmbedder().load()"
# Run from the data directory, not /src, so the installed package is imported
# (and the bundled graph server, if ever used, writes its ./log there).
WORKDIR /var/lib/mnemo

CMD ["python", "-m", "bot"]
