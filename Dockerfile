# vTTS CPU image on the bundled Piper voice. Multi-stage: wheels are built in the first stage, the runtime
# stage has no compilers and runs as an unprivileged user.
#   docker build -t vtts:cpu .
#   docker run --rm -p 8000:8000 vtts:cpu
# CUDA variant: docker build -f Dockerfile.cuda -t vtts:cuda .

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY core core
COPY supervisor supervisor
COPY workers workers
COPY frontend frontend
COPY configs configs
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[cpu]"

FROM python:3.11-slim
RUN groupadd --system --gid 10001 vtts && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /var/lib/vtts --shell /usr/sbin/nologin vtts
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels "vtts[cpu]" && rm -rf /wheels
USER vtts
WORKDIR /var/lib/vtts
EXPOSE 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/ready').status != 200)"
ENTRYPOINT ["vtts", "serve", "--host", "0.0.0.0", "--port", "8000"]
