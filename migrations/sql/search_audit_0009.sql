-- Migration 0009: archive.search and archive.search_count record each call in the audit
-- trail (query, page and rows returned, or the count). They are wrappers, VOLATILE since
-- they write, around the functions of 0006 renamed mailarchive.search_unrecorded and
-- mailarchive.search_count_unrecorded: owner-only, STABLE, usable in a READ ONLY or
-- REPEATABLE READ snapshot (export reads its pages in one, and records itself as an export).
-- A call of the wrappers that cannot be recorded (a read-only transaction, a hot standby, an
-- isolation level other than READ COMMITTED) fails: no unrecorded search through them.
-- The OS user is whatever the caller set in `mailarchive.os_user` (the command line does).

CREATE FUNCTION mailarchive.search_unrecorded(
    query text,
    max_rows integer DEFAULT 50,
    row_offset integer DEFAULT 0,
    order_by text DEFAULT 'newest'
)
RETURNS TABLE (
    id bigint,
    mailbox text,
    uidl text,
    sent_at timestamptz,
    from_address text,
    subject text,
    rank real,
    snippet text,
    thread_id text,
    sha256 text
)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $search$
DECLARE
    s record;
    more boolean;
BEGIN
    SELECT * INTO s FROM mailarchive.search_statement(query, max_rows, row_offset, order_by);
    IF s.window_statement IS NOT NULL THEN
        EXECUTE s.window_statement INTO more USING s.qs, s.vs, s.row_limit, s.main_q;
        IF more THEN
            RAISE NOTICE 'relevance order ranked only the 1,000 most recent matches'
                USING HINT = 'order_by => ''newest'' (the default) returns every match; '
                             'archive.search_count(query) counts them';
        END IF;
    END IF;
    RETURN QUERY EXECUTE s.statement
        USING s.qs, s.vs, s.row_limit, s.main_q, s.highlight_q, s.row_skip;
END
$search$;

CREATE FUNCTION mailarchive.search_count_unrecorded(query text)
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $search$
DECLARE
    s record;
    total bigint;
BEGIN
    SELECT * INTO s FROM mailarchive.search_statement(query, 1, 0, 'newest');
    EXECUTE s.count_statement INTO total USING s.qs, s.vs, s.row_limit, s.main_q;
    RETURN total;
END
$search$;

REVOKE ALL ON FUNCTION mailarchive.search_unrecorded(text, integer, integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mailarchive.search_count_unrecorded(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION archive.search(
    query text,
    max_rows integer DEFAULT 50,
    row_offset integer DEFAULT 0,
    order_by text DEFAULT 'newest'
)
RETURNS TABLE (
    id bigint,
    mailbox text,
    uidl text,
    sent_at timestamptz,
    from_address text,
    subject text,
    rank real,
    snippet text,
    thread_id text,
    sha256 text
)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $search$
DECLARE
    returned bigint;
BEGIN
    RETURN QUERY SELECT * FROM mailarchive.search_unrecorded(query, max_rows, row_offset,
                                                             order_by);
    GET DIAGNOSTICS returned = ROW_COUNT;
    PERFORM mailarchive.audit_record('search', jsonb_build_object(
        'query', query, 'max_rows', max_rows, 'row_offset', row_offset,
        'order_by', order_by, 'rows', returned));
END
$search$;

CREATE OR REPLACE FUNCTION archive.search_count(query text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $search$
DECLARE
    total bigint := mailarchive.search_count_unrecorded(query);
BEGIN
    PERFORM mailarchive.audit_record('search_count',
                                     jsonb_build_object('query', query, 'matches', total));
    RETURN total;
END
$search$;
