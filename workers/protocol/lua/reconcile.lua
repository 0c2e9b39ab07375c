-- The reconciler's check-and-act on one job it found stuck (runs after note.lua): only if the job is exactly as the
-- reconciler read it (state, deliveries, started_at, requeued_at unchanged), either put it back in the queue (its
-- id on the inbox, from which the keeper adds its stored package to the stream: lua/admit.lua; its delivery count
-- kept, so a job lost again and again still reaches max_deliveries) or fail it with a reason (the note FINISH writes). Two reconcilers acting on one job at once: the first changes
-- requeued_at or the state, the second finds the job changed and does nothing.
-- KEYS[1..5]  as finish.lua, but KEYS[3] the inbox: the job's status hash, the recent list, the inbox, the stats,
--             this minute's stats; KEYS[6] the webhook outbox (note.lua)
-- ARGV[1..8]  as finish.lua (the entry id '', no build-time bucket)
-- ARGV[9]     the token the reconciler read: state|deliveries|started_at|requeued_at
-- ARGV[10]    'requeue' or 'fail'
-- ARGV[11]    now (epoch seconds), written as requeued_at
-- ARGV[12]    requeue: the stage shown while queued again
-- ARGV[13]…   fail: the note's field/value pairs, the state first
-- Returns false when the job changed meanwhile (nothing done); requeue: 1; fail: note()'s reply.
local f = redis.call('HMGET', KEYS[1], 'state', 'deliveries', 'started_at', 'requeued_at')
local token = (f[1] or '') .. '|' .. (f[2] or '') .. '|' .. (f[3] or '') .. '|' .. (f[4] or '')
if token ~= ARGV[9] or (f[1] ~= 'queued' and f[1] ~= 'running') then return false end
if ARGV[10] == 'fail' then return note(13, KEYS[6]) end
local package = redis.call('HGET', KEYS[1], 'package')
if not package or package == '' then return false end
redis.call('LPUSH', KEYS[3], ARGV[3])
redis.call('HSET', KEYS[1], 'state', 'queued', 'stage', ARGV[12], 'progress', 0, 'requeued_at', ARGV[11])
return 1
