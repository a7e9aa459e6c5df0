# mailflow: the API (default) or the worker, from one image.
#   docker build -t mailflow .
#   docker run -e MAILFLOW_REDIS_URL=redis://redis:6379/0 -p 8080:8080 mailflow          # api
#   docker run -e MAILFLOW_REDIS_URL=redis://redis:6379/0 mailflow worker                # worker
# Production runs against a real Redis (MAILFLOW_REDIS_URL); the embedded one (the `embedded`
# extra, mailflow[embedded]) is for `mailflow run` on a workstation: not installed here.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
RUN python -m venv /opt/mailflow \
 && /opt/mailflow/bin/pip install --upgrade pip \
 && /opt/mailflow/bin/pip install .

FROM python:3.11-slim
LABEL org.opencontainers.image.title="mailflow" \
      org.opencontainers.image.description="TLS mail-flow reports and insights over a REST API"
ENV PATH=/opt/mailflow/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MAILFLOW_DATA_DIR=/var/lib/mailflow \
    MAILFLOW_PORT=8080
COPY --from=build /opt/mailflow /opt/mailflow
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN groupadd --system --gid 10001 mailflow \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/mailflow --create-home mailflow \
 && chmod 0755 /usr/local/bin/docker-entrypoint.sh
USER 10001:10001
WORKDIR /var/lib/mailflow
EXPOSE 8080
# A probe per role (see docker-entrypoint.sh): the API asks its own /readyz (Redis answers and
# takes writes, its data is there, a worker is alive), a worker checks its heartbeat in Redis.
# /healthz would call an API "healthy" with no Redis behind it, and a worker serves no HTTP.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["docker-entrypoint.sh", "healthcheck"]
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["api"]
