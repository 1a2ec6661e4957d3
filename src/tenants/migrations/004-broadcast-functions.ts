// Broadcast from the database (spec §4.6). These run with the caller's rights (RLS on realtime.messages
// applies to anon/authenticated callers); triggers usually call them from SECURITY DEFINER functions.
export const sql = /* sql */ `
CREATE OR REPLACE FUNCTION realtime.topic()
RETURNS text
LANGUAGE sql STABLE
AS $fn$
  SELECT nullif(current_setting('realtime.topic', true), '')
$fn$;

CREATE OR REPLACE FUNCTION realtime.send(payload jsonb, event text, topic text, private boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
AS $fn$
DECLARE
  message_id uuid := gen_random_uuid();
  body jsonb := coalesce(send.payload, '{}'::jsonb);
BEGIN
  BEGIN
    -- The id lets receivers (and replay) de-duplicate; a caller-provided id wins.
    IF jsonb_typeof(body) = 'object' AND NOT body ? 'id' THEN
      body := body || jsonb_build_object('id', message_id);
    END IF;
    -- Lets insert policies check realtime.topic() against the row being written.
    PERFORM set_config('realtime.topic', send.topic, true);
    INSERT INTO realtime.messages (id, topic, extension, event, payload, private)
    VALUES (message_id, send.topic, 'broadcast', send.event, body, send.private);
  EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'WarnSendingBroadcastMessage: %', SQLERRM;
  END;
END
$fn$;

CREATE OR REPLACE FUNCTION realtime.send_binary(payload bytea, event text, topic text, private boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
AS $fn$
BEGIN
  BEGIN
    PERFORM set_config('realtime.topic', send_binary.topic, true);
    INSERT INTO realtime.messages (topic, extension, event, binary_payload, private)
    VALUES (send_binary.topic, 'broadcast', send_binary.event, send_binary.payload, send_binary.private);
  EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'WarnSendingBroadcastMessage: %', SQLERRM;
  END;
END
$fn$;

CREATE OR REPLACE FUNCTION realtime.broadcast_changes(
  topic_name text,
  event_name text,
  operation text,
  table_name text,
  table_schema text,
  new record,
  old record,
  level text DEFAULT 'ROW'
)
RETURNS void
LANGUAGE plpgsql
AS $fn$
DECLARE
  op text := upper(broadcast_changes.operation);
BEGIN
  IF broadcast_changes.level IS DISTINCT FROM 'ROW' THEN
    RAISE EXCEPTION 'realtime.broadcast_changes only supports row level triggers (got level %)', broadcast_changes.level;
  END IF;
  IF op IS NULL OR op NOT IN ('INSERT', 'UPDATE', 'DELETE') THEN
    RAISE EXCEPTION 'realtime.broadcast_changes does not support operation %', broadcast_changes.operation;
  END IF;
  PERFORM realtime.send(
    jsonb_build_object(
      'old_record', CASE WHEN op IN ('UPDATE', 'DELETE') THEN to_jsonb(broadcast_changes.old) END,
      'record', CASE WHEN op IN ('INSERT', 'UPDATE') THEN to_jsonb(broadcast_changes.new) END,
      'operation', op,
      'table', broadcast_changes.table_name,
      'schema', broadcast_changes.table_schema
    ),
    broadcast_changes.event_name,
    broadcast_changes.topic_name,
    true
  );
END
$fn$;

GRANT EXECUTE ON FUNCTION
  realtime.topic(),
  realtime.send(jsonb, text, text, boolean),
  realtime.send_binary(bytea, text, text, boolean),
  realtime.broadcast_changes(text, text, text, text, text, record, record, text)
TO anon, authenticated, service_role;
`;
