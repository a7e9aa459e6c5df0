-- Admit the names (remote domains, SMTP AUTH users) of some days and directions to their
-- counted sets, atomically, so that concurrent folds never take a set past its limit: a name
-- already known is admitted, a new one only while the set holds fewer than the limit. With
-- each name its extras (remote hosts, client IPs) are admitted the same way, up to a number
-- per name. Admitting is idempotent: a fold made again after a crash admits what it admitted
-- before. One call serves every set a fold needs (one round trip, not one per set).
-- KEYS[g]  the names hash of set g: name -> its admitted extras, joined by \x1f
-- ARGV[1] limit of extras per name; then for each set g, four arguments from 4g - 2:
--   its limit of names; the hash's lifetime in ms (a duration from the service's clock);
--   the names, one per line; their extras in this fold, one line per name, each extra once,
--   joined by \x1f (may be empty). Packed, not an argument each: at thousands of names a
--   call, parsing arguments and replies cost more than the admission itself.
-- Returns per set one string, one line per name: '0' not admitted, '=' admitted with all the
-- extras sent (the usual answer, short to send and read), or '1' followed by its admitted
-- extras joined by \x1f. Work is bounded by the caller's names per call times the
-- extras limit.
local per_name = tonumber(ARGV[1])

local function extras_in(joined)
  if joined == '' then
    return 0
  end
  local _, separators = string.gsub(joined, '\031', '')
  return separators + 1
end

local function admit(names, limit, lifetime, asked_text, wanted_text)
  local asked, wanted = {}, {}
  for name in string.gmatch(asked_text, '([^\n]*)\n') do asked[#asked + 1] = name end
  for extras in string.gmatch(wanted_text, '([^\n]*)\n') do wanted[#wanted + 1] = extras end
  local size = redis.call('HLEN', names)
  local known = redis.call('HMGET', names, unpack(asked))
  local out, writes = {}, {}
  for i, name in ipairs(asked) do
    local have_text = known[i]
    local changed = false
    if not have_text and size < limit then
      have_text, changed, size = '', true, size + 1
    end
    local want = wanted[i]
    if not have_text then
      out[i] = '0'
    elseif have_text == want or (have_text == '' and extras_in(want) <= per_name) then
      -- The usual answers, with no set of extras to build: a name whose extras are the ones
      -- it holds, or a name with none yet (new, or seen without) that takes all it is sent.
      if changed or have_text ~= want then
        writes[#writes + 1] = name
        writes[#writes + 1] = want
      end
      out[i] = '='
    else
      local have, count = {}, 0
      for extra in string.gmatch(have_text, '[^\031]+') do
        have[extra] = true
        count = count + 1
      end
      local admitted = {}
      for extra in string.gmatch(want, '[^\031]+') do
        if have[extra] then
          admitted[#admitted + 1] = extra
        elseif count < per_name then
          have[extra], count, changed = true, count + 1, true
          have_text = (have_text == '') and extra or (have_text .. '\031' .. extra)
          admitted[#admitted + 1] = extra
        end
      end
      if changed then
        writes[#writes + 1] = name
        writes[#writes + 1] = have_text
      end
      out[i] = '1' .. table.concat(admitted, '\031')
    end
  end
  -- In pieces: unpack takes at most ~8,000 values, and a call admits up to 4,000 names.
  for at = 1, #writes, 2000 do
    redis.call('HSET', names, unpack(writes, at, math.min(at + 1999, #writes)))
  end
  if size > 0 then
    redis.call('PEXPIRE', names, lifetime)
  end
  return table.concat(out, '\n')
end

local replies = {}
for g = 1, #KEYS do
  local at = 4 * g - 2
  replies[g] = admit(KEYS[g], tonumber(ARGV[at]), ARGV[at + 1], ARGV[at + 2], ARGV[at + 3])
end
return replies
