-- Migration 0009: archive.search and archive.search_count as in 0006, recording each call in
-- the audit trail (query, page, rows returned or counted). VOLATILE: they write. A call that
-- cannot be recorded (a read-only transaction, a hot standby) fails: no unrecorded search.
-- The OS user is whatever the caller set in `mailarchive.os_user` (the command line does).

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
    s record;
    more boolean;
    returned bigint;
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
    s record;
    total bigint;
BEGIN
    SELECT * INTO s FROM mailarchive.search_statement(query, 1, 0, 'newest');
    EXECUTE s.count_statement INTO total USING s.qs, s.vs, s.row_limit, s.main_q;
    PERFORM mailarchive.audit_record('search_count',
                                     jsonb_build_object('query', query, 'matches', total));
    RETURN total;
END
$search$;
