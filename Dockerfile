# subsbot: the bot, its webhook service, /healthz and the JSON API in one process.
#   docker build -t subsbot .
#   docker run -d --name subsbot --env-file .env -p 8080:8080 -v subsbot-data:/data subsbot
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies in their own layer: rebuilt only when pyproject.toml or constraints.txt changes
# (the versions CI passed with).
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip install -r requirements.txt -c constraints.txt

# The project itself (no dependencies left to fetch).
COPY README.md ./
COPY payments ./payments
COPY bot ./bot
COPY fakes ./fakes
RUN pip install --no-deps . && rm -rf build

# A user without a shell or root rights; SQLite lives on the /data volume, which only it can
# open (a new named volume takes this folder's owner and mode).
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin subsbot \
    && mkdir -p /data && chown subsbot:subsbot /data && chmod 700 /data
USER subsbot
VOLUME ["/data"]

ENV DATABASE_URL=sqlite:////data/subsbot.sqlite3 \
    HOST=0.0.0.0 \
    PORT=8080
EXPOSE 8080

# 503 (the database is gone, the bot stopped, its jobs stalled) or no answer: unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=4)"]

CMD ["subsbot", "run"]
