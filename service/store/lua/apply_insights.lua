-- Turn one evaluation (the conditions that hold now) into insight transitions, in calls of
-- bounded size: one 'held' call per chunk of findings, then one 'close' call.
-- A holding condition without an open insight opens a new one (new id, active); a holding
-- one with an open insight refreshes its measurement (not a transition); an open insight whose
-- condition no longer holds is resolved (by 'close'). Each transition takes the next number
-- of the tenant's change sequence and moves the insight to that score in the feed, so a poller
-- reading the feed by score sees every transition once, in order, even many in one millisecond.
-- An evaluation is ordered by (data version, time). Between the calls of one, another may run:
-- the 'held' hash remembers the newest evaluation that found each open condition holding, so an
-- older evaluation never resolves what a newer one found, nor overwrites its measurement.
-- KEYS[1] insights (id -> JSON)  KEYS[2] open (condition -> id)  KEYS[3] feed (zset)
-- KEYS[4] active ids (set)  KEYS[5] sequence counter  KEYS[6] last evaluation (hash)
-- KEYS[7] active feed (zset: the active ids only, scored as in the feed)
-- KEYS[8] resolved ids (zset id -> epoch ms of the resolution), what retention reads
-- KEYS[9] held (hash condition -> "version ms" of the newest evaluation finding it holding)
-- KEYS[10] webhook subscriptions (hash)  KEYS[11] webhook outbox (list): while the tenant has
--          subscriptions, every transition is appended to the outbox in this same step, so a
--          worker dying after the script cannot lose a notification (the notifier turns each
--          entry into one delivery per matching subscription; see webhooks_store.fan_out)
-- ARGV[1] now (RFC 3339)  ARGV[2] now (epoch ms)  ARGV[3] data version  ARGV[4] marker
-- ARGV[5] phase: 'held'  ARGV[6] number of findings, then per finding: condition, id if new,
--                        template JSON
--                'close' ARGV[6] number of conditions, then every condition the evaluation
--                        found holding
-- ARGV[last - 1] resolved insights last changed before this epoch ms are forgotten (retention)
-- ARGV[last] the invalidation channel: API processes keep the feed's first page, and drop it
--            when told that the insights changed
-- Returns the number of transitions, or -1 when a newer evaluation already happened.
local all, open, feed, active, seq, evaluated = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local active_feed, resolved, held_by = KEYS[7], KEYS[8], KEYS[9]
local now, now_ms, version = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local notify = redis.call('HLEN', KEYS[10]) > 0
local function to_outbox(event, condition, doc)
  if notify then
    redis.call('RPUSH', KEYS[11], cjson.encode({event = event, condition = condition,
      sequence = doc['sequence'], at_ms = now_ms, insight = doc}))
  end
end
local last = tonumber(redis.call('HGET', evaluated, 'version') or '-1')
local last_ms = tonumber(redis.call('HGET', evaluated, 'at_ms') or '-1')
if last > version or (last == version and last_ms > now_ms) then
  return -1
end

-- Whether the newest evaluation that found ``condition`` holding is newer than this one.
local function held_by_newer(condition)
  local mark = redis.call('HGET', held_by, condition)
  if not mark then return false end
  local v, ms = string.match(mark, '^(%d+) (%d+)$')
  v, ms = tonumber(v), tonumber(ms)
  return v > version or (v == version and ms > now_ms)
end

local transitions = 0
if ARGV[5] == 'held' then
  local pos = 7
  for _ = 1, tonumber(ARGV[6]) do
    local condition, new_id, template = ARGV[pos], ARGV[pos + 1], cjson.decode(ARGV[pos + 2])
    pos = pos + 3
    if not held_by_newer(condition) then
      redis.call('HSET', held_by, condition, version .. ' ' .. now_ms)
      local id = redis.call('HGET', open, condition)
      if id then
        local doc = cjson.decode(redis.call('HGET', all, id))
        for _, name in ipairs({'measured', 'window', 'threshold', 'connector'}) do
          doc[name] = template[name]
        end
        doc['last_detected_at'] = now
        redis.call('HSET', all, id, cjson.encode(doc))
      else
        local n = redis.call('INCR', seq)
        template['id'] = new_id
        template['state'] = 'active'
        template['first_detected_at'] = now
        template['last_detected_at'] = now
        template['resolved_at'] = cjson.null
        template['updated_at'] = now
        template['updated_at_ms'] = now_ms
        template['sequence'] = n
        redis.call('HSET', all, new_id, cjson.encode(template))
        redis.call('HSET', open, condition, new_id)
        redis.call('ZADD', feed, n, new_id)
        redis.call('SADD', active, new_id)
        redis.call('ZADD', active_feed, n, new_id)
        to_outbox('insight.detected', condition, template)
        transitions = transitions + 1
      end
    end
  end
  return transitions
end

-- Insights stored before the two indexes existed are indexed once: the active ones at once
-- (there are at most as many as conditions), the feed's resolved ones in bounded steps.
if redis.call('HGET', evaluated, 'indexed') ~= '1' then
  if redis.call('HGET', evaluated, 'active_indexed') ~= '1' then
    for _, id in ipairs(redis.call('SMEMBERS', active)) do
      local doc = cjson.decode(redis.call('HGET', all, id))
      redis.call('ZADD', active_feed, doc['sequence'], id)
    end
    redis.call('HSET', evaluated, 'active_indexed', '1', 'index_from', '0')
  end
  local from = redis.call('HGET', evaluated, 'index_from') or '0'
  local step = redis.call('ZRANGE', feed, '(' .. from, '+inf', 'BYSCORE', 'LIMIT', 0, 500,
    'WITHSCORES')
  for j = 1, #step, 2 do
    local doc = cjson.decode(redis.call('HGET', all, step[j]))
    if doc['state'] == 'resolved' then
      redis.call('ZADD', resolved, doc['updated_at_ms'], step[j])
    end
    from = step[j + 1]
  end
  if #step < 1000 then
    redis.call('HSET', evaluated, 'indexed', '1')
  else
    redis.call('HSET', evaluated, 'index_from', from)
  end
end
local held = {}
for i = 7, 6 + tonumber(ARGV[6]) do
  held[ARGV[i]] = true
end
local opened = redis.call('HGETALL', open)
for j = 1, #opened, 2 do
  local condition, id = opened[j], opened[j + 1]
  if not held[condition] and not held_by_newer(condition) then
    local n = redis.call('INCR', seq)
    local doc = cjson.decode(redis.call('HGET', all, id))
    doc['state'] = 'resolved'
    doc['resolved_at'] = now
    doc['updated_at'] = now
    doc['updated_at_ms'] = now_ms
    doc['sequence'] = n
    redis.call('HSET', all, id, cjson.encode(doc))
    redis.call('HDEL', open, condition)
    redis.call('HDEL', held_by, condition)
    redis.call('ZADD', feed, n, id)
    redis.call('SREM', active, id)
    redis.call('ZREM', active_feed, id)
    redis.call('ZADD', resolved, now_ms, id)
    to_outbox('insight.resolved', condition, doc)
    transitions = transitions + 1
  end
end
-- Retention: forget resolved insights whose last transition is older than the cutoff, found by
-- their resolution time wherever they are in the feed, a bounded number per evaluation (each
-- evaluation frees more than a tenant can resolve in one).
local cutoff = tonumber(ARGV[#ARGV - 1])
local expired = redis.call('ZRANGE', resolved, '-inf', '(' .. cutoff, 'BYSCORE', 'LIMIT', 0, 500)
for _, id in ipairs(expired) do
  redis.call('HDEL', all, id)
  redis.call('ZREM', feed, id)
  redis.call('ZREM', resolved, id)
end
redis.call('HSET', evaluated, 'version', version, 'at_ms', now_ms, 'marker', ARGV[4])
-- Every evaluation may have changed a measurement, even without a transition: always tell.
redis.call('PUBLISH', ARGV[#ARGV], all)
return transitions
