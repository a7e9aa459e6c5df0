-- Admit the names (remote domains, SMTP AUTH users) of one day and direction to their counted
-- set, atomically, so that concurrent folds never take it past its limit: a name already
-- known is admitted, a new one only while the set holds fewer than the limit. With each name
-- its extras (remote hosts, client IPs) are admitted the same way, up to a number per name.
-- Admitting is idempotent: a fold made again after a crash admits what it admitted before.
-- KEYS[1] the names hash: name -> its admitted extras, joined by \x1f
-- ARGV[1] limit of names   ARGV[2] limit of extras per name
-- ARGV[3] the hash's lifetime in ms (a duration from the service's clock)
-- ARGV[4..] pairs: name, its extras in this fold joined by \x1f (may be empty)
-- Returns per name: '0' not admitted, or '1' followed by its admitted extras joined by \x1f.
-- Work is bounded by the caller's chunk of names times the extras limit.
local names, limit, per_name = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local size = redis.call('HLEN', names)
local out = {}
for i = 4, #ARGV, 2 do
  local name, wanted = ARGV[i], ARGV[i + 1]
  local known = redis.call('HGET', names, name)
  local changed = false
  if not known and size < limit then
    known, changed, size = '', true, size + 1
  end
  if not known then
    out[#out + 1] = '0'
  else
    local have, count = {}, 0
    for extra in string.gmatch(known, '[^\031]+') do
      have[extra] = true
      count = count + 1
    end
    local admitted = {}
    for extra in string.gmatch(wanted, '[^\031]+') do
      if have[extra] then
        admitted[#admitted + 1] = extra
      elseif count < per_name then
        have[extra], count, changed = true, count + 1, true
        known = (known == '') and extra or (known .. '\031' .. extra)
        admitted[#admitted + 1] = extra
      end
    end
    if changed then
      redis.call('HSET', names, name, known)
    end
    out[#out + 1] = '1' .. table.concat(admitted, '\031')
  end
end
if size > 0 then
  redis.call('PEXPIRE', names, ARGV[3])
end
return out
