"""The deployment files: docker-compose.yml, Dockerfile, .env.example, Procfile, systemd units, docs.

No container engine runs where the tests run, so docker-compose.yml is validated against the
Compose Specification's published JSON schema (vendored in the check-jsonschema package) and then
checked for the properties that matter: one shared definition for every app service, nothing that
stops `--scale web=4 --scale ws=2 --scale worker-api=8`, start order, volumes, the web tier's split
(Granian over WSGI for the pages, uvicorn over ASGI for the websockets, the proxy routing between
them), the GPU worker's reservation and profile, and no secret in any committed file. The
Dockerfile is checked as text, the Caddyfile also by Caddy where it is installed. Django is not
imported, so these tests run with `-p no:django` as well as under pytest-django.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

# Every service that runs Arena's code, and the ones `--scale` is meant for.
APP_SERVICES = ("migrate", "web", "ws", "worker-api", "worker-gpu", "beat")
LONG_RUNNING_APP_SERVICES = ("web", "ws", "worker-api", "worker-gpu", "beat")
SCALED_SERVICES = ("web", "ws", "worker-api")
# The web tier: pages and API on Granian (WSGI), live-battle websockets on uvicorn (ASGI).
WEB_COMMAND = (
    "granian --interface wsgi arena.wsgi:application --host 0.0.0.0 --port 8000 --workers ${WEB_WORKERS:-4} "
    "--blocking-threads ${WEB_THREADS:-8} --no-ws --respawn-failed-workers "
    "--workers-kill-timeout 20"
)
WS_COMMAND = "uvicorn arena.asgi:application --host 0.0.0.0 --port 8000 --workers ${WS_WORKERS:-2} --proxy-headers"

SECRET_NAME = re.compile(r"PASSWORD|SECRET|KEY|SALT|TOKEN", re.IGNORECASE)
PLACEHOLDERS = {"", "change-me"}
COMPOSE_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}")
ONLY_A_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(?:[:?\-][^}]*)?\}$")


# --- helpers -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def compose_schema() -> dict:
    """The Compose Specification schema (compose-spec/compose-spec, schema/compose-spec.json)."""
    vendor = files("check_jsonschema.builtin_schemas.vendor")
    return json.loads(vendor.joinpath("compose-spec.json").read_text(encoding="utf-8"))


def schema_errors(document: dict) -> list[str]:
    schema = compose_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = validator_class(schema).iter_errors(document)
    return sorted(f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors)


def command_text(service: dict) -> str:
    command = service["command"]
    return " ".join(command) if isinstance(command, list) else " ".join(command.split())


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: str(value) for key, value in env.items()}


def named_volume_at(compose: dict, service: dict, target: str) -> str | None:
    """The named volume mounted at ``target`` (short syntax), or None."""
    for volume in service.get("volumes", []):
        source, _, rest = volume.partition(":")
        if rest.split(":")[0] == target and source in (compose.get("volumes") or {}):
            return source
    return None


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: continuation lines joined, heredoc bodies skipped."""
    instructions: list[tuple[str, str]] = []
    lines = iter(DOCKERFILE.read_text(encoding="utf-8").splitlines())
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.endswith("\\"):
            line = line[:-1] + " " + next(lines).strip()
        keyword, _, arguments = line.strip().partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        heredoc = re.search(r"<<-?[\"']?([A-Za-z_]+)[\"']?", arguments)
        if heredoc:
            for body_line in lines:
                if body_line.strip() == heredoc.group(1):
                    break
    return instructions


def healthcheck_script() -> str:
    text = DOCKERFILE.read_text(encoding="utf-8")
    match = re.search(r"<<\"EOF\" /usr/local/bin/arena-healthcheck\n(.*?)\nEOF\n", text, re.DOTALL)
    assert match, "the Dockerfile writes /usr/local/bin/arena-healthcheck with a heredoc"
    return match.group(1)


def env_example() -> list[tuple[str, str, bool]]:
    """(name, value, commented_out) for every assignment in .env.example, commented ones too."""
    entries = []
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if match:
            entries.append((match.group(2), match.group(3), bool(match.group(1))))
    return entries


# --- the compose file against the Compose Specification ------------------------------------------


def test_the_compose_file_is_valid_against_the_compose_specification(compose):
    assert schema_errors(compose) == []


def test_the_schema_check_rejects_what_compose_would_reject(compose):
    # Guard against a vacuous pass: the same validation must catch real mistakes.
    broken = copy.deepcopy(compose)
    broken["services"]["web"]["depends_on"]["migrate"]["condition"] = "service_completed"
    broken["services"]["beat"]["restart_policy"] = "always"
    broken["services"]["redis"]["healthcheck"]["interval"] = 5
    errors = schema_errors(broken)
    assert any(e.startswith("services/web/depends_on") for e in errors), errors
    assert any(e.startswith("services/beat") and "restart_policy" in e for e in errors), errors
    assert any(e.startswith("services/redis/healthcheck/interval") for e in errors), errors


# --- the shared definition ------------------------------------------------------------------------


def test_every_app_service_merges_the_shared_app_definition():
    # Checked on the YAML node graph: an alias is the very node its anchor names, so this proves
    # each service starts from "<<: *app" and does not merely repeat similar keys.
    root = yaml.compose(COMPOSE_FILE.read_text(encoding="utf-8"))
    top = {key.value: value for key, value in root.value}
    app_node = top["x-app"]
    services = {key.value: value for key, value in top["services"].value}
    for name in APP_SERVICES:
        merged = [value for key, value in services[name].value if key.value == "<<"]
        assert merged and merged[0] is app_node, f"{name} does not start with <<: *app"


def test_app_services_share_image_build_env_file_and_connections(compose):
    app = compose["x-app"]
    services = compose["services"]
    for name in APP_SERVICES:
        service = services[name]
        assert service["env_file"] == app["env_file"] == ".env", name
        assert service["build"]["context"] == app["build"]["context"], name
        assert service["build"]["dockerfile"] == app["build"]["dockerfile"], name
        env = environment(service)
        assert env["DATABASE_URL"].startswith("postgres://arena:${POSTGRES_PASSWORD"), name
        assert env["DATABASE_URL"].endswith("@postgres:5432/arena"), name
        assert env["REDIS_URL"] == "redis://redis:6379/0", name
        if name != "worker-gpu":
            assert service["image"] == app["image"], name
            assert "args" not in service["build"], name
    gpu = services["worker-gpu"]
    assert gpu["build"]["args"] == {"WITH_GPU": "1"}
    assert gpu["image"] != app["image"], "the GPU build must not overwrite the plain image's tag"


# --- scaling, start order, health ----------------------------------------------------------------


def test_nothing_prevents_scaling_web_and_api_workers(compose):
    services = compose["services"]
    for name, service in services.items():
        assert "container_name" not in service, f"{name}: a fixed name cannot be scaled"
    for name in SCALED_SERVICES:
        assert "ports" not in services[name], f"{name}: a fixed host port cannot be scaled"
        assert "scale" not in services[name] and "replicas" not in services[name].get("deploy", {})
    published = sorted(name for name, service in services.items() if service.get("ports"))
    assert published == ["proxy"], "only the proxy publishes host ports"


def test_the_proxy_sends_websockets_to_ws_and_the_rest_to_web_over_every_replica(compose):
    proxy = compose["services"]["proxy"]
    mounted = [v.split(":")[0] for v in proxy["volumes"]]
    assert "./deploy/Caddyfile" in mounted
    assert set(proxy["depends_on"]) == {"web", "ws"}
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text(encoding="utf-8")
    # A DNS lookup of the service name, repeated: replicas added by --scale are picked up.
    websockets = re.search(r"handle /ws/\* \{\s*reverse_proxy \{\s*dynamic a ws 8000\s*\{\s*refresh", caddyfile)
    pages = re.search(r"handle \{\s*reverse_proxy \{\s*dynamic a web 8000\s*\{\s*refresh", caddyfile)
    assert websockets and pages, "handle /ws/* → ws, handle (the rest) → web, both with dynamic upstreams"


def caddy_routes(config: dict) -> dict[str, str]:
    """{path matcher or "*": upstream service name} of every reverse_proxy in an adapted config."""
    routes: dict[str, str] = {}

    def walk(route_list, path="*"):
        for route in route_list:
            paths = [p for m in route.get("match", []) for p in m.get("path", [])]
            here = ",".join(paths) or path
            for handler in route.get("handle", []):
                if handler["handler"] == "subroute":
                    walk(handler["routes"], here)
                elif handler["handler"] == "reverse_proxy":
                    upstreams = handler["dynamic_upstreams"]
                    routes[here] = f"{upstreams['name']}:{upstreams['port']}"

    for server in config["apps"]["http"]["servers"].values():
        walk(server["routes"])
    return routes


def test_caddy_accepts_the_caddyfile_and_routes_it_as_intended(tmp_path):
    if not shutil.which("caddy"):
        pytest.skip("caddy is not installed; the text check above covers the Caddyfile")
    result = subprocess.run(
        ["caddy", "adapt", "--config", str(ROOT / "deploy" / "Caddyfile"), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "ARENA_SITE_ADDRESS": "arena.example.org"},
    )
    assert result.returncode == 0, result.stderr
    # The /ws/* route and the catch-all are exclusive (one "handle" group): a socket never reaches web.
    assert caddy_routes(json.loads(result.stdout)) == {"/ws/*": "ws:8000", "*": "web:8000"}


def test_app_services_wait_for_migrations_and_healthy_backends(compose):
    services = compose["services"]
    for name in LONG_RUNNING_APP_SERVICES:
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name
        assert depends_on["postgres"]["condition"] == "service_healthy", name
        assert depends_on["redis"]["condition"] == "service_healthy", name
    migrate = services["migrate"]
    assert command_text(migrate) == "python manage.py migrate --noinput"
    assert migrate["restart"] == "no", "a one-shot service must not be restarted"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}


def test_postgres_keeps_its_data_in_a_named_volume_and_has_a_healthcheck(compose):
    postgres = compose["services"]["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert named_volume_at(compose, postgres, "/var/lib/postgresql/data") == "pgdata"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert postgres["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD")


def test_redis_has_a_healthcheck(compose):
    redis = compose["services"]["redis"]
    assert redis["image"].startswith("redis:")
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_web_and_ws_are_probed_on_healthz(compose):
    for name in ("web", "ws"):
        service = compose["services"][name]
        assert service["healthcheck"]["test"] == ["CMD", "arena-healthcheck"], name
        assert "disable" not in service["healthcheck"], name
        # Both listen where the probe asks (PORT, 8000 by default), and /healthz is Django's on both.
        assert "--port 8000" in command_text(service) and service["expose"] == ["8000"], name
    assert 'f"http://127.0.0.1:{port}/healthz"' in healthcheck_script()
    assert 'os.environ.get("PORT", "8000")' in healthcheck_script()
    # The other app containers do not listen on 8000: the image's probe would mark them unhealthy.
    assert compose["x-app"]["healthcheck"] == {"disable": True}


def test_https_and_the_client_address_come_from_the_proxy(compose):
    # Granian does not interpret X-Forwarded-Proto (uvicorn's --proxy-headers did): Django must.
    # "environment" beats env_file, so .env cannot turn these off behind the proxy by mistake.
    for name in ("web", "ws"):
        env = environment(compose["services"][name])
        assert env["SECURE_PROXY_SSL_HEADER"] == "true", name
        assert env["ARENA_TRUST_X_FORWARDED_FOR"] == "true", name
    settings_text = (ROOT / "arena" / "settings.py").read_text(encoding="utf-8")
    assert 'env_bool("SECURE_PROXY_SSL_HEADER", False)' in settings_text
    assert 'SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")' in settings_text


def test_web_threads_never_wait_for_a_database_connection(compose):
    # Each Granian thread may hold one pooled connection for the length of a request.
    threads = re.search(r"--blocking-threads \$\{WEB_THREADS:-(\d+)\}", command_text(compose["services"]["web"]))
    pool = re.search(r'env_int\("DB_POOL_MAX_SIZE", (\d+)\)', (ROOT / "arena" / "settings.py").read_text())
    assert threads and pool
    assert int(threads.group(1)) <= int(pool.group(1))


def test_the_commands_are_the_documented_ones(compose):
    services = compose["services"]
    assert command_text(services["web"]) == WEB_COMMAND
    assert command_text(services["ws"]) == WS_COMMAND
    # Granian stops busy workers before Docker's SIGKILL would cut everything off.
    assert services["web"]["stop_grace_period"] == "30s"
    assert command_text(services["worker-api"]) == (
        "celery -A arena worker -Q generate_api,ratings,default "
        "--concurrency ${API_WORKER_CONCURRENCY:-8} --loglevel INFO"
    )
    assert command_text(services["worker-gpu"]).startswith(
        "celery -A arena worker -Q generate_gpu --pool solo --concurrency 1"
    )
    assert command_text(services["beat"]).startswith("celery -A arena beat --loglevel INFO")


def test_the_gpu_worker_reserves_an_nvidia_gpu_behind_a_profile(compose):
    gpu = compose["services"]["worker-gpu"]
    assert gpu["profiles"] == ["gpu"], "a plain `docker compose up` must work without a GPU"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    env = environment(gpu)
    assert "CUDA_VISIBLE_DEVICES" in env
    assert named_volume_at(compose, gpu, env["HF_HOME"]) == "hf-cache"
    # Only the GPU worker has a profile: everything else starts by default.
    assert [n for n, s in compose["services"].items() if s.get("profiles")] == ["worker-gpu"]


# --- secrets ---------------------------------------------------------------------------------------


def _strings(node, path=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, f"{path}/{index}")
    elif isinstance(node, str):
        yield path, node


def secret_problems(document: dict) -> list[str]:
    """Values of *PASSWORD*/*SECRET*/*KEY*/... entries, and URL passwords, that are not ${VAR}."""
    problems = []
    for path, string in _strings(document):
        name, value = path.rsplit("/", 1)[-1], string
        list_entry = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", string)
        if name.isdigit() and list_entry:  # environment in list form: ["NAME=value", ...]
            name, value = list_entry.groups()
        if SECRET_NAME.search(name) and not ONLY_A_REFERENCE.match(value):
            problems.append(f"{path}: {value!r} is not a ${{VAR}} reference")
        for password in re.findall(r"://[^:/@\s]+:(\$\{[^}]*\}|[^@\s]+)@", value):
            if not ONLY_A_REFERENCE.match(password):
                problems.append(f"{path}: a URL with a literal password")
    return problems


def test_the_compose_file_holds_no_secret(compose):
    assert secret_problems(compose) == []


def test_the_secret_check_finds_literal_secrets(compose):
    leaky = copy.deepcopy(compose)
    leaky["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] = "hunter2"
    leaky["x-app-env"]["DATABASE_URL"] = "postgres://arena:hunter2@postgres:5432/arena"
    leaky["services"]["web"]["environment"] = ["OPENAI_API_KEY=sk-live"]
    problems = "\n".join(secret_problems(leaky))
    assert "/services/postgres/environment/POSTGRES_PASSWORD: 'hunter2'" in problems
    assert "/x-app-env/DATABASE_URL: a URL with a literal password" in problems
    assert "/services/web/environment/0: 'sk-live'" in problems


def test_env_example_has_placeholders_only():
    entries = env_example()
    assert entries, ".env.example assigns nothing"
    for name, value, _ in entries:
        if SECRET_NAME.search(name):
            assert value in PLACEHOLDERS, f".env.example: {name}={value!r} is not a placeholder"
    active = {name for name, _, commented in entries if not commented}
    # The secrets settings.py requires when DEBUG is off, and what compose cannot do without.
    assert {"SECRET_KEY", "ARENA_IP_SALT", "POSTGRES_PASSWORD"} <= active
    compose_text = COMPOSE_FILE.read_text(encoding="utf-8")
    required = {name for name, rest in COMPOSE_VARIABLE.findall(compose_text) if not rest.startswith(":-")}
    assert required <= active, f"compose needs {sorted(required - active)} and .env.example lacks them"


def test_no_real_env_file_is_baked_into_the_image():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()}
    assert {".env", ".venv", ".git", "var", "**/__pycache__", ".pytest_cache", "staticfiles"} <= ignored


# --- documentation --------------------------------------------------------------------------------


def test_the_deploy_docs_list_every_variable():
    settings_text = (ROOT / "arena" / "settings.py").read_text(encoding="utf-8")
    from_settings = set(
        re.findall(r"(?:env_(?:str|bool|int|float|list)|_secret)\(\s*\"([A-Z][A-Z0-9_]*)\"", settings_text)
    )
    assert {"SECRET_KEY", "ARENA_IP_SALT", "DATABASE_URL", "REDIS_URL"} <= from_settings, (
        "settings.py no longer reads variables the way this test expects; update the pattern"
    )
    from_compose = {name for name, _ in COMPOSE_VARIABLE.findall(COMPOSE_FILE.read_text(encoding="utf-8"))}
    from_env_example = {name for name, _, _ in env_example()}
    docs = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    missing = sorted(v for v in from_settings | from_compose | from_env_example if f"`{v}`" not in docs)
    assert missing == [], f"docs/deploy.md does not describe {missing}"


# --- the image ------------------------------------------------------------------------------------


def test_the_dockerfile_is_multi_stage_slim_and_runs_as_a_user():
    instructions = dockerfile_instructions()
    stages = [args for keyword, args in instructions if keyword == "FROM"]
    assert len(stages) >= 2, "a builder stage and a runtime stage"
    assert all(re.search(r"\sAS\s+\w+$", stage, re.IGNORECASE) for stage in stages)
    default_python = next(args for keyword, args in instructions if args.startswith("PYTHON_VERSION="))
    assert default_python.split("=", 1)[1] in {"3.11", "3.12"}
    assert all(stage.startswith("python:${PYTHON_VERSION}-slim ") for stage in stages)

    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    runtime = instructions[last_from:]
    assert any(k == "COPY" and a.startswith("--from=builder /opt/venv") for k, a in runtime)
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, "the runtime runs as a non-root user"
    assert ("EXPOSE", "8000") in runtime
    assert any(k == "HEALTHCHECK" and "arena-healthcheck" in a for k, a in runtime)
    # The default command is the web process: Granian serving the WSGI application.
    command = json.loads(next(args for keyword, args in runtime if keyword == "CMD"))
    assert command[:4] == ["granian", "--interface", "wsgi", "arena.wsgi:application"]


def test_the_gpu_extra_is_installed_only_with_the_build_arg():
    instructions = dockerfile_instructions()
    assert ("ARG", "WITH_GPU=0") in instructions
    installs = [a for k, a in instructions if k == "RUN" and "pip install" in a and '".[gpu]"' in a]
    assert installs and all('"$WITH_GPU" = "1"' in a for a in installs)


def test_static_files_are_collected_at_build_time_with_throwaway_secrets():
    instructions = dockerfile_instructions()
    collect = [a for k, a in instructions if k == "RUN" and "collectstatic" in a]
    assert collect, "collectstatic runs during the build"
    for variable in ("DEBUG=false", "SECRET_KEY=", "ARENA_IP_SALT="):
        assert variable in collect[0]
    # The dummy secrets exist for that one command only, never in the image's environment.
    env_lines = " ".join(a for k, a in instructions if k in {"ENV", "ARG"})
    assert "SECRET_KEY" not in env_lines and "ARENA_IP_SALT" not in env_lines


class _Healthz(BaseHTTPRequestHandler):
    status = 200
    hosts: list[str] = []

    def do_GET(self):
        type(self).hosts.append(f"{self.path} {self.headers['Host']} {self.headers['X-Forwarded-Proto']}")
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"database": "ok", "redis": "ok"}')

    def log_message(self, *args):
        pass


def test_the_image_healthcheck_passes_on_200_only(tmp_path):
    script = tmp_path / "arena-healthcheck"
    script.write_text(healthcheck_script(), encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Healthz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def probe(**env) -> int:
        full_env = {**os.environ, "PORT": str(server.server_port), **env}
        run = subprocess.run([sys.executable, str(script)], env=full_env, capture_output=True, timeout=30)
        return run.returncode

    try:
        _Healthz.status = 200
        assert probe(ALLOWED_HOSTS=".arena.example.org,localhost") == 0
        # A host Django accepts (else 400), and HTTPS as the proxy would say (else a redirect).
        assert _Healthz.hosts[-1] == "/healthz arena.example.org https"
        _Healthz.status = 503
        assert probe(ALLOWED_HOSTS="*") == 1
        assert _Healthz.hosts[-1] == "/healthz localhost https"
    finally:
        server.shutdown()
        server.server_close()
    assert probe(ALLOWED_HOSTS="localhost") == 1, "nothing listening is unhealthy"


# --- running without Docker -----------------------------------------------------------------------


def test_the_procfile_runs_the_same_processes():
    lines = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text(encoding="utf-8").splitlines() if line.strip()
    )
    assert {"web", "ws", "worker", "beat"} <= set(lines)
    assert lines["web"].strip() == WEB_COMMAND.replace("--port 8000", "--port ${PORT:-8000}")
    assert lines["ws"].strip() == WS_COMMAND.replace("--port 8000", "--port ${WS_PORT:-8001}")
    assert "celery -A arena worker -Q generate_api,ratings,default " in lines["worker"]
    assert lines["beat"].strip().startswith("celery -A arena beat ")


def test_the_systemd_units_read_etc_arena_env():
    units = sorted((ROOT / "deploy" / "systemd").glob("*.service"))
    assert {u.name for u in units} >= {
        "arena-migrate.service",
        "arena-web.service",
        "arena-ws.service",
        "arena-worker.service",
        "arena-worker-gpu@.service",
        "arena-beat.service",
    }
    for unit in units:
        text = unit.read_text(encoding="utf-8")
        assert "EnvironmentFile=/etc/arena.env" in text, unit.name
        assert "User=arena" in text, unit.name
        assert re.search(r"^ExecStart=\S+", text, re.MULTILINE), unit.name
    gpu = (ROOT / "deploy" / "systemd" / "arena-worker-gpu@.service").read_text(encoding="utf-8")
    assert "CUDA_VISIBLE_DEVICES=%i" in gpu and "--pool solo --concurrency 1" in gpu


def test_the_systemd_units_split_the_web_tier_like_compose():
    def exec_start(name: str) -> str:
        text = (ROOT / "deploy" / "systemd" / name).read_text(encoding="utf-8")
        return re.search(r"^ExecStart=(.*)$", text, re.MULTILINE).group(1)

    web, ws = exec_start("arena-web.service"), exec_start("arena-ws.service")
    # The same command as compose, on loopback ports of their own (the local proxy splits /ws/).
    assert web == "/opt/arena/.venv/bin/" + (
        WEB_COMMAND.replace("0.0.0.0", "127.0.0.1")
        .replace("${WEB_WORKERS:-4}", "${WEB_WORKERS}")
        .replace("${WEB_THREADS:-8}", "${WEB_THREADS}")
    )
    assert ws == "/opt/arena/.venv/bin/" + (
        WS_COMMAND.replace("0.0.0.0", "127.0.0.1").replace("8000", "8001").replace("${WS_WORKERS:-2}", "${WS_WORKERS}")
    )
    unit = (ROOT / "deploy" / "systemd" / "arena-web.service").read_text(encoding="utf-8")
    assert re.search(r"^Environment=.*\bSECURE_PROXY_SSL_HEADER=true\b", unit, re.MULTILINE)
    assert re.search(r"^Environment=.*\bWEB_THREADS=8\b", unit, re.MULTILINE)


# --- with Docker Compose itself, where it is installed --------------------------------------------


def _compose_v2() -> list[str] | None:
    candidates = [["docker", "compose"], ["docker-compose"]]
    for command in candidates:
        if not shutil.which(command[0]):
            continue
        try:
            version = subprocess.run([*command, "version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if version.returncode == 0 and re.search(r"\bv?2\.\d+", version.stdout):
            return command
    return None


def test_docker_compose_accepts_the_file(tmp_path):
    command = _compose_v2()
    if command is None:
        pytest.skip("Docker Compose v2 is not installed; the schema test above covers the file")
    for name in ("docker-compose.yml", "Dockerfile"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    for profile_args in ([], ["--profile", "gpu"]):
        result = subprocess.run(
            [*command, *profile_args, "config", "--quiet"], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
