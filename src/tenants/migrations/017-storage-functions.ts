// Supabase Storage's helper functions (spec baas-api.md §4.7), which "own folder" policies call:
// storage.foldername(name) (every segment but the last), storage.filename(name) (the last segment),
// storage.extension(name) (after the last dot of the file name, '' without one; upstream's current definition).
// Plain SQL and IMMUTABLE, so the planner can inline them into policies. storage.objects.updated_at is kept by a
// trigger, as upstream's.
//
// Storage events (Performer's, not upstream's): every object created, updated (new bytes), moved or removed is
// broadcast to the private topic `storage:<bucket>` through realtime.send(), from a trigger, so the event is sent
// if and only if the change commits. The trigger runs as its owner (SECURITY DEFINER) because the API roles may not
// write realtime.messages; who may *receive* is decided per event and subscriber by the SELECT policies on
// storage.objects (src/tenants/storage-authorization.ts), not by policies on realtime.messages. Changes that only
// touch bookkeeping columns are not events.
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

CREATE OR REPLACE FUNCTION storage.performer_event_payload(obj storage.objects) RETURNS jsonb
  LANGUAGE sql STABLE
  SET search_path = ''
  AS $fn$
    SELECT jsonb_build_object(
      'bucketId', obj.bucket_id, 'name', obj.name, 'id', obj.id, 'version', obj.version,
      'size', obj.metadata -> 'size', 'mimetype', obj.metadata -> 'mimetype', 'owner', obj.owner_id
    )
  $fn$;

CREATE OR REPLACE FUNCTION storage.performer_publish_event() RETURNS trigger
  LANGUAGE plpgsql
  SECURITY DEFINER
  SET search_path = ''
  AS $fn$
  BEGIN
    IF TG_OP = 'INSERT' THEN
      PERFORM realtime.send(storage.performer_event_payload(NEW), 'ObjectCreated', 'storage:' || NEW.bucket_id, true);
    ELSIF TG_OP = 'DELETE' THEN
      PERFORM realtime.send(storage.performer_event_payload(OLD), 'ObjectRemoved', 'storage:' || OLD.bucket_id, true);
    ELSIF NEW.bucket_id IS DISTINCT FROM OLD.bucket_id OR NEW.name IS DISTINCT FROM OLD.name THEN
      PERFORM realtime.send(
        storage.performer_event_payload(NEW) || jsonb_build_object('oldBucketId', OLD.bucket_id, 'oldName', OLD.name),
        'ObjectMoved', 'storage:' || OLD.bucket_id, true);
      IF NEW.bucket_id IS DISTINCT FROM OLD.bucket_id THEN
        PERFORM realtime.send(
          storage.performer_event_payload(NEW) || jsonb_build_object('oldBucketId', OLD.bucket_id, 'oldName', OLD.name),
          'ObjectMoved', 'storage:' || NEW.bucket_id, true);
      END IF;
    ELSIF NEW.version IS DISTINCT FROM OLD.version THEN
      PERFORM realtime.send(storage.performer_event_payload(NEW), 'ObjectUpdated', 'storage:' || NEW.bucket_id, true);
    END IF;
    RETURN NULL;
  END
  $fn$;

DROP TRIGGER IF EXISTS performer_storage_events ON storage.objects;
CREATE TRIGGER performer_storage_events AFTER INSERT OR UPDATE OR DELETE ON storage.objects
  FOR EACH ROW EXECUTE FUNCTION storage.performer_publish_event();

GRANT EXECUTE ON FUNCTION storage.foldername(text), storage.filename(text), storage.extension(text)
  TO anon, authenticated, service_role;
`;
