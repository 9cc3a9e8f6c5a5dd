-- name: conntrack_usage
-- description: Connection tracking per namespace and protocol: entries, the namespace's total against its limit, and the original sources holding the most entries
-- param: top = 3
WITH entries AS (
    SELECT netns, netns_name, proto, count(*) AS entries
    FROM conntrack
    WHERE netns IS NOT NULL
    GROUP BY netns, netns_name, proto
),
limits AS (
    SELECT netns, count AS total, max
    FROM conntrack_stats
    WHERE netns IS NOT NULL AND cpu IS NULL
),
ranked AS (
    SELECT netns, proto, orig_src, count(*) AS n,
           row_number() OVER (PARTITION BY netns, proto ORDER BY count(*) DESC, orig_src) AS rank
    FROM conntrack
    WHERE netns IS NOT NULL
    GROUP BY netns, proto, orig_src
),
top AS (
    SELECT netns, proto, array_agg(orig_src || ' (' || CAST(n AS VARCHAR) || ')' ORDER BY rank) AS top_sources
    FROM ranked
    WHERE rank <= $top
    GROUP BY netns, proto
)
SELECT e.netns_name, e.proto, e.entries, l.total, l.max,
       round(100.0 * l.total / l.max, 2) AS pct_full, t.top_sources
FROM entries e
LEFT JOIN limits l ON l.netns = e.netns
LEFT JOIN top t ON t.netns = e.netns AND t.proto = e.proto
ORDER BY e.netns_name, e.entries DESC, e.proto;
