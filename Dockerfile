# The llmfleet operator image: `make image`.
# Build stage: a wheel of the package and wheels of its dependencies.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Final stage: the wheels installed into a virtualenv, no compilers, no pip cache, non-root.
FROM python:3.11-slim
RUN python -m venv /opt/llmfleet
COPY --from=build /wheels /wheels
RUN /opt/llmfleet/bin/pip install --no-cache-dir --no-index --find-links /wheels llmfleet \
    && rm -rf /wheels \
    && /opt/llmfleet/bin/pip uninstall --yes pip setuptools wheel
ENV PATH=/opt/llmfleet/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["llmfleet", "run"]
