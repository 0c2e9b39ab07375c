-- Refresh a worker's claim on its own entry: reset the entry's idle time only while this consumer still holds
-- it (never take it from another; the check and the claim in one script, so nothing can come between them).
-- KEYS[1]  the jobs stream
-- ARGV[1]  the consumer group
-- ARGV[2]  the consumer (worker) name
-- ARGV[3]  the entry id
-- Returns 1 when refreshed, 0 when the entry is no longer pending for this consumer (acked, or claimed by another).
local mine = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #mine == 0 then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')  -- JUSTID: no delivery counted
return 1
