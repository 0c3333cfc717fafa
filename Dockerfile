# syntax=docker/dockerfile:1
#
# Arena's image: web (Granian, WSGI), ws (uvicorn, ASGI), Celery workers, beat and migrations all
# run from it.
#
#   docker build -t arena .                              # API backends only
#   docker build -t arena-gpu --build-arg WITH_GPU=1 .   # plus torch/transformers (the gpu extra)
#
# Two stages: the builder has compilers and produces a virtual environment in /opt/venv; the
# runtime stage copies only that environment and the source, so no compiler ships.

ARG PYTHON_VERSION=3.11

# --- builder --------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim AS builder

# 1 adds the "gpu" extra (torch, transformers, accelerate). PyPI's torch wheels for Linux bundle the
# CUDA runtime; the host only needs the NVIDIA driver and the NVIDIA Container Toolkit.
ARG WITH_GPU=0

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# Every dependency ships wheels for this platform today; the compiler is there for the day one
# falls back to a source build.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependencies first, read from pyproject.toml alone: a change to the code then reuses this layer
# instead of downloading torch again.
COPY pyproject.toml ./
RUN python - <<'EOF' > /tmp/requirements.txt && pip install --requirement /tmp/requirements.txt
import os, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
requirements = list(project["dependencies"])
if os.environ.get("WITH_GPU") == "1":
    requirements += project["optional-dependencies"]["gpu"]
print("\n".join(requirements))
EOF

# Then the project itself, with the same extras (a no-op for the dependencies installed above).
COPY . .
RUN if [ "$WITH_GPU" = "1" ]; then pip install ".[gpu]"; else pip install .; fi


# --- runtime --------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim AS runtime

# The app runs from its source tree in /app (settings find templates/ beside the packages there);
# PYTHONPATH puts that copy ahead of the one "pip install ." left in site-packages, whose metadata
# (version, entry points) stays available.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=arena.settings \
    ARENA_VAR_DIR=/app/var \
    HF_HOME=/var/cache/arena/huggingface

# A fixed uid/gid (1000) so that bind-mounted directories can be given to it on the host.
RUN groupadd --system --gid 1000 arena \
    && useradd --system --uid 1000 --gid arena --home-dir /home/arena --create-home arena

COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY . /app

# Static files are collected once, here, with DEBUG off so that WhiteNoise's manifest storage
# writes hashed, compressed copies. The secrets are dummies that exist only for this command: they
# are not in the image's environment and settings.py refuses to start without real ones.
RUN DEBUG=false SECRET_KEY=collectstatic-only ARENA_IP_SALT=collectstatic-only \
    python manage.py collectstatic --noinput \
    && python -m compileall -q arena ratings backends

# Writable places for the unprivileged user; the code itself stays owned by root (read-only to it).
# Named volumes mounted here start with this ownership.
RUN mkdir -p /app/var /var/cache/arena/huggingface \
    && chown -R arena:arena /app/var /var/cache/arena

# Health probe for the web and ws processes (both listen on $PORT, 8000 by default): GET /healthz
# must answer 200 (PostgreSQL and Redis reachable).
# It names a host from ALLOWED_HOSTS, or Django would answer 400, and says the request came over
# HTTPS, or SECURE_SSL_REDIRECT would answer with a redirect.
COPY --chmod=0755 <<"EOF" /usr/local/bin/arena-healthcheck
#!/opt/venv/bin/python
"""Exit 0 when GET http://127.0.0.1:8000/healthz answers 200, 1 otherwise."""
import os
import sys
import urllib.error
import urllib.request

hosts = [h.strip().lstrip(".") for h in os.environ.get("ALLOWED_HOSTS", "").split(",")]
host = next((h for h in hosts if h and "*" not in h), "localhost")
port = os.environ.get("PORT", "8000")
request = urllib.request.Request(
    f"http://127.0.0.1:{port}/healthz", headers={"Host": host, "X-Forwarded-Proto": "https"}
)
try:
    with urllib.request.urlopen(request, timeout=5) as response:
        sys.exit(0 if response.status == 200 else 1)
except (urllib.error.URLError, OSError) as exc:
    print(f"healthz: {exc}", file=sys.stderr)
    sys.exit(1)
EOF

# The "arena" user, by number, so that runAsNonRoot-style checks can verify it is not root.
USER 1000:1000

EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=6s --start-period=30s --retries=3 CMD ["arena-healthcheck"]

# The web process (pages and API; docs/deploy.md explains the options); docker-compose.yml gives
# each service its own command, e.g. uvicorn for the websockets.
CMD ["granian", "--interface", "wsgi", "arena.wsgi:application", "--host", "0.0.0.0", "--port", "8000", \
     "--blocking-threads", "8", "--no-ws", "--respawn-failed-workers"]
