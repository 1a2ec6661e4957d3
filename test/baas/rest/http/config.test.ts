/** REST_SCHEMAS and REST_MAX_ROWS through /rest/v1, and a role claim naming no database role. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FIXTURE, startRestWorld, type RestWorld } from './support.js';

const API_SCHEMA = `
create schema api;
grant usage on schema api to anon, authenticated, service_role;
create table api.things (id int primary key, name text);
grant all on api.things to anon, authenticated, service_role;
insert into api.things values (1, 'a'), (2, 'b'), (3, 'c');
`;

let w: RestWorld;
beforeAll(async () => {
  w = await startRestWorld(FIXTURE + API_SCHEMA, { REST_SCHEMAS: 'public,api', REST_MAX_ROWS: '2' });
}, 60_000);
afterAll(async () => w?.stop());

it('serves a second exposed schema picked by Accept-Profile and says so in Content-Profile', async () => {
  const things = await w.as(w.t.anonKey, { schema: 'api' }).from('things').select('id').order('id');
  expect(things.error).toBeNull();
  expect(things.data).toEqual([{ id: 1 }, { id: 2 }]);
  const res = await fetch(`${w.t.url}/rest/v1/things?select=id&id=eq.3`, { headers: { apikey: w.t.anonKey, 'accept-profile': 'api' } });
  expect(res.headers.get('content-profile')).toBe('api');
  expect(await res.json()).toEqual([{ id: 3 }]);
  const defaulted = await fetch(`${w.t.url}/rest/v1/notes?select=id&id=eq.1`, { headers: { apikey: w.t.anonKey } });
  expect(defaulted.headers.get('content-profile')).toBe('public');
  const hidden = await w.as(w.t.anonKey, { schema: 'auth' }).from('users').select();
  expect(hidden.status).toBe(406);
  expect(hidden.error?.hint).toBe('Only the following schemas are exposed: public, api');
});

it('caps a read at REST_MAX_ROWS, and the count still says the total', async () => {
  const r = await w.anon.from('notes').select('id', { count: 'exact' });
  await w.admin.query(`insert into notes values (3, 'three')`);
  const capped = await w.anon.from('notes').select('id', { count: 'exact' }).order('id');
  expect(r.data).toHaveLength(2);
  expect(capped.data).toEqual([{ id: 1 }, { id: 2 }]);
  expect(capped.count).toBe(3);
  expect(capped.status).toBe(206);
});

it('answers 401 with 22023 for a role claim that names no database role', async () => {
  const token = await w.t.sign({ role: 'nobody_here', exp: Math.floor(Date.now() / 1000) + 60 });
  const r = await w.as(token).from('notes').select();
  expect(r.status).toBe(401);
  expect(r.error?.code).toBe('22023');
});
