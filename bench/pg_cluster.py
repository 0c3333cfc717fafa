"""A private PostgreSQL server for the benchmarks, configured like the deployment's.

The machine's own PostgreSQL keeps the packaged defaults (shared_buffers 128 MB), which no
deployment of Arena should run with: a campaign of a million votes is about 700 MB of tables and
indexes, so with 128 MB of buffers the hand-out and the vote read their index pages from the kernel's
page cache, and where that cache is short-lived (as on this machine), from disk. The benchmarks
measure the site as docker-compose.yml deploys it, so they start a throwaway server with the
settings of the compose file's ``postgres`` service (the ``-c name=value`` arguments of its command,
with ``${VAR:-default}`` taken at its default).
"""

from __future__ import annotations

import itertools
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
_DEFAULT = re.compile(r"\$\{[A-Z0-9_]+:-([^}]*)\}")


def deployment_settings(compose_file: Path = ROOT / "docker-compose.yml") -> dict[str, str]:
    """The server settings that docker-compose.yml gives PostgreSQL (``-c name=value`` pairs)."""
    command = yaml.safe_load(compose_file.read_text(encoding="utf-8"))["services"]["postgres"]["command"]
    settings = {}
    for flag, value in itertools.pairwise(command):
        if flag == "-c":
            name, _, setting = _DEFAULT.sub(r"\1", value).partition("=")
            settings[name] = setting
    return settings


def _bindir() -> Path:
    found = shutil.which("pg_config")
    if found:
        return Path(subprocess.run([found, "--bindir"], capture_output=True, text=True, check=True).stdout.strip())
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not versions:
        raise SystemExit("PostgreSQL's programs (initdb, pg_ctl) are not installed")
    return versions[-1]


def _as_postgres(argv: list[str]) -> list[str]:
    """initdb refuses to run as root: run the server's programs as the postgres user then."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


@contextmanager
def private_server(port: int, settings: dict[str, str]) -> Iterator[str]:
    """A fresh PostgreSQL server on 127.0.0.1:``port`` (trust authentication); yields its admin URL
    and removes it afterwards."""
    bindir = _bindir()
    home = Path(tempfile.mkdtemp(prefix="arena-bench-pg-"))
    if os.geteuid() == 0:
        os.chown(home, pwd.getpwnam("postgres").pw_uid, -1)
    data = home / "data"
    subprocess.run(
        _as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    options = " ".join(f"-c {name}={value}" for name, value in settings.items())
    options += f" -p {port} -k {home} -c listen_addresses=127.0.0.1"
    ctl = str(bindir / "pg_ctl")
    subprocess.run(
        _as_postgres([ctl, "-D", str(data), "-o", options, "-l", str(home / "server.log"), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres([ctl, "-D", str(data), "-m", "fast", "stop"]), capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
