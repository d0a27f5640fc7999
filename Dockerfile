# syntax=docker/dockerfile:1
# tandem image: one image for both processes; docker-compose.yml runs it as `tandem executor`
# and `tandem brain`. Build: docker build -t tandem-trader:0.1.0 .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what the package needs (README.md is pyproject's `readme`).
WORKDIR /tmp/src
COPY pyproject.toml requirements.lock README.md LICENSE ./
COPY protocol/ protocol/
COPY brain/ brain/
COPY executor/ executor/
COPY tandem/ tandem/
# requirements.lock pins the whole dependency tree; it is used as a constraints file, exactly as
# the Makefile does. A regular (non-editable) install, so the source tree is not needed afterwards.
RUN pip install -c requirements.lock . \
 && cd / && rm -rf /tmp/src

# Non-root. uid 1000 so that a bus secret file created by a typical desktop user with mode 0600
# is still readable through the compose secret's bind mount. /data is the run directory
# (journals, reports); created here so a fresh named volume inherits the owner.
RUN groupadd --gid 1000 tandem \
 && useradd --uid 1000 --gid tandem --home-dir /data --no-create-home --shell /usr/sbin/nologin tandem \
 && mkdir /data && chown tandem:tandem /data
USER tandem
WORKDIR /data

# decisions (executor listens), confirmations (brain listens), metrics brain / executor
EXPOSE 45110/udp 45115/udp 9101/tcp 9102/tcp

CMD ["tandem", "--help"]
