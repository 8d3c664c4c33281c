# Small image running the same CLI as on a host: `docker run -p 5060:5060/udp spaces-bridge`.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bridge ./bridge
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir .

FROM python:3.11-slim
# The embedded conference server's mixer (docs/mixer.md): Debian bookworm's Janus, which the server
# starts and supervises itself. Pinned to the release docs/mixer.md was measured with.
RUN apt-get update \
    && apt-get install -y --no-install-recommends janus=1.1.2-1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
COPY config /etc/spaces-bridge
RUN useradd --system --uid 10001 --no-create-home bridge
USER 10001
# SIP, the relay's RTP range (4 ports a call), the conference API, the operations endpoint.
EXPOSE 5060/udp 5060/tcp 5061/tcp 20000-29999/udp 8080/tcp 9091/tcp
# /healthz of the operations endpoint ([ops] listen, 127.0.0.1:9091 by default); no curl in the image.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/opt/venv/bin/python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:9091/healthz', timeout=2)"]
ENTRYPOINT ["/opt/venv/bin/spaces-bridge"]
CMD ["run", "--config", "/etc/spaces-bridge/bridge.toml"]
