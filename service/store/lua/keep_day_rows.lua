-- Keep a day's built rows (store/day_rows.py) while the stamp they were built at still holds,
-- for as long as the day's counters are kept (their time to live, read here: no drift; a day
-- with blocked counters only: theirs), or ARGV[4] ms when the day has neither.
-- KEYS[1] meta hash   KEYS[2] day version string   KEYS[3] day blocked version string
-- KEYS[4] kept rows hash   KEYS[5] counters   KEYS[6] blocked counters
-- ARGV[1] stamp   ARGV[2] rows   ARGV[3] messages   ARGV[4] life of a day without counters
-- ARGV[5] the digest of the rows and messages (read_day_rows.lua: not sent to who holds it)
-- Returns 1 when kept, 0 when the day or the definitions changed since (nothing kept).
local token = redis.call('HGET', KEYS[1], 'definitions_token') or ''
local holds = (redis.call('GET', KEYS[2]) or '0') .. ':' ..
              (redis.call('GET', KEYS[3]) or '0') .. ':' .. token
if holds ~= ARGV[1] then return 0 end
local life = redis.call('PTTL', KEYS[5])
if life == -1 or life == -2 then
  life = redis.call('PTTL', KEYS[6])
end
if life == -1 or life == -2 then
  life = tonumber(ARGV[4])
else
  -- Less a second: within a script Redis may count PTTL and PEXPIRE from clocks read a few
  -- ms apart (measured: up to 3 ms later for PEXPIRE); rows that go a second before their
  -- counters are only built again if asked for.
  life = life - 1000
  if life <= 0 then return 0 end
end
redis.call('HSET', KEYS[4], 'stamp', ARGV[1], 'rows', ARGV[2], 'messages', ARGV[3],
           'digest', ARGV[5] or '')
redis.call('PEXPIRE', KEYS[4], life)
return 1
