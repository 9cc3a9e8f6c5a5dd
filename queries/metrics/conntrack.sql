-- name: conntrack
-- metric: netsql_conntrack
-- type: gauge
-- description: Connection tracking per namespace: entries in the table (value="entries") and its limit (value="max"), from nf_conntrack_count and nf_conntrack_max
-- labels: netns
-- optional: true
SELECT
    coalesce(nullif(netns_name, ''), CAST(netns AS VARCHAR), '') AS netns,
    count AS entries,
    max
FROM conntrack_stats
WHERE cpu IS NULL;
