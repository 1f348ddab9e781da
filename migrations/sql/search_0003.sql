-- archive.search(query, max_rows): the archive's search language, in the database so that
-- psql, scripts and `mailarchive search` all get the same answers.
--
-- Query language (docs/sql.md has examples):
--   word              the word, accent- and case-insensitively ("grusse" finds "Grüße")
--   "two words"       the words next to each other, in this order
--   a OR b            either; OR joins the terms on its two sides
--   -word, -from:x    exclusion of any term
--   from: to: cc: bcc:   a substring of the name or address; a full address matches exactly
--   subject:          words (or "a phrase") in the subject
--   filename:         a substring of an attachment's file name
--   mailbox:          the mailbox name
--   has:attachment
--   before:YYYY-MM-DD after:YYYY-MM-DD   sent before that day / on or after it (UTC)
--   larger:5M smaller:200K               raw size, units K, M, G (powers of 1024)
-- Terms are ANDed. Words in Chinese, Japanese or Korean script are matched as substrings.
--
-- Safety: the query is tokenised by one regular expression; user text only ever reaches the
-- dynamic statement as a bound parameter ($1 tsqueries, $2 strings), never as SQL text. A
-- malformed query raises SQLSTATE 22023 (invalid_parameter_value) with a readable message.
-- SECURITY DEFINER: archive_reader may call it without reading the private tables.
CREATE FUNCTION archive.search(query text, max_rows integer DEFAULT 50)
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
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $search$
DECLARE
    max_query_chars constant integer := 1000;
    cjk constant text := '[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]';
    token_re constant text :=
        '(-?)(?:([[:alpha:]][[:alnum:]_]*):)?(?:"([^"]*)(")?|([^[:space:]"]+))';
    known_fields constant text[] := ARRAY['from', 'to', 'cc', 'bcc', 'subject', 'filename',
        'mailbox', 'has', 'before', 'after', 'larger', 'smaller'];
    tok text[];
    negated boolean;
    field text;
    value text;
    phrase boolean;
    shown text;
    atom_q tsquery;       -- a full-text atom
    atom_sql text;        -- or a condition
    qs tsquery[] := '{}';
    vs text[] := '{}';
    conds text[] := '{}';
    main_q tsquery;       -- AND of the groups made of full-text words only
    highlight_q tsquery;  -- every positive full-text atom, for the snippet
    group_q tsquery;
    group_sql text[];
    group_open boolean := false;
    group_pure boolean;
    or_pending boolean := false;
    atoms integer := 0;
    size_match text[];
    bytes numeric;
    day date;
    roles text;
    statement text;
    snippet_sql text;
BEGIN
    IF query IS NULL OR btrim(query) = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'search query is empty';
    END IF;
    IF length(query) > max_query_chars THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('search query too long: %s characters, at most %s',
                             length(query), max_query_chars);
    END IF;
    max_rows := coalesce(max_rows, 50);
    IF max_rows < 1 OR max_rows > 10000 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('max_rows must be between 1 and 10000, not %s', max_rows);
    END IF;

    -- One extra pass closes the last group.
    FOR tok IN SELECT regexp_matches(query, token_re, 'g') UNION ALL SELECT NULL::text[] LOOP
        atom_q := NULL;
        atom_sql := NULL;
        IF tok IS NOT NULL THEN
            negated := tok[1] = '-';
            field := lower(tok[2]);
            phrase := tok[3] IS NOT NULL;
            value := coalesce(tok[3], tok[5]);
            shown := left(coalesce(tok[2] || ':', '') || value, 60);
            IF phrase AND tok[4] IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                    MESSAGE = format('search query: unterminated quote before %L', left(value, 60)),
                    HINT = 'close the phrase with a double quote';
            END IF;
            IF field IS NOT NULL AND NOT field = ANY (known_fields) THEN
                IF NOT phrase AND value LIKE '//%' THEN  -- a URL such as https://…
                    value := tok[2] || ':' || value;
                    field := NULL;
                ELSE
                    RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                        MESSAGE = format('search query: unknown field %L', tok[2] || ':'),
                        HINT = 'fields: ' || array_to_string(known_fields, ': ') ||
                               ': (put a word with a colon in double quotes)';
                END IF;
            END IF;
            IF field IS NULL AND NOT phrase AND lower(value) ~ '^[a-z]+:$'
               AND left(lower(value), -1) = ANY (known_fields) THEN
                RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                    MESSAGE = format('search query: %s needs a value right after the colon',
                                     value);
            END IF;
            IF field IS NULL AND NOT phrase AND NOT negated AND value IN ('OR', '|') THEN
                IF NOT group_open OR or_pending THEN
                    RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                        MESSAGE = 'search query: OR needs a term on each side';
                END IF;
                or_pending := true;
                CONTINUE;
            END IF;
            IF field IS NULL AND NOT phrase AND NOT negated AND value = 'AND' THEN
                CONTINUE;  -- terms are ANDed anyway
            END IF;
            IF field IS NOT NULL AND btrim(value) = '' THEN
                RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                    MESSAGE = format('search query: %s: needs a value', field);
            END IF;

            IF field IS NULL OR field = 'subject' THEN
                IF value ~ cjk THEN
                    vs := vs || ('%' || replace(replace(replace(value, '\', '\\'), '%', '\%'),
                                                '_', '\_') || '%');
                    IF field = 'subject' THEN
                        atom_sql := format('m.subject ILIKE $2[%s]', cardinality(vs));
                    ELSE
                        atom_sql := format(
                            'm.id IN (SELECT x.id FROM mailarchive.message x WHERE '
                            'mailarchive.message_cjk_text(x.subject, x.body_text) ILIKE $2[%1$s] '
                            'UNION ALL '
                            'SELECT c.message_id FROM mailarchive.text_chunk c WHERE '
                            'mailarchive.cjk_text(c.content) ILIKE $2[%1$s])', cardinality(vs));
                    END IF;
                ELSE
                    IF phrase THEN
                        atom_q := phraseto_tsquery('archive.mail', value);
                    ELSE
                        atom_q := plainto_tsquery('archive.mail', value);
                    END IF;
                    IF numnode(atom_q) = 0 THEN
                        CONTINUE;  -- punctuation only: nothing to look for
                    END IF;
                    IF field = 'subject' THEN
                        -- Subject lexemes carry weight A in every vector.
                        atom_q := regexp_replace(atom_q::text, '''((?:[^'']|'''')*)''',
                                                 '''\1'':A', 'g')::tsquery;
                    END IF;
                END IF;
            ELSIF field IN ('from', 'to', 'cc', 'bcc') THEN
                roles := CASE field WHEN 'from' THEN '''from'', ''sender''' ELSE quote_literal(field) END;
                IF value ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$' THEN
                    vs := vs || lower(value);
                    atom_sql := format(
                        'm.id IN (SELECT a.message_id FROM mailarchive.address a '
                        'WHERE a.address = $2[%s] AND a.role IN (%s))', cardinality(vs), roles);
                ELSE
                    vs := vs || ('%' || replace(replace(replace(
                        lower(mailarchive.fold(value)), '\', '\\'), '%', '\%'), '_', '\_') || '%');
                    atom_sql := format(
                        'm.id IN (SELECT a.message_id FROM mailarchive.address a '
                        'WHERE (a.address LIKE $2[%1$s] OR mailarchive.fold(a.name) LIKE $2[%1$s]) '
                        'AND a.role IN (%2$s))', cardinality(vs), roles);
                END IF;
            ELSIF field = 'filename' THEN
                vs := vs || ('%' || replace(replace(replace(
                    lower(mailarchive.fold(value)), '\', '\\'), '%', '\%'), '_', '\_') || '%');
                atom_sql := format(
                    'm.id IN (SELECT t.message_id FROM mailarchive.attachment t '
                    'WHERE mailarchive.fold(t.filename) LIKE $2[%s])', cardinality(vs));
            ELSIF field = 'mailbox' THEN
                vs := vs || value;
                atom_sql := format('b.name = $2[%s]', cardinality(vs));
            ELSIF field = 'has' THEN
                IF lower(value) NOT IN ('attachment', 'attachments') THEN
                    RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                        MESSAGE = format('search query: has:%s is not known (has:attachment is)',
                                         left(value, 60));
                END IF;
                atom_sql := 'm.has_attachments';
            ELSIF field IN ('before', 'after') THEN
                day := NULL;
                IF value ~ '^\d{4}-\d{2}-\d{2}$' THEN
                    BEGIN
                        day := to_date(value, 'YYYY-MM-DD');
                        IF to_char(day, 'YYYY-MM-DD') <> value THEN
                            day := NULL;  -- to_date rolls 2026-02-30 over to March
                        END IF;
                    EXCEPTION WHEN OTHERS THEN
                        day := NULL;
                    END;
                END IF;
                IF day IS NULL THEN
                    RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                        MESSAGE = format('search query: %s: expects a date YYYY-MM-DD, not %L',
                                         field, left(value, 60));
                END IF;
                vs := vs || day::text;
                atom_sql := format('m.sent_at %s ($2[%s]::date::timestamp AT TIME ZONE ''UTC'')',
                                   CASE field WHEN 'before' THEN '<' ELSE '>=' END,
                                   cardinality(vs));
            ELSIF field IN ('larger', 'smaller') THEN
                size_match := regexp_match(lower(value), '^(\d{1,12}(?:\.\d{1,3})?)([kmg]?)b?$');
                IF size_match IS NULL THEN
                    RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                        MESSAGE = format('search query: %s: expects a size such as 5M or 200K, not %L',
                                         field, left(value, 60));
                END IF;
                bytes := size_match[1]::numeric * CASE size_match[2]
                    WHEN 'k' THEN 1024 WHEN 'm' THEN 1048576 WHEN 'g' THEN 1073741824 ELSE 1 END;
                vs := vs || round(bytes)::bigint::text;
                atom_sql := format('m.size %s $2[%s]::bigint',
                                   CASE field WHEN 'larger' THEN '>' ELSE '<' END, cardinality(vs));
            END IF;
            atoms := atoms + 1;
        END IF;

        -- Groups: terms joined by OR. A group of positive full-text atoms only becomes part
        -- of main_q (one GIN lookup); any other group becomes one SQL condition.
        IF tok IS NULL OR NOT or_pending THEN
            IF group_open THEN
                IF group_pure THEN
                    main_q := CASE WHEN main_q IS NULL THEN group_q ELSE main_q && group_q END;
                ELSE
                    IF group_q IS NOT NULL THEN
                        qs := qs || group_q;
                        group_sql := group_sql || format(
                            'm.id IN (SELECT x.id FROM mailarchive.message x WHERE x.search @@ $1[%1$s] '
                            'UNION ALL SELECT c.message_id FROM mailarchive.text_chunk c '
                            'WHERE c.search @@ $1[%1$s])', cardinality(qs));
                    END IF;
                    conds := conds || ('(' || array_to_string(group_sql, ' OR ') || ')');
                END IF;
            END IF;
            EXIT WHEN tok IS NULL;
            group_open := true;
            group_pure := true;
            group_q := NULL;
            group_sql := '{}';
        END IF;
        or_pending := false;

        IF atom_q IS NOT NULL AND NOT negated THEN
            group_q := CASE WHEN group_q IS NULL THEN atom_q ELSE group_q || atom_q END;
            highlight_q := CASE WHEN highlight_q IS NULL THEN atom_q ELSE highlight_q || atom_q END;
        ELSE
            group_pure := false;
            IF atom_q IS NOT NULL THEN
                qs := qs || atom_q;
                atom_sql := format(
                    'm.id IN (SELECT x.id FROM mailarchive.message x WHERE x.search @@ $1[%1$s] '
                    'UNION ALL SELECT c.message_id FROM mailarchive.text_chunk c '
                    'WHERE c.search @@ $1[%1$s])', cardinality(qs));
            END IF;
            IF negated THEN
                atom_sql := '(' || atom_sql || ') IS NOT TRUE';
            END IF;
            group_sql := group_sql || atom_sql;
        END IF;
    END LOOP;

    IF or_pending THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'search query: OR needs a term on each side';
    END IF;
    IF atoms = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'search query has no word or field to search for';
    END IF;

    -- The snippet: ts_headline over the chunk that matched best, else the body's start.
    snippet_sql := CASE WHEN highlight_q IS NULL THEN
        'left(regexp_replace(left(m.body_text, 2000), ''\s+'', '' '', ''g''), 200)'
    ELSE
        'regexp_replace(ts_headline(''archive.mail'', coalesce((SELECT c.content FROM '
        'mailarchive.text_chunk c WHERE c.id = r.chunk), left(m.body_text, 30000)), $5, '
        '''MaxFragments=2, MinWords=5, MaxWords=18, StartSel=**, StopSel=**, '
        'FragmentDelimiter=" … "''), ''\s+'', '' '', ''g'')'
    END;
    statement := 'SELECT r.id, r.mailbox, r.uidl, r.sent_at, '
        '(SELECT a.address FROM mailarchive.address a WHERE a.message_id = r.id '
        'AND a.role = ''from'' ORDER BY a.ordinal LIMIT 1), r.subject, r.rank, '
        || snippet_sql || ', r.thread_id, r.sha256 FROM (SELECT m.id, b.name::text AS mailbox, '
        'd.uidl::text AS uidl, m.sent_at, m.subject, '
        || CASE WHEN main_q IS NULL THEN '0::real AS rank, NULL::bigint AS chunk'
           ELSE 'h.rank, h.chunk' END
        || ', m.thread_id, m.sha256::text AS sha256 FROM '
        || CASE WHEN main_q IS NULL THEN 'mailarchive.message m'
           ELSE '(SELECT s.id, max(s.rank)::real AS rank, '
                '(array_agg(s.chunk ORDER BY s.rank DESC))[1] AS chunk FROM ('
                'SELECT x.id, ts_rank(x.search, $4) AS rank, NULL::bigint AS chunk '
                'FROM mailarchive.message x WHERE x.search @@ $4 UNION ALL '
                'SELECT c.message_id, ts_rank(c.search, $4), c.id '
                'FROM mailarchive.text_chunk c WHERE c.search @@ $4) s GROUP BY s.id) h '
                'JOIN mailarchive.message m ON m.id = h.id' END
        || ' JOIN mailarchive.delivery d ON d.message_id = m.id '
           'JOIN mailarchive.mailbox b ON b.id = d.mailbox_id'
        || CASE WHEN cardinality(conds) > 0 THEN ' WHERE ' || array_to_string(conds, ' AND ')
           ELSE '' END
        || ' ORDER BY rank DESC, m.sent_at DESC NULLS LAST, m.id, b.name LIMIT $3) r '
           'JOIN mailarchive.message m ON m.id = r.id '
           'ORDER BY r.rank DESC, r.sent_at DESC NULLS LAST, r.id, r.mailbox';
    RETURN QUERY EXECUTE statement USING qs, vs, max_rows, main_q, highlight_q;
END
$search$;

COMMENT ON FUNCTION archive.search(text, integer) IS
    'Search the archive: words, "phrases", OR, -exclusion, from: to: cc: bcc: subject: '
    'filename: mailbox: has:attachment before:YYYY-MM-DD after:YYYY-MM-DD larger:5M smaller:5M. '
    'Returns at most max_rows deliveries, best first, with a highlighted snippet.';
