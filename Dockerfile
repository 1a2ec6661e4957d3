# syntax=docker/dockerfile:1
#
# Performer image: a multi-stage build on node:20-bookworm-slim.
#
#   base      - node + the npm that wrote package-lock.json (npm 11, which honours
#               package.json's "allowScripts" policy; node:20's bundled npm 10 ignores it
#               and would run the denied bufferutil / utf-8-validate install scripts).
#   build     - all dependencies (the compiler is a devDependency), `npm run build` (tsc -> dist/).
#   prod-deps - production dependencies only (`npm ci --omit=dev`).
#   runtime   - node, dist/ and the production node_modules; runs as the
#               unprivileged `node` user (uid 1000, shipped by the node image).
#
# Build:  docker build -t performer .
# Run:    docker run -p 4000:4000 -e DATABASE_URL=postgres://... performer
#         (without DATABASE_URL the server starts an embedded Postgres instead).

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS base
ARG NPM_VERSION=11.19.1
RUN npm install --global "npm@${NPM_VERSION}" \
 && npm cache clean --force
WORKDIR /app
COPY package.json package-lock.json ./

FROM base AS build
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM base AS prod-deps
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
# HOST is set on purpose: without it the server listens on 127.0.0.1 while JWT_SECRET is the demo secret,
# and a published port (-p 4000:4000) would reach nothing inside the container.
ENV NODE_ENV=production \
    PORT=4000 \
    HOST=0.0.0.0
WORKDIR /app
COPY --from=prod-deps /app/package.json /app/package-lock.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Apache-2.0 asks that the licence travel with the software.
COPY LICENSE ./
# The code stays root-owned (read-only to the server); only the local state
# directory (.performer/, e.g. an embedded Postgres when DATABASE_URL is unset) is writable.
RUN mkdir -p /app/.performer && chown node:node /app/.performer
USER node
EXPOSE 4000
# The slim image has no curl/wget: probe with node's built-in fetch.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||4000)+'/healthcheck',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))"]
# Start node directly: `npm start` would rebuild (prestart) and npm does not forward signals.
CMD ["node", "dist/main.js"]
