-- archive.search(query, max_rows, row_offset, order_by): the archive's search language, in
-- the database so that psql, scripts and `mailarchive search` all get the same answers.
-- Migration 0006 replaces migration 0003's version (search_0003.sql).
--
-- Query language (docs/sql.md has examples):
--   word              the word, accent- and case-insensitively ("grusse" finds "Grüße"); a
--                     word also finds the parts of addresses, host names, URLs, paths and
--                     file names ("aquillaindustries" finds purchasing@aquillaindustries.com)
--                     and the words of attachment file names
--   a@b.example       a whole address: in the text, or in From, Sender, To, Cc or Bcc
--   "two words"       the words next to each other, in this order
--   a OR b            either; OR joins the terms on its two sides
--   -word, -from:x    exclusion of any term
--   from: to: cc: bcc:   a substring of the name or address; "bob@exa" is the start of an
--                     address, "bob@example.com" a whole one
--   subject:          words (or "a phrase") in the subject
--   filename:         a substring of an attachment's file name
--   mailbox:          the mailbox name
--   has:attachment
--   before:YYYY-MM-DD after:YYYY-MM-DD   sent before that day / on or after it (UTC)
--   larger:5M smaller:200K               raw size, units K, M, G (powers of 1024)
-- Terms are ANDed. Words in Chinese, Japanese or Korean script are matched as substrings.
--
-- Results: one row per delivery (a message in a mailbox). order_by 'newest' (the default):
-- every match, newest first, max_rows at a time from row_offset; archive.search_count gives
-- their exact number. order_by 'relevance': best ts_rank first, but among the 1,000 most
-- recent full-text matches only (ranking reads each candidate's vector); a NOTICE says so
-- when there were more.
--
-- Safety: the query is tokenised by one regular expression; user text only ever reaches the
-- dynamic statement as a bound parameter ($1 tsqueries, $2 strings), never as SQL text. A
-- malformed query raises SQLSTATE 22023 (invalid_parameter_value) with a readable message.
-- mailarchive.search_statement parses a query into statements and their parameters;
-- archive.search runs one, archive.search_count another, archive.search_explain shows a
-- plan. They are SECURITY DEFINER: archive_reader may search without reading the private
-- tables.

-- The tsquery of one term, matching what mailarchive.text_vector indexed: the term's parts
-- (separators such as @ . / - < > made spaces) as a phrase, or, for an address, host name,
-- URL, path or file name, the whole token.
CREATE FUNCTION mailarchive.text_query(value text, phrase boolean)
RETURNS tsquery
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN phrase THEN phraseto_tsquery('archive.mail', mailarchive.token_parts(value))
        WHEN mailarchive.token_parts(value) = value THEN plainto_tsquery('archive.mail', value)
        -- ("word." has no whole token; plainto_tsquery would say so in a NOTICE)
        WHEN length(to_tsvector('archive.mail_whole', value)) = 0
            THEN phraseto_tsquery('archive.mail', mailarchive.token_parts(value))
        ELSE plainto_tsquery('archive.mail_whole', value)
             || phraseto_tsquery('archive.mail', mailarchive.token_parts(value))
    END
$$;

CREATE FUNCTION mailarchive.search_statement(
    query text,
    max_rows integer,
    row_offset integer,
    order_by text,
    OUT statement text,         -- the page of results
    OUT count_statement text,   -- the number of all results
    OUT window_statement text,  -- relevance order: were there more matches than it ranked?
    OUT qs tsquery[],
    OUT vs text[],
    OUT row_limit integer,
    OUT main_q tsquery,
    OUT highlight_q tsquery,
    OUT row_skip integer
)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $search$
DECLARE
    max_query_chars constant integer := 1000;
    -- Each field term is a join for the planner, whose time grows steeply with their
    -- number: 140 of them took minutes to plan.
    max_terms constant integer := 32;
    max_conditions constant integer := 10;
    conditions integer := 0;
    cjk constant text := '[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]';
    token_re constant text :=
        '(-?)(?:([[:alpha:]][[:alnum:]_]*):)?(?:"([^"]*)(")?|([^[:space:]"]+))';
    -- A full-text atom as a condition: in the message row's vector or in one of its chunks.
    text_match constant text := '(m.search @@ $1[%1$s] OR m.id IN (SELECT c.message_id '
        'FROM mailarchive.text_chunk c WHERE c.search @@ $1[%1$s]))';
    -- Relevance order: ranking reads every candidate's vector; a query matching half the
    -- archive would rank 100,000 rows. So the best matches are chosen among the 1,000 most
    -- recent ones (per source: message rows, chunks). Newest first has no such window.
    rank_window constant integer := 1000;
    -- A bare address also matches the messages it sent or received.
    address_roles constant text := '''from'', ''sender'', ''to'', ''cc'', ''bcc''';
    deliveries constant text := ' JOIN mailarchive.delivery d ON d.message_id = m.id '
        'JOIN mailarchive.mailbox b ON b.id = d.mailbox_id';
    chunk_match constant text :=
        'm.id IN (SELECT c.message_id FROM mailarchive.text_chunk c WHERE c.search @@ $4)';
    by_relevance boolean;
    page text;
    known_fields constant text[] := ARRAY['from', 'to', 'cc', 'bcc', 'subject', 'filename',
        'mailbox', 'has', 'before', 'after', 'larger', 'smaller'];
    tok text[];
    negated boolean;
    field text;
    value text;
    phrase boolean;
    atom_q tsquery;       -- a full-text atom
    atom_sql text;        -- or a condition
    conds text[] := '{}';
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
    snippet_sql text;
    where_sql text;
    ranked text;
    joins text;
    uses_mailbox boolean := false;
BEGIN
    qs := '{}';
    vs := '{}';
    -- main_q: the AND of the groups made of full-text words only (one GIN lookup);
    -- highlight_q: every positive full-text atom, for the snippet.
    IF query IS NULL OR btrim(query) = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'search query is empty';
    END IF;
    IF length(query) > max_query_chars THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('search query too long: %s characters, at most %s',
                             length(query), max_query_chars);
    END IF;
    row_limit := coalesce(max_rows, 50);
    IF row_limit < 1 OR row_limit > 10000 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('max_rows must be between 1 and 10000, not %s', row_limit);
    END IF;
    row_skip := coalesce(row_offset, 0);
    IF row_skip < 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('row_offset must be 0 or more, not %s', row_skip);
    END IF;
    IF coalesce(order_by, 'newest') NOT IN ('newest', 'relevance') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('order_by must be ''newest'' or ''relevance'', not %L',
                             left(order_by, 60));
    END IF;
    by_relevance := coalesce(order_by = 'relevance', false);

    -- One extra pass closes the last group.
    FOR tok IN SELECT regexp_matches(query, token_re, 'g') UNION ALL SELECT NULL::text[] LOOP
        atom_q := NULL;
        atom_sql := NULL;
        IF tok IS NOT NULL THEN
            negated := tok[1] = '-';
            field := lower(tok[2]);
            phrase := tok[3] IS NOT NULL;
            value := coalesce(tok[3], tok[5]);
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
                    atom_q := mailarchive.text_query(value, phrase);
                    IF numnode(atom_q) = 0 THEN
                        CONTINUE;  -- punctuation only: nothing to look for
                    END IF;
                    IF field IS NULL AND NOT phrase
                       AND value ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$' THEN
                        -- A whole address: in the text, or as a sender or recipient.
                        qs := qs || atom_q;
                        vs := vs || lower(value);
                        atom_sql := format(
                            'm.id IN (SELECT x.id FROM mailarchive.message x '
                            'WHERE x.search @@ $1[%1$s] UNION ALL '
                            'SELECT c.message_id FROM mailarchive.text_chunk c '
                            'WHERE c.search @@ $1[%1$s] UNION ALL '
                            'SELECT a.message_id FROM mailarchive.address a '
                            'WHERE a.address = $2[%2$s] AND a.role IN (%3$s))',
                            cardinality(qs), cardinality(vs), address_roles);
                        IF NOT negated THEN
                            highlight_q := CASE WHEN highlight_q IS NULL THEN atom_q
                                ELSE highlight_q || atom_q END;
                        END IF;
                        atom_q := NULL;
                    END IF;
                    IF field = 'subject' THEN
                        qs := qs || atom_q;
                        atom_sql := format(
                            'mailarchive.subject_vector(m.subject) @@ $1[%s]', cardinality(qs));
                        atom_q := NULL;
                    END IF;
                END IF;
            ELSIF field IN ('from', 'to', 'cc', 'bcc') THEN
                roles := CASE field WHEN 'from' THEN '''from'', ''sender''' ELSE quote_literal(field) END;
                IF value ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$' THEN
                    vs := vs || lower(value);
                    atom_sql := format(
                        'm.id IN (SELECT a.message_id FROM mailarchive.address a '
                        'WHERE a.address = $2[%s] AND a.role IN (%s))', cardinality(vs), roles);
                ELSIF value ~ '^[^@]+@' THEN
                    -- The start of an address: a prefix match, which a btree answers
                    -- faster than trigrams (the domain's trigrams are in every row).
                    vs := vs || (replace(replace(replace(lower(value), '\', '\\'), '%', '\%'),
                                         '_', '\_') || '%');
                    atom_sql := format(
                        'm.id IN (SELECT a.message_id FROM mailarchive.address a '
                        'WHERE a.address LIKE $2[%s] AND a.role IN (%s))', cardinality(vs), roles);
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
                uses_mailbox := true;
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
            IF atoms > max_terms THEN
                RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                    MESSAGE = format('search query has more than %s terms', max_terms);
            END IF;
            IF atom_sql IS NOT NULL THEN
                conditions := conditions + 1;
                IF conditions > max_conditions THEN
                    RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                        MESSAGE = format('search query has more than %s field terms '
                                         'or CJK words', max_conditions);
                END IF;
            END IF;
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
                        group_sql := group_sql || format(text_match, cardinality(qs));
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
                atom_sql := format(text_match, cardinality(qs));
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
    where_sql := CASE WHEN cardinality(conds) > 0
        THEN ' AND ' || array_to_string(conds, ' AND ') ELSE '' END;
    IF main_q IS NULL THEN
        -- Fields only (or words that are conditions): the newest deliveries that qualify.
        count_statement := 'SELECT count(*) FROM mailarchive.message m' || deliveries
            || ' WHERE true' || where_sql;
        ranked := 'SELECT m.id, b.name::text AS mailbox, d.uidl::text AS uidl, d.id AS delivery, '
            '0::real AS rank, NULL::bigint AS chunk FROM mailarchive.message m' || deliveries
            || ' WHERE true' || where_sql
            || ' ORDER BY m.sent_at DESC NULLS LAST, m.id DESC, d.id LIMIT $3 OFFSET $6';
        by_relevance := false;
    ELSIF NOT by_relevance THEN
        -- Every match, newest first. A match is in the message row's vector or in one of
        -- its chunks: two branches, each of which an index answers (GIN, or the sent_at
        -- order), each cut at offset + limit; the page is the first rows of their union.
        -- A branch is cut at 40 rows at least: the planner costs a row's @@ as almost
        -- free, and for 20 rows walked the newest messages looking for a rare word
        -- (mailbox:box6 larger:100K word: 165 ms, 26,000 vectors read; GIN: 15 ms).
        page := 'SELECT m.id, b.name::text AS mailbox, d.uidl::text AS uidl, d.id AS delivery, '
            'm.sent_at FROM mailarchive.message m' || deliveries || ' WHERE %s' || where_sql
            || ' ORDER BY m.sent_at DESC NULLS LAST, m.id DESC, d.id '
            'LIMIT greatest($3 + $6, 40)';
        page := 'SELECT p.id, p.mailbox, p.uidl, p.delivery FROM (('
            || format(page, 'm.search @@ $4') || ') UNION (' || format(page, chunk_match)
            || ')) p ORDER BY p.sent_at DESC NULLS LAST, p.id DESC, p.delivery '
            'LIMIT $3 OFFSET $6';
        -- Rank and best chunk (for the snippet) of the page's rows only.
        ranked := 'SELECT p.id, p.mailbox, p.uidl, p.delivery, '
            'greatest(ts_rank(x.search, $4), k.rank)::real AS rank, k.chunk '
            'FROM (' || page || ') p JOIN mailarchive.message x ON x.id = p.id '
            'LEFT JOIN LATERAL (SELECT c.id AS chunk, ts_rank(c.search, $4) AS rank '
            'FROM mailarchive.text_chunk c WHERE c.message_id = p.id AND c.search @@ $4 '
            'AND NOT x.search @@ $4 ORDER BY 2 DESC, c.id LIMIT 1) k ON true';
        count_statement := 'SELECT count(*) FROM ((SELECT d.id FROM mailarchive.message m'
            || deliveries || ' WHERE m.search @@ $4' || where_sql || ') UNION '
            '(SELECT d.id FROM mailarchive.message m' || deliveries || ' WHERE ' || chunk_match
            || where_sql || ')) s';
    ELSE
        -- Relevance: candidates are messages; their mailboxes are joined only where a
        -- condition needs them (mailbox:), and again, for every row, after ranking.
        joins := CASE WHEN uses_mailbox THEN deliveries ELSE '' END;
        ranked := 'SELECT t.id, max(t.rank)::real AS rank, '
            '(array_agg(t.chunk ORDER BY t.rank DESC))[1] AS chunk, max(t.sent_at) AS sent_at '
            'FROM (SELECT s.id, s.chunk, s.sent_at, '
            'ts_rank(coalesce(c.search, x.search), $4) AS rank '
            'FROM ((SELECT m.id, NULL::bigint AS chunk, m.sent_at '
            'FROM mailarchive.message m' || joins || ' WHERE m.search @@ $4' || where_sql
            || ' ORDER BY m.sent_at DESC NULLS LAST LIMIT ' || rank_window || ') UNION ALL '
            '(SELECT m.id, c.id, m.sent_at FROM mailarchive.text_chunk c '
            'JOIN mailarchive.message m ON m.id = c.message_id' || joins
            || ' WHERE c.search @@ $4' || where_sql
            || ' ORDER BY m.sent_at DESC NULLS LAST LIMIT ' || rank_window || ')) s '
            'JOIN mailarchive.message x ON x.id = s.id '
            'LEFT JOIN mailarchive.text_chunk c ON c.id = s.chunk) t '
            'GROUP BY t.id ORDER BY rank DESC, sent_at DESC NULLS LAST, t.id DESC LIMIT $3 + $6';
        ranked := 'SELECT h.id, b.name::text AS mailbox, d.uidl::text AS uidl, d.id AS delivery, '
            'h.rank, h.chunk FROM (' || ranked || ') h JOIN mailarchive.message m ON m.id = h.id'
            || deliveries || ' WHERE true' || where_sql
            || ' ORDER BY h.rank DESC, m.sent_at DESC NULLS LAST, h.id DESC, d.id '
            'LIMIT $3 OFFSET $6';
        window_statement := 'SELECT (SELECT count(*) FROM (SELECT FROM mailarchive.message m'
            || joins || ' WHERE m.search @@ $4' || where_sql || ' LIMIT ' || rank_window + 1
            || ') w) > ' || rank_window || ' OR (SELECT count(*) FROM (SELECT FROM '
            'mailarchive.text_chunk c JOIN mailarchive.message m ON m.id = c.message_id'
            || joins || ' WHERE c.search @@ $4' || where_sql || ' LIMIT ' || rank_window + 1
            || ') w) > ' || rank_window;
        count_statement := 'SELECT count(*) FROM ((SELECT d.id FROM mailarchive.message m'
            || deliveries || ' WHERE m.search @@ $4' || where_sql || ') UNION '
            '(SELECT d.id FROM mailarchive.message m' || deliveries || ' WHERE ' || chunk_match
            || where_sql || ')) s';
    END IF;
    statement := 'SELECT r.id, r.mailbox, r.uidl, m.sent_at, '
        '(SELECT a.address FROM mailarchive.address a WHERE a.message_id = r.id '
        'AND a.role = ''from'' ORDER BY a.ordinal LIMIT 1), m.subject, r.rank, '
        || snippet_sql || ', m.thread_id, m.sha256::text FROM (' || ranked || ') r '
        'JOIN mailarchive.message m ON m.id = r.id ORDER BY '
        || CASE WHEN by_relevance THEN 'r.rank DESC, ' ELSE '' END
        || 'm.sent_at DESC NULLS LAST, r.id DESC, r.delivery';
END
$search$;

CREATE FUNCTION archive.search(
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
LANGUAGE plpgsql STABLE SECURITY DEFINER
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

-- The number of rows archive.search returns for a query over all its pages, exactly.
CREATE FUNCTION archive.search_count(query text)
RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER
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

-- The plan archive.search runs for a query, executed: EXPLAIN (ANALYZE, BUFFERS).
CREATE FUNCTION archive.search_explain(
    query text,
    max_rows integer DEFAULT 50,
    row_offset integer DEFAULT 0,
    order_by text DEFAULT 'newest'
)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $search$
DECLARE
    s record;
BEGIN
    SELECT * INTO s FROM mailarchive.search_statement(query, max_rows, row_offset, order_by);
    RETURN QUERY EXECUTE 'EXPLAIN (ANALYZE, BUFFERS) ' || s.statement
        USING s.qs, s.vs, s.row_limit, s.main_q, s.highlight_q, s.row_skip;
END
$search$;

COMMENT ON FUNCTION archive.search(text, integer, integer, text) IS
    'Search the archive: words, "phrases", OR, -exclusion, from: to: cc: bcc: subject: '
    'filename: mailbox: has:attachment before:YYYY-MM-DD after:YYYY-MM-DD larger:5M smaller:5M. '
    'Returns max_rows deliveries from row_offset with a highlighted snippet: every match, '
    'newest first; order_by => ''relevance'': best first among the 1,000 most recent matches '
    'only. archive.search_count(query) counts them all.';
COMMENT ON FUNCTION archive.search_count(text) IS
    'The exact number of rows archive.search(query) returns over all its pages.';
