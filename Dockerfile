# qunbot with the Wechaty adapter. Python 3.11: python-wechaty's puppet-service client needs
# 3.11 or 3.12 (it imports telnetlib, removed in 3.13), and 3.11 is what the tests run on.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY plugins ./plugins
RUN pip install '.[wechaty]'
# The Wechaty config (every plugin on); docker-compose mounts the host's config/wechaty folder
# over it, so that edits there apply without a restart.
COPY config/wechaty/bot.yaml ./config/bot.yaml

# Run unprivileged; /app/data holds the SQLite database when no PostgreSQL URL is given.
RUN useradd --create-home --uid 10001 qunbot && mkdir -p /app/data && chown qunbot /app/data
USER qunbot
VOLUME ["/app/data"]

# SIGTERM (docker stop) shuts down cleanly: queued sends are drained, the event log flushed.
STOPSIGNAL SIGTERM
# Commands run with `docker compose exec qunbot qunbot …` start in /app and find
# config/bot.yaml without --config.
CMD ["qunbot", "run", "--config", "/app/config/bot.yaml"]
