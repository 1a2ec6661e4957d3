/**
 * A bench's command line: `--name` flags and `--name=value` options, every one with its default in the caller.
 * `--quick` is common to all benches (shorter rows, fewer of them).
 */
export class Args {
  constructor(readonly argv: readonly string[] = process.argv.slice(2)) {}

  get quick(): boolean {
    return this.flag('quick');
  }

  flag(name: string): boolean {
    return this.argv.includes(`--${name}`);
  }

  /** A flag that defaults on in a full run and off in a quick one: `--name` / `--no-name` override it. */
  fullOnly(name: string): boolean {
    return this.quick ? this.flag(name) : !this.flag(`no-${name}`);
  }

  option(name: string): string | undefined {
    return this.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  }

  number(name: string, fallback: number): number {
    const v = this.option(name);
    return v === undefined ? fallback : Number(v);
  }

  list(name: string): string[] | undefined {
    return this.option(name)?.split(',').filter(Boolean);
  }

  numbers(name: string, fallback: number[]): number[] {
    return this.list(name)?.map(Number) ?? fallback;
  }
}
