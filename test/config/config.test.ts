import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULT_JWT_SECRET, jwtSecretWeakness, loadConfig } from '../../src/config/index.js';
import { configError } from './config-error.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('defaults', () => {
  it('gives upstream defaults for an empty environment', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 4000,
      host: '127.0.0.1',
      databaseUrl: null,
      jwtSecret: DEFAULT_JWT_SECRET,
      jwtJwks: null,
      tenantId: 'realtime-dev',
      // Unset: the server generates one in the data dir; never the tenant secret.
      apiJwtSecret: null,
      apiJwtSecretNext: null,
      metricsJwtSecret: null,
      redisUrl: null,
      logLevel: 'info',
      connectErrorBackoffMs: 2000,
      channelErrorBackoffMs: 5000,
      noChannelTimeoutMs: 600_000,
      maxBufferedBytes: 1024 * 1024,
      tenantDefaults: {
        maxConcurrentUsers: 200,
        maxEventsPerSecond: 100,
        maxJoinsPerSecond: 100,
        maxChannelsPerClient: 100,
        maxBytesPerSecond: 100_000,
        maxPayloadSizeInKb: 3000,
        maxPresenceEventsPerSecond: 1000,
      },
    });
    expect(DEFAULT_JWT_SECRET.length).toBeGreaterThanOrEqual(32);
  });

  it('treats empty and blank values as unset', () => {
    const c = loadConfig({ PORT: '', LOG_LEVEL: '   ', DATABASE_URL: '', JWT_JWKS: ' ', TENANT_MAX_EVENTS_PER_SECOND: '' });
    expect([c.port, c.logLevel, c.databaseUrl, c.jwtJwks, c.tenantDefaults.maxEventsPerSecond]).toEqual([4000, 'info', null, null, 100]);
  });

  it('reads every variable it is given', () => {
    const c = loadConfig({
      PORT: '8080',
      HOST: '127.0.0.1',
      DATABASE_URL: 'postgresql://u:p@db:5432/app',
      JWT_SECRET: 'my-own-secret-that-is-long-enough-for-hs256',
      API_JWT_SECRET: 'my-management-secret',
      API_JWT_SECRET_NEXT: 'next',
      METRICS_JWT_SECRET: 'metrics',
      REDIS_URL: 'rediss://cache:6380',
      LOG_LEVEL: 'DEBUG',
      TENANT_ID: 'my_tenant-2',
      CONNECT_ERROR_BACKOFF_MS: '0',
      TENANT_MAX_EVENTS_PER_SECOND: '0',
      TENANT_MAX_PAYLOAD_SIZE_IN_KB: '1',
    });
    expect(c).toMatchObject({
      port: 8080,
      host: '127.0.0.1',
      databaseUrl: 'postgresql://u:p@db:5432/app',
      jwtSecret: 'my-own-secret-that-is-long-enough-for-hs256',
      apiJwtSecret: 'my-management-secret',
      apiJwtSecretNext: 'next',
      metricsJwtSecret: 'metrics',
      redisUrl: 'rediss://cache:6380',
      logLevel: 'debug',
      tenantId: 'my_tenant-2',
      connectErrorBackoffMs: 0,
    });
    expect(c.tenantDefaults.maxEventsPerSecond).toBe(0);
    expect(c.tenantDefaults.maxPayloadSizeInKb).toBe(1);
  });
});

describe('management API secrets', () => {
  it('does not default API_JWT_SECRET to JWT_SECRET, set or not', () => {
    expect(loadConfig({}).apiJwtSecret).toBeNull();
    expect(loadConfig({ JWT_SECRET: 'my-own-secret-that-is-long-enough-for-hs256' }).apiJwtSecret).toBeNull();
  });

  it.each([
    ['API_JWT_SECRET', {}],
    ['API_JWT_SECRET_NEXT', {}],
    ['API_JWT_SECRET', { JWT_SECRET: 'shared-secret-of-at-least-32-characters!' }],
  ])('refuses %s equal to the tenant secret (%j)', (name, env: Record<string, string>) => {
    const tenantSecret = env.JWT_SECRET ?? DEFAULT_JWT_SECRET;
    const err = configError({ ...env, [name]: tenantSecret });
    expect(err.variable).toBe(name);
    expect(err.message).toContain('must differ from JWT_SECRET');
  });

  it('refuses API_JWT_SECRET equal to an oct key of JWT_JWKS', () => {
    const secret = 'management-secret-also-in-the-jwks';
    const jwks = { keys: [{ kty: 'oct', kid: 'k1', k: Buffer.from(secret).toString('base64url') }] };
    expect(configError({ API_JWT_SECRET: secret, JWT_JWKS: JSON.stringify(jwks) }).variable).toBe('API_JWT_SECRET');
  });
});

describe('listen address and secret strength', () => {
  const OWN_SECRET = 'my-own-secret-that-is-long-enough-for-hs256';

  it('stays on loopback while the demo JWT secret is in use', () => {
    expect(loadConfig({}).host).toBe('127.0.0.1');
    expect(loadConfig({ JWT_SECRET: DEFAULT_JWT_SECRET }).host).toBe('127.0.0.1');
  });

  it('listens on every interface once JWT_SECRET is the operator\'s own', () => {
    expect(loadConfig({ JWT_SECRET: OWN_SECRET }).host).toBe('0.0.0.0');
  });

  it('lets an explicit HOST win either way', () => {
    expect(loadConfig({ HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
    expect(loadConfig({ HOST: '::1', JWT_SECRET: OWN_SECRET }).host).toBe('::1');
  });

  it('calls the demo secret and secrets under 32 characters weak, and nothing else', () => {
    expect(jwtSecretWeakness(DEFAULT_JWT_SECRET)).toMatch(/public demo secret/);
    expect(jwtSecretWeakness('x'.repeat(31))).toMatch(/shorter than 32 characters/);
    expect(jwtSecretWeakness('short')).toMatch(/shorter than 32 characters/);
    expect(jwtSecretWeakness('x'.repeat(32))).toBeNull();
    expect(jwtSecretWeakness(OWN_SECRET)).toBeNull();
  });
});

describe('integers', () => {
  const INT_VARS = [
    'PORT',
    'CONNECT_ERROR_BACKOFF_MS',
    'CHANNEL_ERROR_BACKOFF_MS',
    'WEBSOCKET_IDLE_TIMEOUT_SECONDS',
    'WEBSOCKET_MAX_FRAME_BYTES',
    'WEBSOCKET_MAX_BUFFERED_BYTES',
    'NO_CHANNEL_TIMEOUT_IN_MS',
    'SHUTDOWN_TIMEOUT_MS',
    'TENANT_MAX_CONCURRENT_USERS',
    'TENANT_MAX_EVENTS_PER_SECOND',
    'TENANT_MAX_JOINS_PER_SECOND',
    'TENANT_MAX_CHANNELS_PER_CLIENT',
    'TENANT_MAX_BYTES_PER_SECOND',
    'TENANT_MAX_PAYLOAD_SIZE_IN_KB',
    'TENANT_MAX_PRESENCE_EVENTS_PER_SECOND',
    'DB_POOL_SIZE',
  ];

  describe.each(INT_VARS)('%s', (name) => {
    it.each(['abc', '1.5', '10ms', '0x10', '1e3', '12 34', 'NaN', 'Infinity'])('rejects %j with a ConfigError naming it', (value) => {
      const err = configError({ [name]: value });
      expect(err.variable).toBe(name);
      expect(err.message).toContain(name);
      expect(err.message).toContain(value);
    });

    it('rejects a negative value', () => {
      expect(configError({ [name]: '-1' }).variable).toBe(name);
    });

    it('rejects a value beyond any sane range', () => {
      expect(configError({ [name]: '99999999999999999999' }).variable).toBe(name);
    });
  });

  it.each([
    ['PORT', '65536'],
    ['WEBSOCKET_IDLE_TIMEOUT_SECONDS', '7'],
    ['WEBSOCKET_IDLE_TIMEOUT_SECONDS', '961'],
    ['WEBSOCKET_MAX_FRAME_BYTES', '1023'],
    ['WEBSOCKET_MAX_BUFFERED_BYTES', '16383'],
    ['WEBSOCKET_MAX_BUFFERED_BYTES', '268435457'],
    ['NO_CHANNEL_TIMEOUT_IN_MS', '999'],
    ['SHUTDOWN_TIMEOUT_MS', '99'],
    ['CONNECT_ERROR_BACKOFF_MS', '60001'],
    ['CHANNEL_ERROR_BACKOFF_MS', '60001'],
    ['TENANT_MAX_PAYLOAD_SIZE_IN_KB', '0'],
    ['DB_POOL_SIZE', '0'],
    ['DB_POOL_SIZE', '1001'],
  ])('rejects %s=%s as out of range', (name, value) => {
    const err = configError({ [name]: value });
    expect(err.variable).toBe(name);
    expect(err.message).toMatch(/between/);
  });

  it.each([
    ['PORT', '0', 'port', 0],
    ['PORT', '65535', 'port', 65535],
    ['WEBSOCKET_IDLE_TIMEOUT_SECONDS', '8', 'idleTimeoutSeconds', 8],
    ['WEBSOCKET_IDLE_TIMEOUT_SECONDS', '960', 'idleTimeoutSeconds', 960],
    ['SHUTDOWN_TIMEOUT_MS', ' 100 ', 'shutdownTimeoutMs', 100],
    ['WEBSOCKET_MAX_BUFFERED_BYTES', '16384', 'maxBufferedBytes', 16384],
  ] as const)('accepts the boundary %s=%j', (name, value, key, expected) => {
    expect(loadConfig({ [name]: value })[key]).toBe(expected);
  });
});

describe('URLs', () => {
  it.each(['postgres://u:p@h:5432/d', 'postgresql://h/d'])('accepts DATABASE_URL %s', (url) => {
    expect(loadConfig({ DATABASE_URL: url }).databaseUrl).toBe(url);
  });

  it.each(['mysql://h/d', 'http://h/d', 'redis://h:6379', 'not a url', 'localhost:5432'])('rejects DATABASE_URL %j', (url) => {
    const err = configError({ DATABASE_URL: url });
    expect(err.variable).toBe('DATABASE_URL');
    expect(err.message).toMatch(/^DATABASE_URL: /);
  });

  it.each(['redis://h:6379', 'rediss://h:6380/0'])('accepts REDIS_URL %s', (url) => {
    expect(loadConfig({ REDIS_URL: url }).redisUrl).toBe(url);
  });

  it.each(['postgres://h/d', 'http://h', 'h:6379', '::'])('rejects REDIS_URL %j', (url) => {
    expect(configError({ REDIS_URL: url }).variable).toBe('REDIS_URL');
  });
});

describe('PERFORMER_SYSTEM_DIR', () => {
  it('defaults to /var/lib/performer and takes an absolute path', () => {
    expect(loadConfig({}).systemDir).toBe('/var/lib/performer');
    expect(loadConfig({ PERFORMER_SYSTEM_DIR: '/srv/performer' }).systemDir).toBe('/srv/performer');
  });

  it('rejects a relative path: it would land under the very directory Postgres cannot enter', () => {
    expect(configError({ PERFORMER_SYSTEM_DIR: 'var/performer' }).message).toBe(
      'PERFORMER_SYSTEM_DIR: expected an absolute path, got "var/performer"',
    );
  });
});

describe('JWT_JWKS', () => {
  it('parses a JWKS object', () => {
    const jwks = { keys: [{ kty: 'oct', kid: 'a', k: 'c2VjcmV0' }, { kty: 'RSA', kid: 'b', n: 'x', e: 'AQAB' }] };
    expect(loadConfig({ JWT_JWKS: JSON.stringify(jwks) }).jwtJwks).toEqual(jwks);
  });

  it.each([
    ['not JSON', '{keys:'],
    ['an array', '[{"kty":"oct"}]'],
    ['an object without keys', '{"k":[]}'],
    ['keys that is not an array', '{"keys":{"kty":"oct"}}'],
    ['a key that is not an object', '{"keys":[1]}'],
    ['a null key', '{"keys":[null]}'],
    ['null', 'null'],
  ])('rejects %s', (_name, value) => {
    const err = configError({ JWT_JWKS: value });
    expect(err.variable).toBe('JWT_JWKS');
    expect(err.message).toMatch(/^JWT_JWKS: /);
  });
});

describe('JWT_CLAIM_VALIDATORS', () => {
  it('rejects a value that is not a JSON object', () => {
    for (const value of ['{iss:', '["iss"]', '"iss"']) expect(configError({ JWT_CLAIM_VALIDATORS: value }).variable).toBe('JWT_CLAIM_VALIDATORS');
  });
});

describe('LOG_LEVEL', () => {
  it.each(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent', 'Info', 'WARN'])('accepts %s', (level) => {
    expect(loadConfig({ LOG_LEVEL: level }).logLevel).toBe(level.toLowerCase());
  });

  it.each(['verbose', 'warning', '3', 'all'])('rejects %s', (level) => {
    const err = configError({ LOG_LEVEL: level });
    expect(err.variable).toBe('LOG_LEVEL');
    expect(err.message).toContain(level);
  });
});

describe('TENANT_ID', () => {
  it.each(['realtime-dev', 'abc_DEF-123', 'x'])('accepts %s', (id) => {
    expect(loadConfig({ TENANT_ID: id }).tenantId).toBe(id);
  });

  it.each(['has.dot', 'has space', 'slash/y', 'ünïcode', 'semi;colon', 'colon:'])('rejects %j', (id) => {
    expect(configError({ TENANT_ID: id }).variable).toBe('TENANT_ID');
  });
});

describe('process contract', () => {
  function runMain(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
        cwd: ROOT,
        // DATABASE_URL points nowhere: if config validation did not stop the process first, it would not start an
        // embedded Postgres either.
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', DATABASE_URL: 'postgres://127.0.0.1:1/none', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`main did not exit; stderr so far: ${stderr}`));
      }, 25_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  it('exits with code 1 and a clear error naming PORT when PORT=abc', async () => {
    const { code, stdout, stderr } = await runMain({ PORT: 'abc' });
    expect(code).toBe(1);
    expect(stderr).toContain('PORT');
    expect(stderr).toContain('abc');
    expect(stderr).toMatch(/invalid configuration/i);
    // A configuration error is a one-line message, not a stack trace.
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(stdout).not.toContain('Performer is running');
  });

  it('refuses to start when API_JWT_SECRET is the tenant secret, saying so in one line', async () => {
    const { code, stdout, stderr } = await runMain({ JWT_SECRET: 'one-secret-for-everything-32-characters', API_JWT_SECRET: 'one-secret-for-everything-32-characters' });
    expect(code).toBe(1);
    expect(stderr).toMatch(/invalid configuration: API_JWT_SECRET: must differ from JWT_SECRET/i);
    expect(stderr).not.toMatch(/\n\s+at /);
    // The secret itself is never echoed.
    expect(stderr + stdout).not.toContain('one-secret-for-everything');
    expect(stdout).not.toContain('Performer is running');
  });

  it('names the variable for an invalid DATABASE_URL too', async () => {
    const { code, stderr } = await runMain({ DATABASE_URL: 'mysql://x/y' });
    expect(code).toBe(1);
    expect(stderr).toContain('DATABASE_URL');
  });
});

describe('cluster settings', () => {
  it('runs alone by default, as a node named after the host and pid, keys prefixed performer:', () => {
    const c = loadConfig({});
    expect(c.redisUrl).toBeNull();
    expect(c.redisClusterNodes).toEqual([]);
    expect(c.redisKeyPrefix).toBe('performer:');
    expect(c.nodeName).toMatch(new RegExp(`-${process.pid}$`));
    expect(c.nodeRegion).toBe('local');
    expect([c.clusterHeartbeatMs, c.clusterMemberTtlMs, c.clusterLimitsSyncMs]).toEqual([1000, 5000, 1000]);
  });

  it('reads REDIS_CLUSTER_NODES as host:port pairs, IPv6 in brackets', () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: 'a:7000, 10.0.0.2:7001,[::1]:7002' }).redisClusterNodes).toEqual([
      { host: 'a', port: 7000 },
      { host: '10.0.0.2', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
  });

  it.each(['a', 'a:', 'a:0', 'a:70000', ':7000', 'redis://a:7000'])('rejects REDIS_CLUSTER_NODES entry %j', (entry) => {
    expect(configError({ REDIS_CLUSTER_NODES: entry }).variable).toBe('REDIS_CLUSTER_NODES');
  });

  it('takes a key prefix without braces (they would move the hash tag), and an empty one', () => {
    expect(loadConfig({ REDIS_KEY_PREFIX: 'staging:' }).redisKeyPrefix).toBe('staging:');
    expect(loadConfig({ REDIS_KEY_PREFIX: '' }).redisKeyPrefix).toBe('');
    for (const bad of ['a{b}:', 'a b', 'x'.repeat(101)]) expect(configError({ REDIS_KEY_PREFIX: bad }).variable).toBe('REDIS_KEY_PREFIX');
  });

  it('takes a NODE_NAME of letters, digits and .-_:@ only (it lands in Redis keys and metrics)', () => {
    expect(loadConfig({ NODE_NAME: 'eu-1.performer@host:4000' }).nodeName).toBe('eu-1.performer@host:4000');
    for (const bad of ['a b', 'a{b}', 'ü', 'x'.repeat(129)]) expect(configError({ NODE_NAME: bad }).variable).toBe('NODE_NAME');
  });

  it('wants a member TTL of at least two heartbeats', () => {
    expect(configError({ CLUSTER_HEARTBEAT_MS: '1000', CLUSTER_MEMBER_TTL_MS: '1500' }).variable).toBe('CLUSTER_MEMBER_TTL_MS');
    expect(loadConfig({ CLUSTER_HEARTBEAT_MS: '100', CLUSTER_MEMBER_TTL_MS: '200' }).clusterMemberTtlMs).toBe(200);
  });
});
