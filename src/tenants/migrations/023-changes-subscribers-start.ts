// Where each Postgres Changes subscriber's commits start (the first commit position it is owed), kept with its record
// so that a cluster's next owner of the tenant continues it from there even when the subscriber's node never heard
// the answer of the owner that put it on record (the owner changed while that answer was on its way). Rows of
// earlier runs have none: they are owed everything held, as before.
export const sql = /* sql */ `
ALTER TABLE realtime.performer_changes_subscribers ADD COLUMN IF NOT EXISTS start_lsn pg_lsn;
`;
