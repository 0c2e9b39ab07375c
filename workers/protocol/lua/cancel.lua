-- Cancel a job (the web: POST /api/mosaics/<id>/cancel, and DELETE before it forgets a job; runs after note.lua).
-- A queued job gets its `canceled` completion note at once (note(): TTL, expires_at, recent list, counters), so
-- the keeper does not admit it (lua/admit.lua) and a worker that takes its entry finds it final and acknowledges
-- it (lua/start.lua). A running job is marked `cancel_requested`: its worker reads that in the reply to its next
-- progress write (lua/update.lua) or at a stage boundary, stops, and writes the `canceled` note itself.
-- KEYS[1..5]  as finish.lua, but KEYS[3] is not used (the web acknowledges no entry): pass the job's hash again;
--             KEYS[6] the webhook outbox (note.lua)
-- ARGV[1..8]  as finish.lua (the entry id '', no build-time bucket)
-- ARGV[9]…    the note's field/value pairs, the state (canceled) first
-- Returns false for an unknown job, else {outcome, state}: outcome 1 canceled now (it was queued), 2 a stop asked
-- of its worker (state 'running'), 0 already final (state as it is: done, failed or canceled).
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return false end
if final(state) then return {0, state} end
if state == 'queued' then
  note(9, KEYS[6])
  return {1, 'canceled'}
end
redis.call('HSET', KEYS[1], 'cancel_requested', '1')
return {2, state}
