-- Take the webhooks that are due (`tessera webhooks`, workers/service/webhooks.py): up to ARGV[3] job ids whose
-- next attempt is due by ARGV[1], each moved to ARGV[2] (the end of a lease), so no other sender takes one
-- meanwhile, and one that dies holding it leaves it to be taken again once the lease ends.
-- KEYS[1]  the webhook outbox (a sorted set: job id -> when its next attempt is due)
-- ARGV[1]  now (epoch seconds)
-- ARGV[2]  the lease's end (epoch seconds)
-- ARGV[3]  most ids to take
-- Returns the ids taken.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id)
end
return ids
