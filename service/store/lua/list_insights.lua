-- One page of the insight feed, read atomically: insights in order of their latest
-- transition's sequence number, after a given sequence, optionally of one state and updated
-- after a given time.
-- KEYS[1] insights (id -> JSON)  KEYS[2] feed (zset id -> sequence)
-- KEYS[3] active feed (zset: active ids only, scored as in the feed)
-- KEYS[4] last evaluation (hash; its 'active_indexed' says the active feed is complete)
-- ARGV[1] exclusive lower sequence   ARGV[2] limit   ARGV[3] state ('' for all)
-- ARGV[4] updated after, epoch ms ('' for any)   ARGV[5] most entries looked at in this call
-- Returns {last sequence scanned, more (0/1), JSON...}. A call that looked at its most entries
-- stops there with more = 1, even with fewer than limit insights: the next call goes on from
-- the sequence returned, so no filter makes one call read the whole feed.
local after, limit, state = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local since = tonumber(ARGV[4] ~= '' and ARGV[4] or '-1')
local budget = tonumber(ARGV[5])
local source = KEYS[2]
if state == 'active' and redis.call('HGET', KEYS[4], 'active_indexed') == '1' then
  source = KEYS[3]
end
local docs = {}
local cursor = after
local chunk = 200
while true do
  local ids = redis.call('ZRANGE', source, '(' .. cursor, '+inf', 'BYSCORE', 'LIMIT', 0, chunk,
    'WITHSCORES')
  if #ids == 0 then
    return {cursor, 0, unpack(docs)}
  end
  for j = 1, #ids, 2 do
    if budget == 0 then
      return {cursor, 1, unpack(docs)}
    end
    budget = budget - 1
    local raw = redis.call('HGET', KEYS[1], ids[j])
    local doc = cjson.decode(raw)
    if (state == '' or doc['state'] == state) and doc['updated_at_ms'] > since then
      if #docs == limit then
        return {cursor, 1, unpack(docs)}
      end
      docs[#docs + 1] = raw
    end
    cursor = tonumber(ids[j + 1])
  end
end
