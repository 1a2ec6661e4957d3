// Supabase Storage's helper functions (spec baas-api.md §4.7), which "own folder" policies call:
// storage.foldername(name) (every segment but the last), storage.filename(name) (the last segment),
// storage.extension(name) (after the last dot of the file name, '' without one; upstream's current definition).
// Plain SQL and IMMUTABLE, so the planner can inline them into policies. storage.objects.updated_at is kept by a
// trigger, as upstream's.
export const sql = /* sql */ `
CREATE OR REPLACE FUNCTION storage.foldername(name text) RETURNS text[]
  LANGUAGE sql IMMUTABLE
  AS $fn$
    SELECT parts[1 : array_length(parts, 1) - 1] FROM (SELECT string_to_array(name, '/') AS parts) AS split
  $fn$;

CREATE OR REPLACE FUNCTION storage.filename(name text) RETURNS text
  LANGUAGE sql IMMUTABLE
  AS $fn$
    SELECT parts[array_length(parts, 1)] FROM (SELECT string_to_array(name, '/') AS parts) AS split
  $fn$;

CREATE OR REPLACE FUNCTION storage.extension(name text) RETURNS text
  LANGUAGE sql IMMUTABLE
  AS $fn$
    SELECT reverse(split_part(reverse(storage.filename(name)), '.', 1))
  $fn$;

CREATE OR REPLACE FUNCTION storage.update_updated_at_column() RETURNS trigger
  LANGUAGE plpgsql
  AS $fn$
  BEGIN
    NEW.updated_at = now();
    RETURN NEW;
  END
  $fn$;

DROP TRIGGER IF EXISTS update_objects_updated_at ON storage.objects;
CREATE TRIGGER update_objects_updated_at BEFORE UPDATE ON storage.objects
  FOR EACH ROW EXECUTE FUNCTION storage.update_updated_at_column();

GRANT EXECUTE ON FUNCTION storage.foldername(text), storage.filename(text), storage.extension(text)
  TO anon, authenticated, service_role;
`;
