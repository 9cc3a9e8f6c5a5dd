-- name: netstat_routes
-- description: Routes with the fields netstat -r[e] prints (behind `netsql netstat -r`)
SELECT family, destination, netmask, gateway, flags, metric, ref_count, use_count, mtu, window, irtt, interface
FROM routes;
