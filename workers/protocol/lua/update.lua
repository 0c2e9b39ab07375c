-- Write progress fields only while the job is not final, so a late update cannot undo a completion note (runs
-- after note.lua, for final()). The reply also tells a running job's worker whether to stop, with no round trip
-- of its own: a cancel was asked for (lua/cancel.lua), or the job is final or gone (deleted).
-- KEYS[1]  the job's status hash
-- ARGV     field/value pairs
-- Returns 1 when written, 2 when written and a cancel was asked for, 0 when the job is unknown or final.
local state = redis.call('HGET', KEYS[1], 'state')
if not state or final(state) then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
if redis.call('HGET', KEYS[1], 'cancel_requested') then return 2 end
return 1
