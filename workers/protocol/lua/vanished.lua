-- Count a job that vanished (its status hash gone before its TTL could have run out) once, whichever node sees it
-- first: the id leaves the recent list and the counter goes up only for the call whose LREM removed it.
-- KEYS[1]  the job's status hash
-- KEYS[2]  the recent-jobs list
-- KEYS[3]  the stats hash
-- ARGV[1]  the job id
-- ARGV[2]  the stats field to bump
-- Returns 1 when counted here, 0 when the hash is back or another node already counted it.
if redis.call('HGET', KEYS[1], 'state') then return 0 end
if redis.call('LREM', KEYS[2], 0, ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
return 1
