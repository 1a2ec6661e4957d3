import { describe, expect, it } from 'vitest';
import { createPubSub, pubsubDriverName } from '../../src/cluster/drivers.js';
import { LocalPubSub } from '../../src/cluster/local.js';
import { loadConfig } from '../../src/config/index.js';
import { describePubSubContract } from './pubsub-contract.js';

describePubSubContract('local', {
  maxNodes: 1,
  start: async (handlers) => handlers.map((h) => createPubSub(loadConfig({}), h)),
  settle: async () => undefined,
});

describe('pub/sub driver choice', () => {
  it('runs every node alone until a cluster driver exists, REDIS_URL or not', () => {
    expect(pubsubDriverName(loadConfig({}))).toBe('local');
    expect(pubsubDriverName(loadConfig({ REDIS_URL: 'redis://cache:6379' }))).toBe('local');
    expect(createPubSub(loadConfig({}), { deliver: () => undefined })).toBeInstanceOf(LocalPubSub);
  });
});
