import { describe, expect, it } from 'vitest';
import { formatBanner, maskedDatabaseUrl } from '../src/banner.js';
import { parseArgs } from '../src/cli.js';
import { packageInfo } from '../src/version.js';

describe('parseArgs', () => {
  it('runs the server without arguments', () => {
    expect(parseArgs([])).toEqual({ kind: 'run' });
  });

  it('prints the usage for --help and -h, the version for --version and -v, exit 0', () => {
    for (const flag of ['--help', '-h']) {
      const action = parseArgs([flag]);
      expect(action).toMatchObject({ kind: 'print', exitCode: 0, stderr: '' });
      expect(action.kind === 'print' && action.stdout).toContain('Usage: node dist/main.js');
    }
    for (const flag of ['--version', '-v']) {
      expect(parseArgs([flag])).toEqual({ kind: 'print', exitCode: 0, stdout: `performer ${packageInfo.version}\n`, stderr: '' });
    }
  });

  it('refuses anything else on stderr with exit 1, rather than starting with arguments it ignores', () => {
    for (const args of [['--port', '4001'], ['start'], ['--help', '--version'], ['--HELP']]) {
      const action = parseArgs(args);
      expect(action).toMatchObject({ kind: 'print', exitCode: 1, stdout: '' });
      expect(action.kind === 'print' && action.stderr).toContain(`Unknown arguments: ${args.join(' ')}`);
    }
  });
});

describe('the start banner', () => {
  it('aligns the labels on the colon, with the title first and notes after a blank line', () => {
    const text = formatBanner('Performer 1.2.3 is running.', [['API URL', 'http://127.0.0.1:4000'], ['service_role key', 'k']], ['a note']);
    expect(text).toBe('\nPerformer 1.2.3 is running.\n         API URL: http://127.0.0.1:4000\nservice_role key: k\n\na note\n\n');
  });

  it('has no notes section when there are none', () => {
    expect(formatBanner('T', [['a', 'b']])).toBe('\nT\na: b\n\n');
  });

  it('shows an operator-supplied database URL without its password', () => {
    expect(maskedDatabaseUrl('postgres://app:s3cret%40x@db.internal:5432/app?sslmode=require')).toBe(
      'postgres://app:****@db.internal:5432/app?sslmode=require',
    );
    expect(maskedDatabaseUrl('postgresql://app@db/app')).toBe('postgresql://app@db/app');
    expect(maskedDatabaseUrl('not a url')).not.toContain('not a url');
  });
});
