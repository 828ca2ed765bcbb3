# amendctl: one image for the worker (default) and the API (`serve`).
#   docker build -t amendctl:0.1.0 .
#   docker run amendctl:0.1.0 worker | serve --port 8080 --host 0.0.0.0 ... | any other command
# The build stage compiles lib/ and the prebuilt workflow bundles (lib/workflow-bundle*.js); the
# runtime stage has production dependencies only and builds nothing when it starts.
ARG NODE_IMAGE=node:20.19.5-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    AMENDCTL_WORKFLOW_BUNDLE=/app/lib/workflow-bundle.js \
    AMENDCTL_METRICS_HOST=0.0.0.0
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force \
 && groupadd --gid 10001 amendctl \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin amendctl
COPY --from=build /src/lib ./lib
COPY bin ./bin
# The policies (targets, rules, approvals examples): the defaults AMENDCTL_TARGETS and AMENDCTL_RULES fall back to.
COPY examples ./examples
USER 10001:10001
# 8080: the API (serve); 9464: a worker's /healthz, /readyz and /metrics (AMENDCTL_METRICS_PORT).
EXPOSE 8080 9464
ENTRYPOINT ["node", "bin/amendctl"]
CMD ["worker"]
