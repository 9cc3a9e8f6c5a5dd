-- name: seed
-- description: a header with every key
-- severity: high
-- remediation: none
-- param: port = 22
-- param: who = 'it'
SELECT $port, $who;
