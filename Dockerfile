# The image of hookstream's workers and one-shot commands in docker-compose.yml:
#   docker build -t hookstream .   then   docker run --rm hookstream --help
# Every dependency ships manylinux wheels (confluent-kafka, orjson, psycopg-binary, ...): no compiler.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# The packages pyproject.toml's [tool.setuptools.packages.find] includes, and what the build reads.
COPY pyproject.toml constraints.txt README.md ./
COPY hookstream ./hookstream
COPY producers ./producers
COPY streams ./streams
COPY delivery ./delivery
COPY schemas ./schemas
RUN pip install -c constraints.txt '.[postgres]' \
    && useradd --system --home-dir /var/lib/hookstream --create-home hookstream

# State (the stream worker's data dir, the default SQLite file) in the user's home; /metrics on
# every interface so Prometheus in another container can scrape it (the port is per service).
ENV HOOKSTREAM_STATE_DIR=/var/lib/hookstream \
    HOOKSTREAM_METRICS_HOST=0.0.0.0
USER hookstream
WORKDIR /var/lib/hookstream
ENTRYPOINT ["hookstream"]
CMD ["--help"]
