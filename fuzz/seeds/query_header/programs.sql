-- name: netstat_programs
-- description: Each process named as netstat -p names it: argv[0], without its directory when it is a path
SELECT
    pid,
    CASE
        WHEN starts_with(args[1], '/') THEN regexp_replace(args[1], '(?s)^.*/', '')
        ELSE coalesce(args[1], '')
    END AS program
FROM processes;
