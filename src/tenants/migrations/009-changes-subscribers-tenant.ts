// Several tenants may share one database: each tenant's changes engine holds changes only for its own persisted
// subscribers. Rows written before this column existed have no tenant and are never loaded again.
export const sql = /* sql */ `
ALTER TABLE realtime.performer_changes_subscribers ADD COLUMN IF NOT EXISTS tenant text;
CREATE INDEX IF NOT EXISTS performer_changes_subscribers_tenant ON realtime.performer_changes_subscribers (tenant);
`;
