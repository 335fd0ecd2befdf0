# vram-check webhook service (the GitHub App). Configuration only through the environment:
#   GITHUB_WEBHOOK_SECRET, GITHUB_APP_ID + GITHUB_APP_PRIVATE_KEY (or GITHUB_TOKEN), GITHUB_API_URL,
#   HF_ENDPOINT, HF_TOKEN. The Hugging Face cache lives on the /cache/huggingface volume; the embedded job store
#   (one replica) on /state (VRAM_CHECK_STATE_DIR); several replicas share VRAM_CHECK_REDIS_URL instead.

# -- build: a wheel of this package and of its dependencies --------------------------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY estimator ./estimator
COPY rules ./rules
RUN pip wheel --wheel-dir /wheels .

# -- runtime: the wheels installed, nothing else --------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HOME=/cache/huggingface \
    VRAM_CHECK_STATE_DIR=/state
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links /wheels vram-check \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent vram \
    && mkdir -p /cache/huggingface /state \
    && chown -R 10001:10001 /cache /state
USER 10001:10001
VOLUME ["/cache/huggingface", "/state"]
EXPOSE 8080
# python:3.11-slim has no curl: probe /healthz with the standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["vram-check"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
