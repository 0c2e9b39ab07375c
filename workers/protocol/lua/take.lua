-- Take one new entry from the jobs stream and start its delivery, in one round trip (runs after start.lua;
-- no BLOCK inside a script, so it returns at once when there is nothing).
-- KEYS[1]  the jobs stream
-- ARGV[1]  the consumer group
-- ARGV[2]  the consumer (worker) name
-- ARGV[3]  the status-hash prefix (Keys.job_prefix); the entry's job id is appended to it
-- ARGV[4]  now (epoch seconds)
-- Returns false when there is nothing, else {entry id, fields, deliveries as start() returns them,
-- or -2 when the entry names no job id}.
local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 1, 'STREAMS', KEYS[1], '>')
if not reply then return false end
local entry = reply[1][2][1]
local job
for i = 1, #entry[2], 2 do if entry[2][i] == 'id' then job = entry[2][i + 1] end end
if not job then return {entry[1], entry[2], -2} end
return {entry[1], entry[2], start(ARGV[3] .. job, ARGV[4], ARGV[2])}
