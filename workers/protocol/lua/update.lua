-- Write progress fields only while the job is not final, so a late update cannot undo a completion note.
-- KEYS[1]  the job's status hash
-- ARGV     field/value pairs
-- Returns 1 when written, 0 when the job is unknown, done or failed.
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'done' or state == 'failed' then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
