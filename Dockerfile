# syntax=docker/dockerfile:1
# tandem image: one image for every tandem process; docker-compose.yml runs it as `tandem keygen`,
# `tandem executor` and `tandem brain`. Build: docker build -t tandem-trader:0.1.0 .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Non-root. uid 1000, the usual first desktop user. /data is the run directory (journals,
# reports), /secrets holds the bus secret `tandem keygen` writes; both are created here, owned by
# tandem, so a fresh named volume mounted there inherits the owner.
RUN groupadd --gid 1000 tandem \
 && useradd --uid 1000 --gid tandem --home-dir /data --no-create-home --shell /usr/sbin/nologin tandem \
 && mkdir /data /secrets \
 && chown tandem:tandem /data /secrets \
 && chmod 0700 /secrets

WORKDIR /tmp/src

# 1. Dependencies, in a layer of their own: rebuilt only when pyproject.toml or requirements.lock
#    change, not on every source edit. The runtime dependencies are pyproject's [project]
#    dependencies (not the test extras), each pinned by requirements.lock, which pins the whole
#    tree and is used as a constraints file exactly as the Makefile does.
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > requirements.runtime \
 && pip install -c requirements.lock -r requirements.runtime

# 2. The package itself, without touching the dependencies installed above. A regular
#    (non-editable) install, so the source tree is not needed afterwards. README.md is
#    pyproject's `readme`.
COPY README.md LICENSE ./
COPY protocol/ protocol/
COPY foundation/ foundation/
COPY brain/ brain/
COPY executor/ executor/
COPY tandem/ tandem/
COPY testbed/ testbed/
RUN pip install --no-deps . \
 && pip check \
 && cd / && rm -rf /tmp/src

USER tandem
WORKDIR /data

# decisions (executor listens), confirmations (brain listens), metrics brain / executor
EXPOSE 45110/udp 45115/udp 9101/tcp 9102/tcp

CMD ["tandem", "--help"]
