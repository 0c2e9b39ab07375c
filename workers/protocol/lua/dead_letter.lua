-- Dead-letter one delivery in one script (runs after note.lua): the package goes to the dead-letter stream with
-- its last error, the entry is acknowledged (the keeper trims it), and the job gets its failed completion note (the same
-- fields, counters, recent list and TTL as FINISH). Nothing can come between them: no kill, outage or lost AOF
-- tail leaves the job `running` without its entry. Run again after a lost reply, it adds no second letter (the
-- entry is no longer pending) and no second note.
-- KEYS[1]  the job's status hash
-- KEYS[2]  the recent-jobs list
-- KEYS[3]  the jobs stream
-- KEYS[4]  the stats hash
-- KEYS[5]  this minute's stats hash
-- KEYS[6]  the dead-letter stream
-- KEYS[7]  the webhook outbox (note.lua)
-- ARGV[1..8]  as finish.lua: status TTL, recent length, job id, consumer group, the entry id, '' (no build-time
--             bucket), 0, TTL of the minute's stats hash
-- ARGV[9]     n: how many letter field/value items follow
-- ARGV[10..9+n]  the letter's field/value pairs
-- ARGV[10+n]…    the note's field/value pairs, the state first
-- Returns {letter id or false, the note as note() returns it}.
local n = tonumber(ARGV[9])
local letter = false
if redis.call('XACK', KEYS[3], ARGV[4], ARGV[5]) == 1 then
  letter = redis.call('XADD', KEYS[6], '*', unpack(ARGV, 10, 9 + n))
end
return {letter, note(10 + n, KEYS[7])}
