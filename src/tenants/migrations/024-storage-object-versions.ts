// Object versions name their blobs (src/baas/storage/blob/). The storage sweeper asks which of a batch of blobs no
// row names any more (the leftovers of a process that died between publishing a blob and its COMMIT), by version.
export const sql = /* sql */ `
CREATE INDEX IF NOT EXISTS performer_objects_version ON storage.objects (version);
`;
