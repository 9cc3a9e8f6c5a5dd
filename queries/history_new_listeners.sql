-- name: history_new_listeners
-- description: History (--history DEST): TCP listeners in each host's latest snapshot that its previous snapshot did not have, namespace by namespace (two containers may listen on one address and port). Plain SQL: DuckDB and Spark run it unchanged over the dataset
WITH snapshots AS (
    SELECT host, taken, dense_rank() OVER (PARTITION BY host ORDER BY taken DESC) AS age
    FROM (SELECT DISTINCT host, taken FROM history.sockets) AS t
),
listeners AS (
    SELECT s.host, s.taken, s.netns, s.netns_name, s.proto, s.local_address, s.local_port, s.program
    FROM history.sockets AS s
    WHERE s.state = 'LISTEN' AND s.proto IN ('tcp', 'tcp6')
),
latest AS (
    SELECT l.* FROM listeners AS l
    JOIN snapshots AS n ON n.host = l.host AND n.taken = l.taken AND n.age = 1
),
previous AS (
    SELECT l.* FROM listeners AS l
    JOIN snapshots AS n ON n.host = l.host AND n.taken = l.taken AND n.age = 2
)
SELECT a.host, a.netns, a.netns_name, a.proto, a.local_address, a.local_port, a.program, a.taken
FROM latest AS a
WHERE EXISTS (SELECT 1 FROM snapshots AS n WHERE n.host = a.host AND n.age = 2)
  AND NOT EXISTS (
    SELECT 1 FROM previous AS b
    WHERE b.host = a.host AND b.netns = a.netns AND b.proto = a.proto
      AND b.local_address = a.local_address AND b.local_port = a.local_port
)
ORDER BY a.host, a.local_port, a.proto, a.netns;
