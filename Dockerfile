# The production image: web (gunicorn), worker and beat all run from it (see docker-compose.yml).
FROM node:20-bookworm-slim AS assets
WORKDIR /assets
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# gunicorn 27 opens a control socket under $HOME by default; the image's user has no home, and neither
# the CMD nor docker-compose.yml uses it, so it stays off (applies to every gunicorn started here).
ENV GUNICORN_CMD_ARGS="--no-control-socket"
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# The runtime lock only: no test tools, no browser driver, no embedded PostgreSQL in the image.
COPY requirements/base.txt requirements/base.txt
RUN pip install --no-cache-dir --require-hashes -r requirements/base.txt
COPY . .
COPY --from=assets /assets/node_modules/chart.js/dist node_modules/chart.js/dist
RUN DJANGO_SECRET_KEY=build-only DATABASE_URL=sqlite:///tmp/build.db python manage.py collectstatic --no-input -v0
RUN useradd --system --uid 1000 portal && mkdir -p /app/var && chown portal /app/var
USER portal
EXPOSE 8000
CMD ["gunicorn", "portal.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
