"""config/.env.example and docker-compose.yml name only real settings, with values that load.

The settings classes ignore unknown environment variables (``extra="ignore"``),
so a misspelt name in either file would be dropped without a word. These tests
resolve every name to a field of ``BotSettings`` (which extends
``MemorySettings``), load the values through the environment exactly as the
bot would, and check each one was consumed by that field.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import AliasChoices, BaseModel, SecretStr

from bot.settings import BotSettings
from memory.settings import MemorySettings

ROOT = Path(__file__).resolve().parents[1]
ENV_EXAMPLE = ROOT / "config" / ".env.example"
COMPOSE = ROOT / "docker-compose.yml"
CHROMA_PROXY = ROOT / "config" / "chroma-auth.conf.template"
DOCKERFILE = ROOT / "Dockerfile"
# compose variables holding a server's secret: empty in the example, required by compose
SECRETS = ("POSTGRES_PASSWORD", "NEO4J_PASSWORD", "REDIS_PASSWORD", "CHROMA_TOKEN")

# "NAME=value" (set) or "# NAME=value" (documented, commented out)
_ASSIGNMENT = re.compile(r"^(?P<commented>#\s?)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")
# ${NAME}, ${NAME:-default}, ${NAME:?message} and friends, as compose interpolates them
_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<rest>[^}]*)\}")
_APP_SERVICES = ("bot", "worker")


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _example() -> list[tuple[str, str, bool]]:
    """(name, value, active) for every assignment in the example file, in order."""
    found = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = _ASSIGNMENT.match(line.strip())
        if match:
            found.append((match["name"], _unquote(match["value"]), match["commented"] is None))
    return found


def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _interpolated_names(text: str) -> set[str]:
    return {m["name"] for m in _INTERPOLATION.finditer(text)}


class ComposeRefuses(Exception):
    """What ``docker compose`` does for ``${NAME:?message}`` when NAME is unset or empty."""


def _interpolate(value: str, variables: dict[str, str]) -> str:
    """``value`` as compose interpolates it: ``${N}``, ``${N:-default}``, ``${N:?message}`` (refuses)."""
    def one(match: re.Match[str]) -> str:
        name, rest = match["name"], match["rest"]
        current = variables.get(name)
        if rest.startswith(":?"):
            if not current:
                raise ComposeRefuses(name)
            return current
        if rest.startswith(":-"):
            return current or rest[2:]
        assert current is not None, f"compose needs {name}, which .env.example does not set"
        return current
    return _INTERPOLATION.sub(one, value)


def _strings(node: Any) -> Iterator[str]:
    """Every string in a parsed YAML document (compose interpolates them all)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def _filled_dotenv() -> dict[str, str]:
    """The example's active lines with every secret set, as an operator's .env would be."""
    dotenv = {name: value for name, value, is_active in _example() if is_active}
    return dotenv | {name: secrets.token_hex(16) for name in SECRETS}


def _aliases(info: Any) -> list[str]:
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return [a for a in alias.choices if isinstance(a, str)]
    return [alias] if isinstance(alias, str) else []


def _field_path(name: str, root: type[BaseModel] = BotSettings) -> tuple[str, ...] | None:
    """The attribute path of the setting that environment variable ``name`` sets, or None."""
    for field_name, info in root.model_fields.items():
        if name in _aliases(info):
            return (field_name,)
    model: type[BaseModel] | None = root
    path: list[str] = []
    for part in name.lower().split("__"):
        if model is None or part not in model.model_fields:
            return None
        path.append(part)
        annotation = model.model_fields[part].annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return tuple(path) if model is None else None  # a whole section is not one setting


def _leaf_names(model: type[BaseModel], prefix: str = "") -> set[str]:
    """The environment name of every leaf setting of ``model``."""
    names = set()
    for field_name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= _leaf_names(annotation, f"{prefix}{field_name.upper()}__")
        else:
            upper = [a for a in _aliases(info) if a.isupper()]
            names.add(upper[0] if upper and not prefix else f"{prefix}{field_name.upper()}")
    return names


def _matches(loaded: Any, raw: str) -> bool:
    """Whether ``loaded`` is what the environment string ``raw`` means for its type."""
    if isinstance(loaded, SecretStr):
        return loaded.get_secret_value() == raw
    if isinstance(loaded, bool):
        return loaded == (raw.strip().lower() in {"1", "true", "yes", "on"})
    if isinstance(loaded, int | float):
        return float(loaded) == float(raw)
    if isinstance(loaded, Path):
        return loaded == Path(raw)
    if isinstance(loaded, frozenset):
        return loaded == frozenset(int(p) for p in raw.replace(",", " ").split())
    if isinstance(loaded, Mapping):
        return dict(loaded) == dict(p.split("=", 1) for p in raw.replace(",", " ").split())
    return bool(loaded == raw)


def _assert_landed(settings: BaseModel, name: str, raw: str) -> None:
    path = _field_path(name)
    assert path is not None, f"{name} is not a setting"
    holder: Any = settings
    for part in path:
        assert part in holder.model_fields_set, f"{name} did not reach {'.'.join(path)}"
        holder = getattr(holder, part)
    assert _matches(holder, raw), f"{name}={raw!r} loaded as {holder!r}"


def _load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str],
          cls: type[MemorySettings]) -> MemorySettings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # settings read ./.env: only the environment given here, never a developer's
    return cls()


def test_every_name_in_env_example_is_a_setting_or_a_compose_variable() -> None:
    compose_variables = _interpolated_names(COMPOSE.read_text())
    unknown = [name for name, _, _ in _example()
               if _field_path(name) is None and name not in compose_variables]
    assert unknown == []


def test_env_example_names_each_variable_once() -> None:
    names = [name for name, _, _ in _example()]
    assert sorted({n for n in names if names.count(n) > 1}) == []


def test_env_example_documents_every_memory_setting() -> None:
    named = {name for name, _, _ in _example()}
    assert sorted(_leaf_names(MemorySettings) - named) == []


def test_env_example_values_load_into_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Every line at once, commented or not: the values must validate together too
    # (e.g. the pool bounds), and each must land in its own field.
    settings_vars = {name: value for name, value, _ in _example() if _field_path(name) is not None}
    assert "REDIS__URL" in settings_vars and "MEMORY_DATA_DIR" in settings_vars
    bot_settings = _load(monkeypatch, tmp_path, settings_vars, BotSettings)
    for name, value in settings_vars.items():
        _assert_landed(bot_settings, name, value)
    # the memory CLI reads the same .env with MemorySettings: the bot's names must not upset it
    memory_settings = _load(monkeypatch, tmp_path, settings_vars, MemorySettings)
    assert memory_settings.redis.url == settings_vars["REDIS__URL"]


def test_env_example_leaves_the_tier_urls_unset() -> None:
    # the default is the bundled servers; a copied example must not point at servers nobody runs
    active = {name for name, _, is_active in _example() if is_active}
    assert not active & {"REDIS__URL", "POSTGRES__DSN", "CHROMA__URL", "NEO4J__URI"}


def test_compose_variables_are_set_by_the_env_example() -> None:
    active = {name for name, _, is_active in _example() if is_active}
    assert sorted(_interpolated_names(COMPOSE.read_text()) - active) == []


@pytest.mark.parametrize("service_name", _APP_SERVICES)
def test_compose_app_environment_loads_into_the_settings(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, service_name: str) -> None:
    # What the container sees: the copied .env (env_file) overlaid by the service's environment,
    # interpolated with the same .env as compose does.
    service = _compose()["services"][service_name]
    assert service["env_file"] in (".env", [".env"])
    dotenv = _filled_dotenv()
    environment = {name: _interpolate(value, dotenv) for name, value in _environment(service).items()}
    assert {"REDIS__URL", "POSTGRES__DSN", "CHROMA__URL", "CHROMA__TOKEN", "NEO4J__URI"} <= environment.keys()
    settings = _load(monkeypatch, tmp_path, {**dotenv, **environment}, BotSettings)
    for name, value in environment.items():
        _assert_landed(settings, name, value)
    # every server is reached with its secret
    assert settings.postgres.dsn is not None
    assert urlsplit(settings.postgres.dsn.get_secret_value()).password == dotenv["POSTGRES_PASSWORD"]
    assert settings.redis.url is not None and urlsplit(settings.redis.url).password == dotenv["REDIS_PASSWORD"]
    assert settings.chroma.token is not None
    assert settings.chroma.token.get_secret_value() == dotenv["CHROMA_TOKEN"]
    assert urlsplit(settings.chroma.url or "").hostname == "chroma-auth"     # through the token check
    assert settings.neo4j.password is not None
    assert settings.neo4j.password.get_secret_value() == dotenv["NEO4J_PASSWORD"]


def test_compose_refuses_to_start_without_each_secret() -> None:
    example = {name: value for name, value, is_active in _example() if is_active}
    assert {name: example.get(name) for name in SECRETS} == {name: "" for name in SECRETS}  # no default
    text = COMPOSE.read_text()
    for name in SECRETS:
        uses = re.findall(r"\$\{" + name + r"([^}]*)\}", text)
        assert uses and all(rest.startswith(":?") for rest in uses), f"{name} is not required everywhere"
        missing = _filled_dotenv() | {name: ""}
        with pytest.raises(ComposeRefuses, match=f"^{name}$"):
            for value in _strings(_compose()):
                _interpolate(value, missing)
    for value in _strings(_compose()):                     # all four set: compose starts
        _interpolate(value, _filled_dotenv())


def test_the_examples_ship_no_working_secret() -> None:
    for path in (ENV_EXAMPLE, COMPOSE, CHROMA_PROXY):
        assert "change-me" not in path.read_text().lower(), path
    for name, value, is_active in _example():
        path = _field_path(name)
        if not is_active or path is None:
            continue
        holder: Any = BotSettings
        for part in path[:-1]:
            holder = holder.model_fields[part].annotation
        annotation = str(holder.model_fields[path[-1]].annotation)
        assert "SecretStr" not in annotation or value == "", f"{name} ships a value"


def test_every_server_asks_for_its_secret() -> None:
    services = _compose()["services"]
    redis_command = services["redis"]["command"]
    assert redis_command[redis_command.index("--requirepass") + 1].startswith("${REDIS_PASSWORD:?")
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert services["neo4j"]["environment"]["NEO4J_AUTH"].startswith("neo4j/${NEO4J_PASSWORD:?")
    # Chroma has no authentication of its own: no published port, an internal network shared only
    # with the token-checking proxy, which is what the apps are pointed at
    chroma, proxy = services["chroma"], services["chroma-auth"]
    assert "ports" not in chroma and chroma["networks"] == ["chroma-internal"]
    assert _compose()["networks"]["chroma-internal"]["internal"] is True
    assert [name for name, s in services.items() if "chroma-internal" in s.get("networks", [])] == [
        "chroma", "chroma-auth"]
    assert proxy["environment"]["CHROMA_TOKEN"].startswith("${CHROMA_TOKEN:?")
    mounted = proxy["volumes"][0].split(":")[0]
    assert (ROOT / mounted).resolve() == CHROMA_PROXY


def test_images_are_pinned_to_exact_versions() -> None:
    # a full version (major.minor.patch; PostgreSQL's exact versions are major.minor) or a digest:
    # never latest, a bare major or a moving minor
    pinned = re.compile(r"^([\w./-]+:[\w.-]*\d+\.\d+\.\d+[\w.-]*|postgres:\d+\.\d+[\w.-]*"
                        r"|[\w./-]+@sha256:[0-9a-f]{64})$")
    for name, service in _compose()["services"].items():
        if "build" in service:          # built here from the Dockerfile, checked below
            continue
        assert pinned.match(service["image"]), f"{name}: {service['image']} is not pinned"
    bases = re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), re.MULTILINE)
    assert bases and all(pinned.match(base) for base in bases), bases


@pytest.mark.skipif(shutil.which("nginx") is None or shutil.which("envsubst") is None,
                    reason="nginx is not installed here (not needed by mnemo itself: the proxy runs in compose)")
def test_chroma_proxy_lets_only_the_token_through(chroma_http_url: str, tmp_path: Path) -> None:
    import httpx

    from tests import servers

    token = secrets.token_hex(16)
    port = servers.free_port()
    # what the nginx image does at start: fill in the variables it has (only those)
    conf = subprocess.run(["envsubst", "${CHROMA_TOKEN}"], input=CHROMA_PROXY.read_text(), text=True,
                          capture_output=True, check=True, env={"CHROMA_TOKEN": token}).stdout
    conf = conf.replace("http://chroma:8000", chroma_http_url.rstrip("/")).replace(
        "listen 8000;", f"listen 127.0.0.1:{port};")
    (tmp_path / "site.conf").write_text(conf)
    (tmp_path / "logs").mkdir()
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/logs/error.log; events {{}} "
        f"http {{ access_log off; include {tmp_path}/site.conf; }}")
    proc = subprocess.Popen(["nginx", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
                             "-g", "daemon off;"], stderr=subprocess.DEVNULL)
    try:
        servers.wait_port(port, 20)
        heartbeat = f"http://127.0.0.1:{port}/api/v2/heartbeat"
        statuses = [httpx.get(heartbeat, headers=headers).status_code for headers in (
            {}, {"Authorization": f"Bearer {token}x"}, {"Authorization": token}, {"X-Chroma-Token": token[:-1]},
            {"Authorization": f"Bearer {token}"}, {"X-Chroma-Token": token})]
        assert statuses == [401, 401, 401, 401, 200, 200]
    finally:
        proc.terminate()
        proc.wait(10)
    # an empty token would let everything through: nginx refuses such a configuration
    empty = subprocess.run(["envsubst", "${CHROMA_TOKEN}"], input=CHROMA_PROXY.read_text(), text=True,
                           capture_output=True, check=True, env={"CHROMA_TOKEN": ""}).stdout
    (tmp_path / "site.conf").write_text(empty.replace("http://chroma:8000", chroma_http_url.rstrip("/")))
    check = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                           capture_output=True, text=True)
    assert check.returncode != 0 and "conflicting parameter" in check.stderr


def test_compose_worker_is_opt_in_and_runs_alone() -> None:
    services = _compose()["services"]
    assert services["worker"]["profiles"] == ["scale"]
    assert "profiles" not in services["bot"]
    assert _environment(services["worker"])["WORKER__IN_PROCESS"].lower() == "false"
    assert "WORKER__IN_PROCESS" not in _environment(services["bot"])  # the bot's choice stays in .env


def test_compose_apps_wait_for_healthy_tiers() -> None:
    services = _compose()["services"]
    for name in _APP_SERVICES:
        depends = services[name]["depends_on"]
        assert set(depends) == {"redis", "postgres", "chroma-auth", "neo4j"}
        for tier, condition in depends.items():
            assert condition == {"condition": "service_healthy"}
            assert services[tier]["healthcheck"]["test"], f"{tier} has no healthcheck"


def test_compose_publishes_ports_on_loopback_only() -> None:
    for name, service in _compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"
