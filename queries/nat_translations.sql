-- name: nat_translations
-- description: Every NATed connection the kernel tracks, in every namespace, with the local sockets and programs at either end: who really answers a published port, and who sends under another address
-- `netns IS NOT NULL` reads every namespace whatever --netns says. The client's socket
-- holds the original tuple, the server's the reply tuple reversed.
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
LEFT JOIN sockets client
    ON client.netns = c.netns AND client.proto = c.proto
   AND client.local_address = c.orig_src AND client.local_port = c.orig_sport
   AND client.remote_address = c.orig_dst AND client.remote_port = c.orig_dport
   AND client.netns IS NOT NULL
LEFT JOIN sockets server
    ON server.netns = c.netns AND server.proto = c.proto
   AND server.local_address = c.reply_src AND server.local_port = c.reply_sport
   AND server.remote_address = c.reply_dst AND server.remote_port = c.reply_dport
   AND server.netns IS NOT NULL
WHERE c.netns IS NOT NULL AND c.nat IS NOT NULL
ORDER BY c.netns_name, c.proto, c.orig_src, c.orig_sport;
