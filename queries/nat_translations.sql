-- name: nat_translations
-- description: Every NATed connection the kernel tracks, in every namespace, with the local sockets and programs at either end: who really answers a published port, and who sends under another address
-- `netns IS NOT NULL` reads every namespace whatever --netns says. The client's socket
-- holds the original tuple, the server's the reply tuple reversed. A dual-stack socket
-- (bound to `::`) of an IPv4 connection is tcp6 with v4-mapped addresses, while
-- conntrack's entry is IPv4: each socket's ends are read without the mapping.
WITH ends AS (
    SELECT
        netns,
        pid,
        program,
        rtrim(proto, '6') AS l4,
        CASE WHEN starts_with(local_address, '::ffff:') AND strpos(local_address, '.') > 0
             THEN substr(local_address, 8) ELSE local_address END AS local_address,
        local_port,
        CASE WHEN starts_with(remote_address, '::ffff:') AND strpos(remote_address, '.') > 0
             THEN substr(remote_address, 8) ELSE remote_address END AS remote_address,
        remote_port
    FROM sockets
    WHERE netns IS NOT NULL
)
SELECT
    c.netns_name,
    c.proto,
    c.nat,
    c.state,
    c.orig_src,
    c.orig_sport,
    c.pre_nat_dst,
    c.post_nat_dst,
    c.pre_nat_src,
    c.post_nat_src,
    client.pid AS client_pid,
    client.program AS client_program,
    server.pid AS server_pid,
    server.program AS server_program
FROM conntrack c
LEFT JOIN ends client
    ON client.netns = c.netns AND client.l4 = rtrim(c.proto, '6')
   AND client.local_address = c.orig_src AND client.local_port = c.orig_sport
   AND client.remote_address = c.orig_dst AND client.remote_port = c.orig_dport
LEFT JOIN ends server
    ON server.netns = c.netns AND server.l4 = rtrim(c.proto, '6')
   AND server.local_address = c.reply_src AND server.local_port = c.reply_sport
   AND server.remote_address = c.reply_dst AND server.remote_port = c.reply_dport
WHERE c.netns IS NOT NULL AND c.nat IS NOT NULL
ORDER BY c.netns_name, c.proto, c.orig_src, c.orig_sport;
