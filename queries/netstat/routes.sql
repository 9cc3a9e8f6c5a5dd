-- name: netstat_routes
-- description: Routes that are up, with the fields netstat -r[e] prints (behind `netsql netstat -r`)
-- param: family = inet
SELECT family, destination, netmask, gateway, flags, metric, ref_count, use_count, mtu, window, irtt, interface
FROM routes
WHERE family = $family AND flags & 1 = 1;
