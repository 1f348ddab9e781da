-- Migration 0009: the audit trail's chain and guards, legal holds' guard, and archive.search
-- and archive.search_count that record themselves in the audit trail.

-- The hash of an audit row: the previous row's hash and the row's own fields, each
-- separated by U+001F. The timestamp is in microseconds since the epoch, the details are
-- jsonb's canonical text, so the same row always hashes the same.
CREATE FUNCTION mailarchive.audit_row_hash(
    prev_sha256 text, at timestamptz, action text, db_role text, os_user text,
    client text, details jsonb
) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    SELECT encode(sha256(convert_to(concat_ws(chr(31),
        coalesce(prev_sha256, ''), (extract(epoch FROM at) * 1000000)::bigint::text, action,
        db_role, coalesce(os_user, ''), coalesce(client, ''), details::text), 'UTF8')), 'hex')
$$;

-- Every insert, by whatever path, is chained: rows are serialised by a transaction-level
-- advisory lock, so each sees the row before it (a rolled-back insert leaves only a gap in
-- the ids, never a break in the chain). Only in READ COMMITTED: in REPEATABLE READ or
-- SERIALIZABLE the transaction's snapshot may predate the last committed row, and the chain
-- would fork, so the insert is refused there.
CREATE FUNCTION mailarchive.audit_chain() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('the audit trail records only in READ COMMITTED transactions, '
                             'not %s (%s not recorded, so not done)',
                             upper(current_setting('transaction_isolation')), NEW.action);
    END IF;
    PERFORM pg_advisory_xact_lock(7164687765727374);  -- "audit" chain
    NEW.at := clock_timestamp();
    NEW.db_role := session_user;
    NEW.client := inet_client_addr()::text;
    NEW.details := coalesce(NEW.details, '{}'::jsonb);
    NEW.os_user := coalesce(NEW.os_user,
                            nullif(current_setting('mailarchive.os_user', true), ''));
    SELECT a.sha256 INTO NEW.prev_sha256 FROM mailarchive.audit_log a
        ORDER BY a.id DESC LIMIT 1;
    NEW.sha256 := mailarchive.audit_row_hash(NEW.prev_sha256, NEW.at, NEW.action, NEW.db_role,
                                             NEW.os_user, NEW.client, NEW.details);
    RETURN NEW;
END
$$;

CREATE FUNCTION mailarchive.audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
        MESSAGE = format('the audit trail is append-only: %s refused', TG_OP);
END
$$;

CREATE TRIGGER audit_chain BEFORE INSERT ON mailarchive.audit_log
    FOR EACH ROW EXECUTE FUNCTION mailarchive.audit_chain();
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON mailarchive.audit_log
    FOR EACH ROW EXECUTE FUNCTION mailarchive.audit_refuse_change();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON mailarchive.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION mailarchive.audit_refuse_change();
REVOKE UPDATE, DELETE, TRUNCATE ON mailarchive.audit_log FROM PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE ON mailarchive.audit_log FROM CURRENT_USER;

-- One audit row (SECURITY DEFINER: archive_reader records its searches without any write
-- privilege of its own).
CREATE FUNCTION mailarchive.audit_record(action text, details jsonb) RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO mailarchive.audit_log (action, details) VALUES (action, details) RETURNING id
$$;
REVOKE ALL ON FUNCTION mailarchive.audit_record(text, jsonb) FROM PUBLIC;

-- Whether an active hold covers a message: named in a query or messages hold, or delivered
-- to a mailbox under a mailbox hold.
CREATE FUNCTION mailarchive.is_held(message bigint) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (
        SELECT FROM mailarchive.hold_message hm JOIN mailarchive.hold h ON h.id = hm.hold_id
        WHERE hm.message_id = message AND h.released_at IS NULL
    ) OR EXISTS (
        SELECT FROM mailarchive.delivery d JOIN mailarchive.hold h ON h.mailbox_id = d.mailbox_id
        WHERE d.message_id = message AND h.released_at IS NULL
    )
$$;

-- The belt under every path that removes rows (retention, forget, a DELETE by hand):
-- a held message's row and its deliveries cannot be deleted.
CREATE FUNCTION mailarchive.refuse_held_delete() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    message bigint;
BEGIN
    -- message.message_id is the Message-ID header; delivery.message_id the message row.
    IF TG_TABLE_NAME = 'message' THEN
        message := OLD.id;
    ELSE
        message := OLD.message_id;
    END IF;
    IF mailarchive.is_held(message) THEN
        RAISE EXCEPTION USING ERRCODE = 'integrity_constraint_violation',
            MESSAGE = format('message %s is under legal hold: its rows cannot be deleted '
                             '(archive.held_messages says which hold)', message);
    END IF;
    RETURN OLD;
END
$$;
CREATE TRIGGER held_message_kept BEFORE DELETE ON mailarchive.message
    FOR EACH ROW EXECUTE FUNCTION mailarchive.refuse_held_delete();
CREATE TRIGGER held_delivery_kept BEFORE DELETE ON mailarchive.delivery
    FOR EACH ROW EXECUTE FUNCTION mailarchive.refuse_held_delete();

CREATE VIEW archive.audit AS
SELECT id, at, action, db_role, os_user, client, details, prev_sha256, sha256
FROM mailarchive.audit_log;

CREATE VIEW archive.holds AS
SELECT h.name, h.kind, h.reason, coalesce(b.name, h.mailbox_name) AS mailbox, h.query,
       h.created_at, h.created_by, h.released_at IS NULL AS active, h.released_at,
       h.released_by, h.release_reason,
       CASE WHEN h.kind = 'mailbox'
            THEN (SELECT count(DISTINCT d.message_id) FROM mailarchive.delivery d
                  WHERE d.mailbox_id = h.mailbox_id)
            ELSE (SELECT count(*) FROM mailarchive.hold_message hm WHERE hm.hold_id = h.id)
       END AS messages,
       h.id
FROM mailarchive.hold h LEFT JOIN mailarchive.mailbox b ON b.id = h.mailbox_id;

-- The messages active holds cover now, one row per (hold, message).
CREATE VIEW archive.held_messages AS
SELECT h.name AS hold, hm.message_id, hm.sha256
FROM mailarchive.hold h JOIN mailarchive.hold_message hm ON hm.hold_id = h.id
WHERE h.released_at IS NULL
UNION
SELECT h.name, m.id, m.sha256
FROM mailarchive.hold h
JOIN mailarchive.delivery d ON d.mailbox_id = h.mailbox_id
JOIN mailarchive.message m ON m.id = d.message_id
WHERE h.released_at IS NULL;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'archive_reader') THEN
        GRANT SELECT ON archive.audit, archive.holds, archive.held_messages TO archive_reader;
    END IF;
END $$;
