# promptreg: one image for the web server, the Celery worker and Celery beat (see compose.yaml and the README's
# "Running in production"; the commands below are the ones tests/promptreg/test_production.py runs).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONPATH=/app \
    PROMPTREG_VAR_DIR=/var/lib/promptreg

WORKDIR /app
COPY pyproject.toml README.md manage.py ./
COPY promptreg promptreg
COPY experiments experiments
COPY rollout rollout
COPY templates templates
COPY static static
RUN pip install . \
 && useradd --system --home-dir /var/lib/promptreg promptreg \
 && mkdir -p /var/lib/promptreg && chown promptreg /var/lib/promptreg

USER promptreg
# Static files belong to the code: collected (hashed, gzipped) when the image is built. The key is only for this step.
RUN DEBUG=false SECRET_KEY=collectstatic-at-build-time-only python manage.py collectstatic --noinput

EXPOSE 8000
# web; compose.yaml runs the same image as `celery -A promptreg worker --loglevel=INFO`,
# `celery -A promptreg beat --loglevel=INFO` and, before them, `python manage.py migrate --noinput`.
CMD ["gunicorn", "promptreg.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4", "--threads", "4"]
