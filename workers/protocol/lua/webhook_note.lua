-- Record one attempt at a job's webhook: its delivery fields in the job's hash, and its outbox entry removed
-- (delivered, or given up) or due again at ARGV[2]. A job whose hash is gone (deleted, expired) only leaves the
-- outbox: nothing is written to a missing hash, which would bring it back without its TTL.
-- KEYS[1]  the job's status hash
-- KEYS[2]  the webhook outbox
-- ARGV[1]  the job id
-- ARGV[2]  when the next attempt is due (epoch seconds), or '' when there is none
-- ARGV[3]…  field/value pairs of the delivery record (workers/protocol/webhooks.py FIELDS)
-- Returns 1 recorded, 0 the job is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
if ARGV[2] == '' then
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[2], 'XX', ARGV[2], ARGV[1])
end
return 1
