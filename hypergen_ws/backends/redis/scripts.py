"""The Lua scripts hypergen_ws runs in Redis, each one atomic step (docs/history.rst, docs/presence.rst,
docs/security.rst)."""
from ...core.protocol import REDACTED

# History (hypergen_ws.redis_store). A stream entry cannot be changed in place: REWRITE rebuilds the stream with
# the changed entries (same ids, times and order, TTL kept) when any entry matched. ``change`` maps a tag or an
# entry id to the new text ('' redacts the entry, which then loses its tag). Returns how many entries changed.
REWRITE = """
local function rewrite(key, change, by_id)
  local kept, changed = {}, 0
  for _, entry in ipairs(redis.call('XRANGE', key, '-', '+')) do
    local fields = {}
    for i = 1, #entry[2], 2 do fields[entry[2][i]] = entry[2][i + 1] end
    local new = change[by_id and entry[1] or (fields['g'] or false)]
    if new ~= nil then
      changed = changed + 1
      if new == '' then fields['t'] = '%s'; fields['g'] = nil else fields['t'] = new end
    end
    kept[#kept + 1] = {entry[1], fields}
  end
  if changed > 0 then
    local ttl = redis.call('PTTL', key)
    redis.call('DEL', key)
    for _, entry in ipairs(kept) do
      local fields = entry[2]
      if fields['g'] then
        redis.call('XADD', key, entry[1], 't', fields['t'], 'ts', fields['ts'], 'g', fields['g'])
      else
        redis.call('XADD', key, entry[1], 't', fields['t'], 'ts', fields['ts'])
      end
    end
    if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
  end
  return changed
end
""" % REDACTED.replace("'", "\\'")

# KEYS: <p>:seq:<group>, <p>:hist:<group>. ARGV: epoch candidate, frame, time (ms), max entries, history TTL
# (ms), sequence TTL (ms), the frame's tag ('' for none), then tag, text pairs of the entries it rewrites ('' to
# redact them). Returns {seq, epoch}.
APPEND = REWRITE + """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
if #ARGV > 7 then
  local change = {}
  for i = 8, #ARGV, 2 do change[ARGV[i]] = ARGV[i + 1] end
  rewrite(KEYS[2], change, false)
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
if ARGV[7] ~= '' then
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], seq .. '-0', 't', ARGV[2], 'ts', ARGV[3], 'g', ARGV[7])
else
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], seq .. '-0', 't', ARGV[2], 'ts', ARGV[3])
end
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return {seq, epoch}
"""

# KEYS: <p>:hist:<group>. ARGV: the entry id ("<seq>-0"). Returns 1 when the entry was kept (and is now redacted).
REDACT = REWRITE + """
local change = {}
change[ARGV[1]] = ''
return rewrite(KEYS[1], change, true)
"""

# ARGV: epoch candidate, first stream id to return ('' for none), TTL (ms) of a record nothing was published to.
# Returns {epoch, seq, entries}. A record made by a read has seq 0 and a short TTL (EMPTY_RECORD_TTL), which
# KEEP extends while processes have members in the group and APPEND replaces with the sequence TTL.
READ = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
elseif redis.call('HGET', KEYS[1], 'seq') == '0' and redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local entries = {}
if ARGV[2] ~= '' then
  entries = redis.call('XRANGE', KEYS[2], ARGV[2], '+')
end
return {epoch, seq, entries}
"""

# KEYS: <p>:seq:<group> of groups with members. ARGV: TTL (ms). Records nothing was published to live on.
KEEP = """
for _, key in ipairs(KEYS) do
  if redis.call('HGET', key, 'seq') == '0' and redis.call('PTTL', key) < tonumber(ARGV[1]) then
    redis.call('PEXPIRE', key, ARGV[1])
  end
end
return 1
"""

# Presence (hypergen_ws.presence). KEYS: <p>:presence:<group>, <p>:pcount:<group>, <p>:pgroups:<process>.
# ARGV: field, entry, user key, increment, group. Returns the user's sockets across processes.
JOIN = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[5])
return redis.call('HINCRBY', KEYS[2], ARGV[3], ARGV[4])
"""

# ARGV: field, entry ('' to remove it), user key, group, '1' when the process has no entry left in the group.
LEAVE = """
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
if ARGV[5] == '1' then redis.call('SREM', KEYS[3], ARGV[4]) end
local n = redis.call('HINCRBY', KEYS[2], ARGV[3], -1)
if n <= 0 then redis.call('HDEL', KEYS[2], ARGV[3]) end
return n
"""

# ARGV: "|<process>", group, then field, entry pairs: replaces the process's fields, recounts every user.
REASSERT = """
local suffix = ARGV[1]
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, -string.len(suffix)) == suffix then redis.call('HDEL', KEYS[1], field) end
end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('DEL', KEYS[2])
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local user = string.match(all[i], '^(.*)|[^|]*$')
  redis.call('HINCRBY', KEYS[2], user, cjson.decode(all[i + 1])['count'])
end
return 1
"""

# KEYS: <p>:presence:<group>, <p>:pcount:<group>. ARGV: "|<process>". Removes a dead process's fields and
# returns the entries of users left without a socket.
SWEEP = """
local suffix = ARGV[1]
local left = {}
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, -string.len(suffix)) == suffix then
    local info = redis.call('HGET', KEYS[1], field)
    redis.call('HDEL', KEYS[1], field)
    local user = string.sub(field, 1, string.len(field) - string.len(suffix))
    local n = redis.call('HINCRBY', KEYS[2], user, -cjson.decode(info)['count'])
    if n <= 0 then
      redis.call('HDEL', KEYS[2], user)
      table.insert(left, info)
    end
  end
end
return left
"""

# Sockets per user across processes (hypergen_ws.features.connlimit). KEYS: <p>:uconn:<user>, <p>:puser:<process>,
# <p>:procs. ARGV: process id, limit, TTL (ms), user key, now (s). Fields of processes whose heartbeat ran out (or
# that were swept) do not count; this process's own field always does. Returns {1 admitted | 0 refused, total}.
CONN_ADMIT = """
local total = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local owner = all[i]
  if owner == ARGV[1] then
    total = total + tonumber(all[i + 1])
  else
    local expires = redis.call('ZSCORE', KEYS[3], owner)
    if expires and tonumber(expires) >= tonumber(ARGV[5]) then total = total + tonumber(all[i + 1]) end
  end
end
if total >= tonumber(ARGV[2]) then return {0, total} end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {1, total + 1}
"""

# KEYS: <p>:uconn:<user>, <p>:puser:<process>. ARGV: process id, user key. Returns the process's sockets left.
CONN_RELEASE = """
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if n <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[2], ARGV[2])
end
return n
"""

# KEYS: <p>:puser:<process>. ARGV: process id, TTL (ms), "<p>:uconn:", then user key, count pairs: replaces
# every field of the process with these counts (after Redis lost them, a failed write, or to renew the TTLs).
CONN_REASSERT = """
local want = {}
for i = 4, #ARGV, 2 do want[ARGV[i]] = ARGV[i + 1] end
for _, user in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if not want[user] then redis.call('HDEL', ARGV[3] .. user, ARGV[1]) end
end
redis.call('DEL', KEYS[1])
for user, count in pairs(want) do
  redis.call('HSET', ARGV[3] .. user, ARGV[1], count)
  redis.call('PEXPIRE', ARGV[3] .. user, ARGV[2])
  redis.call('SADD', KEYS[1], user)
end
if next(want) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
"""

# KEYS: <p>:puser:<process>. ARGV: process id, "<p>:uconn:". Removes a dead process's fields.
CONN_SWEEP = """
for _, user in ipairs(redis.call('SMEMBERS', KEYS[1])) do redis.call('HDEL', ARGV[2] .. user, ARGV[1]) end
redis.call('DEL', KEYS[1])
return 1
"""
