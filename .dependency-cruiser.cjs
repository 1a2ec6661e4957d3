/**
 * Import rules of ../shared/spec/architecture.md, checked by `npm run lint` (part of `npm test`).
 *
 * Floors, bottom to top. A room may import its own floor and the floors below it, never one above:
 *   foundation  config/, observability/, db/, auth/, shared/ (message types), version.ts (package facts) and the uWS
 *               binding (http/uws.ts): no domain knowledge.
 *   cluster     cluster/: the PubSub bus. Producers below channels publish into it, so it sits under them.
 *   engines     presence/, replication/: the CRDT, the WAL streams, Postgres Changes matching and rendering.
 *   tenants     tenants/: the registry and the per-tenant supervisor, which owns the engines' runtime state.
 *   channels    channels/: the Phoenix protocol, sockets, channel handlers, fan-out; and the app context.
 *   http        http/ and baas/: the uWS app, the gate and the HTTP modules.
 *   wiring      the other src/*.ts (main.ts, server.ts, cli.ts, banner.ts, modules.ts): builds and wires it all.
 * Rooms on one floor may import each other; the no-circular rule keeps them from going round.
 *
 * Violations that exist today are recorded in .dependency-cruiser-known-violations.json (`npm run lint:baseline`
 * rewrites it) and ignored by `npm run lint`; any new one fails. The baseline only ever shrinks: test/lint checks it
 * holds no violation that is gone.
 */

/** The uWS binding: a thin loader with no domain knowledge, used by the transport rooms (see `uws-in-transport`). */
const UWS_BINDING = '^src/http/uws\\.ts$';
/** Files on the foundation floor that live outside its folders. */
const FOUNDATION_FILES = [UWS_BINDING, '^src/version\\.ts$'];

/**
 * The app-wide context every module is given (src/context.ts, where the one-phase context lands): its interface names
 * the channels' fan-out and dispatcher, and channels and http both use it, so it sits on the channels floor.
 */
const APP_CONTEXT = '^src/context\\.ts$';

const FLOORS = [
  { name: 'foundation', path: ['^src/(config|observability|db|auth|shared)/', ...FOUNDATION_FILES] },
  { name: 'cluster', path: ['^src/cluster/'] },
  { name: 'engines', path: ['^src/(presence|replication)/'] },
  { name: 'tenants', path: ['^src/tenants/'] },
  { name: 'channels', path: ['^src/channels/', APP_CONTEXT] },
  { name: 'http', path: ['^src/(http|baas)/'] },
  { name: 'wiring', path: ['^src/(?!(context|version)\\.ts$)[^/]+\\.ts$'] },
];

/**
 * Pure code: bytes or values in, values out. It imports only other pure code and PURE_DEPENDENCIES: no I/O package
 * (pg, uWebSockets.js, ioredis, pino...) and no Node core module with I/O (node:net, node:fs, node:child_process...).
 * Add a file here when it is pure; take it out only with a reason in the commit.
 */
const PURE = [
  '^src/shared/',
  '^src/channels/protocol/',
  '^src/presence/crdt[^/]*\\.ts$',
  '^src/replication/pgoutput/',
  '^src/replication/changes/',
  // The REST API's grammar, planner and SQL builder: a request and a schema snapshot in, a statement out. Only the
  // schema loader (src/baas/rest/schema/load.ts) talks to Postgres.
  '^src/baas/rest/(errors|limits|request)\\.ts$',
  '^src/baas/rest/grammar/',
  '^src/baas/rest/sql/',
  '^src/baas/rest/schema/(types|relationships)\\.ts$',
];

/** Core modules and npm packages that do no I/O, which pure code may use: re2js is a regex engine in plain JS. */
const PURE_DEPENDENCIES = ['^(buffer|string_decoder)$', 'node_modules/re2js/'];

const ALL_ROOMS = FLOORS.flatMap((floor) => floor.path);

/** One rule per floor: nothing on it imports a floor above (FOUNDATION_FILES count as foundation wherever they are). */
const floorRules = FLOORS.slice(0, -1).map((floor, i) => ({
  name: `floor-${floor.name}`,
  severity: 'error',
  comment:
    `A room on the ${floor.name} floor imports a room on a floor above it (${FLOORS.slice(i + 1).map((f) => f.name).join(', ')}). ` +
    'Move the shared part down (types, constants and interfaces belong to the lowest floor that needs them) or pass ' +
    'it in from above. Floors: .dependency-cruiser.cjs and the architecture note.',
  from: { path: floor.path, pathNot: i === 0 ? undefined : FOUNDATION_FILES },
  to: { path: FLOORS.slice(i + 1).flatMap((f) => f.path), pathNot: FOUNDATION_FILES },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import cycle: the files on it cannot be understood, tested or moved one at a time. Depend on an interface one floor down instead.',
      from: {},
      to: { circular: true },
    },
    ...floorRules,
    {
      name: 'pure-imports-pure',
      severity: 'error',
      comment: 'A pure module (protocol codecs, presence CRDT, pgoutput decoder, Postgres Changes filters and rendering) imports code that is not pure.',
      from: { path: PURE },
      to: { path: '^src/', pathNot: PURE },
    },
    {
      name: 'pure-no-io',
      severity: 'error',
      comment: 'A pure module imports an npm package or a Node core module that is not in PURE_DEPENDENCIES: pure code does no I/O. Do the I/O in the caller and pass values in.',
      from: { path: PURE },
      to: { dependencyTypesNot: ['local'], pathNot: PURE_DEPENDENCIES },
    },
    {
      name: 'uws-in-transport',
      severity: 'error',
      comment: 'Only the transport rooms (http, channels, the wiring) touch uWebSockets.js: below them a message names a connection by id, never by socket.',
      from: { path: '^src/', pathNot: ['^src/(http|baas|channels)/', '^src/[^/]+\\.ts$'] },
      to: { path: [UWS_BINDING, 'uWebSockets\\.js'] },
    },
    {
      name: 'room-unknown',
      severity: 'error',
      comment: 'A file in src/ outside every room of .dependency-cruiser.cjs: put its folder on a floor (FLOORS) so the import rules cover it.',
      from: { path: '^src/', pathNot: ALL_ROOMS },
      to: {},
    },
    {
      name: 'room-unknown-target',
      severity: 'error',
      comment: 'An import of a file in src/ outside every room of .dependency-cruiser.cjs: put its folder on a floor (FLOORS).',
      from: {},
      to: { path: '^src/', pathNot: ALL_ROOMS },
    },
    {
      name: 'src-not-to-test',
      severity: 'error',
      comment: 'Code in src/ imports test or bench code, which is not shipped.',
      from: { path: '^src/' },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'not-to-dev-dep',
      severity: 'error',
      comment: 'Code in src/ imports a devDependency: a production install (npm ci --omit=dev) does not have it.',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'no-non-package-json',
      severity: 'error',
      comment: 'An import of an npm package that package.json does not list: it works only by accident of hoisting.',
      from: {},
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import the resolver cannot find.',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    // TypeScript 7 has no JavaScript compiler API for dependency-cruiser to parse with; swc parses TypeScript.
    parser: 'swc',
    // Type-only imports count: a cycle or an upward import through types couples rooms all the same.
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.json'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
