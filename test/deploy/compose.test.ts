/**
 * Static checks of the container deployment: docker-compose.yml, deploy/prometheus.yml, the Dockerfile and
 * .dockerignore. No Docker engine is needed; when the `docker compose` CLI is installed, its own validation
 * (`docker compose config -q`, which also works without an engine) runs as an extra case.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');
const PROMETHEUS_FILE = join(ROOT, 'deploy/prometheus.yml');
const DOCKERFILE = join(ROOT, 'Dockerfile');
const DOCKERIGNORE = join(ROOT, '.dockerignore');

/** Every environment variable Performer documents (see src/config). */
const APP_ENV_VARS = [
  'PORT',
  'HOST',
  'DATABASE_URL',
  'JWT_SECRET',
  'TENANT_ID',
  'API_JWT_SECRET',
  'METRICS_JWT_SECRET',
  'REDIS_URL',
  'NODE_NAME',
  'LOG_LEVEL',
  'DB_ENC_KEY',
] as const;

const SERVICES = ['db', 'redis', 'performer', 'prometheus'] as const;

// ---------------------------------------------------------------------------------------------------------------
// Minimal models of the parsed files (only what the checks read).

interface Healthcheck {
  test?: string | string[];
  disable?: boolean;
}
interface Service {
  profiles?: string[];
  image?: string;
  build?: string | { context?: string; dockerfile?: string; target?: string };
  command?: string | string[];
  container_name?: string;
  hostname?: string;
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: (string | number | { target: number; published?: string | number })[];
  volumes?: (string | { type?: string; source?: string; target: string; read_only?: boolean })[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: Healthcheck;
}
interface ComposeFile {
  version?: unknown;
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}
interface ScrapeConfig {
  job_name: string;
  metrics_path?: string;
  scheme?: string;
  scrape_interval?: string;
  scrape_timeout?: string;
  static_configs?: { targets: string[] }[];
}
interface PrometheusFile {
  global?: { scrape_interval?: string; scrape_timeout?: string };
  scrape_configs: ScrapeConfig[];
}

const compose = YAML.parse(readFileSync(COMPOSE_FILE, 'utf8')) as ComposeFile;
const prometheus = YAML.parse(readFileSync(PROMETHEUS_FILE, 'utf8')) as PrometheusFile;
const dockerfile = parseDockerfile(readFileSync(DOCKERFILE, 'utf8'));

// ---------------------------------------------------------------------------------------------------------------
// Helpers.

/**
 * Compose interpolation (`$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, nested defaults, `$$`) against
 * `env` — an empty environment by default, so the checks see the file's own defaults.
 */
function interpolate(value: string, env: Record<string, string> = {}): string {
  let out = '';
  let i = 0;
  while (i < value.length) {
    const ch = value[i];
    if (ch !== '$') {
      out += ch;
      i++;
      continue;
    }
    const next = value[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
    } else if (next === '{') {
      // Find the matching brace (defaults may nest ${...}).
      let depth = 1;
      let j = i + 2;
      while (j < value.length && depth > 0) {
        if (value[j] === '{') depth++;
        else if (value[j] === '}') depth--;
        j++;
      }
      if (depth !== 0) throw new Error(`unterminated \${ in ${JSON.stringify(value)}`);
      const body = value.slice(i + 2, j - 1);
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])(.*))?$/s.exec(body);
      if (!m) throw new Error(`unsupported interpolation \${${body}} in ${JSON.stringify(value)}`);
      const [, name, colon, op, rest] = m;
      const v = env[name];
      const missing = v === undefined || (colon === ':' && v === '');
      if (!op || !missing) out += v ?? '';
      else if (op === '-') out += interpolate(rest, env);
      else throw new Error(`required variable ${name} is not set: ${rest}`);
      i = j;
    } else {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(value.slice(i + 1));
      if (m) {
        out += env[m[0]] ?? '';
        i += 1 + m[0].length;
      } else {
        out += '$';
        i++;
      }
    }
  }
  return out;
}

/** A service's environment as a map; a key without a value (pass-through, unset by default) maps to null. */
function environmentOf(service: Service): Record<string, string | null> {
  const env = service.environment ?? {};
  const out: Record<string, string | null> = {};
  if (Array.isArray(env)) {
    for (const entry of env) {
      const eq = entry.indexOf('=');
      if (eq === -1) out[entry] = null;
      else out[entry.slice(0, eq)] = interpolate(entry.slice(eq + 1));
    }
  } else {
    for (const [k, v] of Object.entries(env)) out[k] = v === null ? null : interpolate(String(v));
  }
  return out;
}

/** Published host ports of a service (short `[ip:]host:container[/proto]` or long syntax). */
function publishedPorts(service: Service): { published: number; target: number }[] {
  return (service.ports ?? []).map((p) => {
    if (typeof p === 'object') return { published: Number(p.published ?? p.target), target: Number(p.target) };
    const parts = String(p).replace(/\/(tcp|udp)$/, '').split(':');
    const target = Number(parts[parts.length - 1]);
    const published = parts.length >= 2 ? Number(parts[parts.length - 2]) : target;
    return { published, target };
  });
}

/** Bind mounts / volumes of a service as {source, target}. */
function mountsOf(service: Service): { source: string; target: string }[] {
  return (service.volumes ?? []).map((v) => {
    if (typeof v === 'object') return { source: v.source ?? '', target: v.target };
    const [source, target] = v.split(':');
    return { source, target };
  });
}

function commandArgs(service: Service): string[] {
  const c = service.command;
  if (c === undefined) return [];
  return Array.isArray(c) ? c.map(String) : c.trim().split(/\s+/);
}

function healthcheckCommand(h: Healthcheck | undefined): string {
  if (!h?.test) return '';
  return Array.isArray(h.test) ? h.test.join(' ') : h.test;
}

interface DockerInstruction {
  keyword: string;
  args: string;
}
interface DockerStage {
  from: string;
  name: string | null;
  instructions: DockerInstruction[];
}

/** Splits a Dockerfile into stages of instructions (comments dropped, `\` continuations joined). */
function parseDockerfile(text: string): { globalArgs: DockerInstruction[]; stages: DockerStage[] } {
  const logical: string[] = [];
  let current = '';
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trimEnd();
    if (current === '' && /^\s*#/.test(line)) continue;
    if (current !== '' && /^\s*#/.test(line)) continue; // comment lines inside a continuation are skipped
    if (line.endsWith('\\')) {
      current += line.slice(0, -1) + ' ';
      continue;
    }
    current += line;
    if (current.trim() !== '') logical.push(current.trim());
    current = '';
  }
  if (current.trim() !== '') logical.push(current.trim());

  const globalArgs: DockerInstruction[] = [];
  const stages: DockerStage[] = [];
  for (const l of logical) {
    const m = /^(\w+)\s+([\s\S]*)$/.exec(l);
    if (!m) continue;
    const keyword = m[1].toUpperCase();
    const args = m[2].trim();
    if (keyword === 'FROM') {
      const fm = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      stages.push({ from: fm?.[1] ?? args, name: fm?.[2] ?? null, instructions: [] });
    } else if (stages.length === 0) {
      globalArgs.push({ keyword, args });
    } else {
      stages[stages.length - 1].instructions.push({ keyword, args });
    }
  }
  return { globalArgs, stages };
}

/** Resolves `${NAME}` / `$NAME` in a FROM line from the global ARG defaults. */
function resolveFrom(from: string): string {
  const defaults: Record<string, string> = {};
  for (const a of dockerfile.globalArgs.filter((i) => i.keyword === 'ARG')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(a.args);
    if (m) defaults[m[1]] = m[2].replace(/^"(.*)"$/, '$1');
  }
  return from.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, n: string) => defaults[n] ?? '');
}

/** Exec-form (JSON array) arguments, or the shell-form string as one element. */
function execForm(args: string): string[] {
  if (args.startsWith('[')) return JSON.parse(args) as string[];
  return [args];
}

function durationSeconds(d: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(d)) !== null) {
    const n = Number(m[1]);
    total += m[2] === 'ms' ? n / 1000 : m[2] === 's' ? n : m[2] === 'm' ? n * 60 : n * 3600;
  }
  return total;
}

function composeCliAvailable(): boolean {
  const r = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8', timeout: 20_000 });
  return r.error === undefined && r.status === 0;
}

// ---------------------------------------------------------------------------------------------------------------

describe('docker-compose.yml', () => {
  it('follows the Compose spec layout (no obsolete top-level version key)', () => {
    expect(compose.version).toBeUndefined();
    expect(typeof compose.services).toBe('object');
  });

  it('defines the db, redis, performer and prometheus services', () => {
    for (const name of SERVICES) expect(compose.services, name).toHaveProperty(name);
  });

  it('runs Postgres with logical replication enabled', () => {
    const db = compose.services.db;
    expect(db.image).toMatch(/postgres/);
    const args = commandArgs(db);
    expect(args[0]).toBe('postgres');
    const settings = new Map<string, string>();
    for (let i = 0; i < args.length; i++) {
      if (args[i] === '-c' && args[i + 1]) {
        const [k, v] = args[i + 1].split('=');
        settings.set(k, v);
      }
    }
    expect(settings.get('wal_level')).toBe('logical');
    expect(Number(settings.get('max_replication_slots'))).toBeGreaterThan(0);
    expect(Number(settings.get('max_wal_senders'))).toBeGreaterThan(0);
    expect(environmentOf(db).POSTGRES_PASSWORD).toBeTruthy();
  });

  it('keeps the database in a declared named volume at the image PGDATA', () => {
    const mounts = mountsOf(compose.services.db);
    const data = mounts.find((m) => m.target === '/var/lib/postgresql/data' || m.target === '/var/lib/postgresql');
    expect(data, 'a volume on the PGDATA directory').toBeDefined();
    expect(compose.volumes ?? {}).toHaveProperty(data!.source);
    // postgres:18+ moved PGDATA to /var/lib/postgresql/<major>/docker: the mount target must match the image.
    const major = Number(/postgres:(\d+)/.exec(compose.services.db.image ?? '')?.[1] ?? NaN);
    if (major >= 18) expect(data!.target).toBe('/var/lib/postgresql');
    else expect(data!.target).toBe('/var/lib/postgresql/data');
  });

  it('gives every service a healthcheck', () => {
    for (const name of SERVICES) {
      const h = compose.services[name].healthcheck;
      expect(h, name).toBeDefined();
      expect(h!.disable, name).not.toBe(true);
      expect(healthcheckCommand(h), name).not.toBe('');
      if (Array.isArray(h!.test)) expect(['CMD', 'CMD-SHELL'], name).toContain(h!.test[0]);
    }
    expect(healthcheckCommand(compose.services.db.healthcheck)).toMatch(/\bpg_isready\b/);
    expect(healthcheckCommand(compose.services.redis.healthcheck)).toMatch(/\bredis-cli\b.*\bping\b/);
    const performerCheck = healthcheckCommand(compose.services.performer.healthcheck);
    expect(performerCheck).toMatch(/^CMD node /);
    expect(performerCheck).toContain('/healthcheck?verbose=1');
  });

  it('starts performer only once db and redis are healthy', () => {
    const deps = compose.services.performer.depends_on;
    expect(deps).toBeDefined();
    expect(Array.isArray(deps)).toBe(false);
    const map = deps as Record<string, { condition?: string }>;
    expect(map.db?.condition).toBe('service_healthy');
    expect(map.redis?.condition).toBe('service_healthy');
  });

  it('publishes performer on 4000 and prometheus on 9090', () => {
    expect(publishedPorts(compose.services.performer)).toContainEqual({ published: 4000, target: 4000 });
    expect(publishedPorts(compose.services.prometheus)).toContainEqual({ published: 9090, target: 9090 });
  });

  it('builds performer from the Dockerfile', () => {
    const build = compose.services.performer.build;
    expect(build).toBeDefined();
    const context = typeof build === 'string' ? build : (build?.context ?? '.');
    const file = typeof build === 'object' ? (build.dockerfile ?? 'Dockerfile') : 'Dockerfile';
    expect(resolve(ROOT, context, file)).toBe(DOCKERFILE);
    if (typeof build === 'object' && build.target) {
      expect(dockerfile.stages.map((s) => s.name)).toContain(build.target);
    }
  });

  it('points performer at the db and redis services', () => {
    const env = environmentOf(compose.services.performer);
    const db = new URL(env.DATABASE_URL ?? '');
    expect(db.protocol).toMatch(/^postgres(ql)?:$/);
    expect(db.hostname).toBe('db');
    expect(db.port || '5432').toBe('5432');
    // The password in the URL is the one the db service is initialised with.
    expect(decodeURIComponent(db.password)).toBe(environmentOf(compose.services.db).POSTGRES_PASSWORD);
    const redis = new URL(env.REDIS_URL ?? '');
    expect(redis.protocol).toBe('redis:');
    expect(redis.hostname).toBe('redis');
    expect(redis.port || '6379').toBe('6379');
  });

  it('passes performer only environment variables the app documents', () => {
    const passed = Object.keys(environmentOf(compose.services.performer));
    expect(passed.length).toBeGreaterThan(0);
    for (const name of passed) expect(APP_ENV_VARS as readonly string[], name).toContain(name);
    for (const name of ['DATABASE_URL', 'JWT_SECRET', 'API_JWT_SECRET', 'METRICS_JWT_SECRET', 'REDIS_URL', 'LOG_LEVEL']) {
      expect(passed, name).toContain(name);
    }
  });

  it('passes performer only environment variables that src/config reads', () => {
    const configDir = join(ROOT, 'src/config');
    const source = readdirSync(configDir)
      .filter((f) => f.endsWith('.ts'))
      .map((f) => readFileSync(join(configDir, f), 'utf8'))
      .join('\n');
    for (const name of Object.keys(environmentOf(compose.services.performer))) {
      expect(source, `${name} is read in src/config`).toMatch(new RegExp(`['"\`]${name}['"\`]`));
    }
  });

  it('sets HOST=0.0.0.0: the server alone stays on loopback while the demo JWT secret is in use', () => {
    expect(environmentOf(compose.services.performer).HOST).toBe('0.0.0.0');
  });

  it('leaves METRICS_JWT_SECRET unset by default so Prometheus can scrape /metrics', () => {
    const env = environmentOf(compose.services.performer);
    expect(env).toHaveProperty('METRICS_JWT_SECRET');
    expect(env.METRICS_JWT_SECRET ?? '').toBe('');
  });

  it('never defaults API_JWT_SECRET to a tenant secret: unset, so the server generates one', () => {
    const env = environmentOf(compose.services.performer);
    expect(env).toHaveProperty('API_JWT_SECRET');
    // With nothing in the shell, the value is empty: the server then generates the management secret.
    expect(env.API_JWT_SECRET ?? '').toBe('');
    expect(env.API_JWT_SECRET ?? '').not.toBe(env.JWT_SECRET);
  });

  it('keeps performer\'s data dir (generated encryption key and management secret) in a named volume', () => {
    const mount = mountsOf(compose.services.performer).find((m) => m.target === '/app/.performer');
    expect(mount, 'a volume on /app/.performer').toBeDefined();
    expect(compose.volumes ?? {}).toHaveProperty(mount!.source);
    expect(readFileSync(DOCKERFILE, 'utf8')).toContain('/app/.performer');
  });

  it('names the performer container so that the first Host label is the tenant id', () => {
    const performer = compose.services.performer;
    const name = performer.container_name ?? performer.hostname;
    expect(name, 'container_name or hostname').toBeDefined();
    expect(name).toContain('.');
    const tenant = environmentOf(performer).TENANT_ID ?? 'realtime-dev';
    expect(name!.split('.')[0]).toBe(tenant);
    expect(tenant).toBe('realtime-dev');
  });

  it('mounts deploy/prometheus.yml as the configuration prometheus loads', () => {
    const service = compose.services.prometheus;
    expect(service.image).toMatch(/^prom\/prometheus(:|$)/);
    const configFlag = commandArgs(service).find((a) => a.startsWith('--config.file='));
    // Without a command the image's default is --config.file=/etc/prometheus/prometheus.yml.
    const configPath = configFlag ? configFlag.slice('--config.file='.length) : '/etc/prometheus/prometheus.yml';
    const mount = mountsOf(service).find((m) => m.target === configPath);
    expect(mount, `a mount on ${configPath}`).toBeDefined();
    expect(resolve(ROOT, mount!.source)).toBe(PROMETHEUS_FILE);
    if (configFlag) {
      // Overriding command drops the image's other default: keep the storage path on the data volume.
      expect(commandArgs(service)).toContain('--storage.tsdb.path=/prometheus');
    }
  });

  if (composeCliAvailable()) {
    it('is accepted by `docker compose config -q` (docker compose CLI present)', () => {
      const r = spawnSync('docker', ['compose', '-f', COMPOSE_FILE, 'config', '-q'], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.error).toBeUndefined();
      expect(r.stderr).not.toMatch(/error/i);
      expect(r.status, r.stderr).toBe(0);
    });
  }
});

describe('docker-compose.yml, profile cluster', () => {
  const HAPROXY_FILE = join(ROOT, 'deploy/haproxy.cfg');
  const haproxy = readFileSync(HAPROXY_FILE, 'utf8');
  const nodes = ['performer', 'performer-2'] as const;

  it('adds a second node and a load balancer only under the cluster profile', () => {
    expect(compose.services['performer-2']?.profiles).toEqual(['cluster']);
    expect(compose.services.lb?.profiles).toEqual(['cluster']);
    for (const name of SERVICES) expect(compose.services[name].profiles, name).toBeUndefined();
  });

  it('runs the second node from the same image with the same settings, its own NODE_NAME and container name', () => {
    const [one, two] = nodes.map((n) => compose.services[n]);
    expect(two.image).toBe(one.image);
    const env1 = environmentOf(one);
    const env2 = environmentOf(two);
    expect({ ...env2, NODE_NAME: null }).toEqual({ ...env1, NODE_NAME: null });
    expect(env1.NODE_NAME).not.toBe(env2.NODE_NAME);
    expect(env2.REDIS_URL).toBe('redis://redis:6379');
    expect(two.container_name?.split('.')[0]).toBe(env2.TENANT_ID);
    expect(two.container_name).not.toBe(one.container_name);
    for (const name of Object.keys(env2)) expect(APP_ENV_VARS as readonly string[], name).toContain(name);
  });

  it('shares the data dir between the nodes (one encryption key and management secret), starting the second after the first', () => {
    for (const n of nodes) expect(mountsOf(compose.services[n]).find((m) => m.target === '/app/.performer')?.source).toBe('performer-data');
    const deps = compose.services['performer-2'].depends_on as Record<string, { condition?: string }>;
    expect(deps.performer?.condition).toBe('service_healthy');
    expect(deps.redis?.condition).toBe('service_healthy');
  });

  it('gives the nodes and the load balancer healthchecks', () => {
    expect(healthcheckCommand(compose.services['performer-2'].healthcheck)).toBe(healthcheckCommand(compose.services.performer.healthcheck));
    expect(healthcheckCommand(compose.services.lb.healthcheck)).toContain('/lb-health');
    expect(haproxy).toMatch(/monitor-uri \/lb-health/);
  });

  it('balances WebSockets over both nodes, health-checked on /healthcheck, from the mounted deploy/haproxy.cfg', () => {
    const mount = mountsOf(compose.services.lb).find((m) => m.target === '/usr/local/etc/haproxy/haproxy.cfg');
    expect(mount?.source).toBe('./deploy/haproxy.cfg');
    expect(publishedPorts(compose.services.lb)).toContainEqual({ published: 4100, target: 4000 });
    expect(haproxy).toMatch(/^\s*bind :4000$/m);
    expect(haproxy).toMatch(/^\s*mode http$/m);
    // A tunnel timeout long enough for idle sockets between Phoenix heartbeats (30 s).
    const tunnel = /timeout tunnel (\d+)([smh])/.exec(haproxy);
    expect(tunnel).not.toBeNull();
    expect(durationSeconds(`${tunnel![1]}${tunnel![2]}`)).toBeGreaterThanOrEqual(60);
    expect(haproxy).toMatch(/http-check send meth GET uri \/healthcheck/);
    for (const n of nodes) {
      const port = environmentOf(compose.services[n]).PORT;
      expect(haproxy).toMatch(new RegExp(`^\\s*server \\S+ ${n}:${port} check`, 'm'));
    }
  });
});

describe('deploy/prometheus.yml', () => {
  const job = prometheus.scrape_configs?.find((j) =>
    (j.static_configs ?? []).some((s) => s.targets.includes('performer:4000')),
  );

  it('has a job scraping performer:4000 at /metrics every 5s', () => {
    expect(job, 'a scrape job targeting performer:4000').toBeDefined();
    expect(job!.metrics_path ?? '/metrics').toBe('/metrics');
    expect(job!.scheme ?? 'http').toBe('http');
    expect(job!.scrape_interval).toBe('5s');
  });

  it('keeps the scrape timeout within the scrape interval', () => {
    const interval = durationSeconds(job!.scrape_interval ?? prometheus.global?.scrape_interval ?? '1m');
    const timeout = durationSeconds(job!.scrape_timeout ?? prometheus.global?.scrape_timeout ?? '10s');
    expect(timeout).toBeLessThanOrEqual(interval);
  });

  it('targets the compose service name and port that performer listens on', () => {
    const [host, port] = 'performer:4000'.split(':');
    expect(compose.services).toHaveProperty(host);
    expect(environmentOf(compose.services[host]).PORT ?? '4000').toBe(port);
  });
});

describe('Dockerfile', () => {
  const runtime = dockerfile.stages[dockerfile.stages.length - 1];
  const all = (keyword: string) => runtime.instructions.filter((i) => i.keyword === keyword);
  const last = (keyword: string) => all(keyword).at(-1);

  it('is a multi-stage build on node:20-bookworm-slim', () => {
    expect(dockerfile.stages.length).toBeGreaterThan(1);
    expect(resolveFrom(runtime.from)).toBe('node:20-bookworm-slim');
  });

  it('builds with npm ci + npm run build and installs production deps with npm ci --omit=dev', () => {
    const runs = dockerfile.stages.flatMap((s) => s.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args));
    expect(runs.some((r) => /\bnpm ci\b(?!.*--omit=dev)/.test(r))).toBe(true);
    expect(runs.some((r) => /\bnpm run build\b/.test(r))).toBe(true);
    expect(runs.some((r) => /\bnpm ci\b.*--omit=dev/.test(r))).toBe(true);
    // The runtime stage takes node_modules from a production-only install, not from the build stage.
    const copies = all('COPY').map((c) => c.args);
    const nodeModules = copies.find((c) => /node_modules/.test(c));
    expect(nodeModules).toBeDefined();
    const fromStage = /--from=(\S+)/.exec(nodeModules!)?.[1];
    const source = dockerfile.stages.find((s) => s.name === fromStage);
    expect(source, 'stage node_modules is copied from').toBeDefined();
    expect(source!.instructions.some((i) => i.keyword === 'RUN' && /--omit=dev/.test(i.args))).toBe(true);
  });

  it('sets HOST=0.0.0.0 so that a published port reaches the server whatever JWT_SECRET is', () => {
    const env = new Map<string, string>();
    for (const e of all('ENV')) {
      for (const m of e.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)/g)) env.set(m[1], m[2].replace(/^"(.*)"$/, '$1'));
    }
    expect(env.get('HOST')).toBe('0.0.0.0');
  });

  it('exposes 4000', () => {
    expect(all('EXPOSE').flatMap((e) => e.args.split(/\s+/))).toContain('4000');
  });

  it('runs as a non-root user', () => {
    const user = last('USER');
    expect(user, 'USER in the runtime stage').toBeDefined();
    const name = user!.args.split(':')[0];
    expect(['root', '0', '']).not.toContain(name);
  });

  it('has a HEALTHCHECK that fetches /healthcheck with node', () => {
    const hc = last('HEALTHCHECK');
    expect(hc).toBeDefined();
    const m = /^((?:--\S+\s+)*)CMD\s+([\s\S]+)$/.exec(hc!.args);
    expect(m, 'HEALTHCHECK [options] CMD ...').not.toBeNull();
    const cmd = execForm(m![2].trim());
    expect(cmd[0]).toBe('node');
    expect(cmd.join(' ')).toMatch(/127\.0\.0\.1:.*4000|PORT\|\|4000/);
    expect(cmd.join(' ')).toContain('/healthcheck');
  });

  it('starts node dist/main.js directly', () => {
    const cmd = last('CMD');
    expect(cmd).toBeDefined();
    expect(execForm(cmd!.args)).toEqual(['node', 'dist/main.js']);
    expect(all('ENTRYPOINT').length).toBe(0);
  });

  it('copies what the build needs and that .dockerignore keeps in the context', () => {
    const copied = dockerfile.stages
      .flatMap((s) => s.instructions.filter((i) => i.keyword === 'COPY' && !/--from=/.test(i.args)))
      .flatMap((i) => i.args.split(/\s+/).filter((a) => !a.startsWith('--')).slice(0, -1));
    for (const needed of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src']) {
      expect(copied, needed).toContain(needed);
      expect(existsSync(join(ROOT, needed)), `${needed} exists`).toBe(true);
    }
    const ignored = readFileSync(DOCKERIGNORE, 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map((l) => posix.normalize(l.replace(/^\/+/, '').replace(/\/+$/, '')));
    for (const needed of copied) expect(ignored, `${needed} is not excluded`).not.toContain(posix.normalize(needed));
    // Host builds must not leak into the image.
    expect(ignored).toContain('node_modules');
    expect(ignored).toContain('dist');
  });
});

describe('compose interpolation helper', () => {
  it('applies defaults, nested defaults and $$ like Compose', () => {
    expect(interpolate('${A:-x}')).toBe('x');
    expect(interpolate('${A:-${B:-y}}')).toBe('y');
    expect(interpolate('${A:-${B:-y}}', { B: 'b' })).toBe('b');
    expect(interpolate('${A-x}', { A: '' })).toBe('');
    expect(interpolate('${A:-x}', { A: '' })).toBe('x');
    expect(interpolate('a$$b$A', { A: '1' })).toBe('a$b1');
  });
});
