FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 CRISIS_INSTANCE_PATH=/var/lib/crisis
RUN useradd --system --home /app crisis && mkdir -p /var/lib/crisis && chown crisis /var/lib/crisis
WORKDIR /app
COPY pyproject.toml README.md ./
COPY crisis ./crisis
COPY channels ./channels
COPY templates ./templates
COPY static ./static
COPY runbooks ./runbooks
RUN pip install --no-cache-dir -e .
USER crisis
EXPOSE 5000
CMD ["gunicorn", "-w", "1", "--threads", "32", "-b", "0.0.0.0:5000", "crisis.wsgi:app"]
