# mailflow: the API (default) or the worker, from one image.
#   docker build -t mailflow .
#   docker run -e MAILFLOW_REDIS_URL=redis://redis:6379/0 -p 8080:8080 mailflow          # api
#   docker run -e MAILFLOW_REDIS_URL=redis://redis:6379/0 mailflow worker                # worker
# Production runs against a real Redis (MAILFLOW_REDIS_URL); the embedded one is for `mailflow
# run` on a workstation and is not started here.

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
RUN useradd --system --uid 10001 --home-dir /var/lib/mailflow --create-home mailflow \
 && chmod 0755 /usr/local/bin/docker-entrypoint.sh
USER mailflow
WORKDIR /var/lib/mailflow
EXPOSE 8080
# /healthz needs no key and carries no tenant data; the standard library does the request.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('MAILFLOW_PORT', '8080'), timeout=2)"]
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["api"]
