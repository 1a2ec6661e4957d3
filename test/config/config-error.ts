import { ConfigError, loadConfig } from '../../src/config/index.js';

/** The ConfigError `env` makes loadConfig throw; fails the test when it loads or throws something else. */
export function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw new Error(`expected a ConfigError, got ${String(err)}`);
  }
  throw new Error(`expected ${JSON.stringify(env)} to be rejected`);
}
