//! The Lua scripts of the Redis backend. Each ledger operation is one script, so Redis runs its
//! read-check-write atomically (no other command interleaves). Times come from the server's
//! `TIME`, so clients on different machines agree on lease expiry.
//!
//! Keys (the variable part always last, so no two kinds can collide):
//! `hybrid:ledger:nodes` (set of node ids), `hybrid:ledger:cap:<node>` (hash of capacity),
//! `hybrid:ledger:rsvs:<node>` (set of reservation ids), `hybrid:ledger:rsv:<id>` (hash: node,
//! holder, state, the five amounts, created_ms, expires_ms; pending ones carry a key TTL of
//! lease + grace, removed on commit), `hybrid:ledger:holder:<holder>` (set of reservation ids).
//! Sets are cleaned lazily when a member's hash has expired.
//!
//! Scripts return arrays whose first element is a status word; a reservation row is
//! `{id, node, holder, state, cpu_millis, memory_mb, storage_gb, gpu, network_mbps, created_ms,
//! expires_ms}` (expires_ms is "0" once committed).

const PRELUDE: &str = r#"
local P = 'hybrid:ledger:'
local F = {'cpu_millis', 'memory_mb', 'storage_gb', 'gpu', 'network_mbps'}
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function get(id)
  local flat = redis.call('HGETALL', P .. 'rsv:' .. id)
  if #flat == 0 then return nil end
  local h = {}
  for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
  h.id = id
  return h
end
local function row(h)
  return {h.id, h.node, h.holder, h.state, h.cpu_millis, h.memory_mb, h.storage_gb, h.gpu,
          h.network_mbps, h.created_ms, h.expires_ms}
end
local function load(node, now)
  local set = P .. 'rsvs:' .. node
  local ids = redis.call('SMEMBERS', set)
  table.sort(ids)
  local out = {}
  for _, id in ipairs(ids) do
    local h = get(id)
    if h == nil then
      redis.call('SREM', set, id)
    elseif h.state == 'committed' or tonumber(h.expires_ms) > now then
      table.insert(out, h)
    end
  end
  return out
end
local function rows(list)
  local out = {}
  for i, h in ipairs(list) do out[i] = row(h) end
  return out
end
local function capacity(node)
  local c = redis.call('HMGET', P .. 'cap:' .. node, unpack(F))
  if not c[1] then return nil end
  return c
end
local function used(list, i)
  local total = 0
  for _, h in ipairs(list) do total = total + tonumber(h[F[i]]) end
  return total
end
"#;

/// ARGV: node, holder, 5 amounts, lease_ms, new id, grace_ms.
const RESERVE: &str = r#"
local node, holder = ARGV[1], ARGV[2]
local lease, id, grace = tonumber(ARGV[8]), ARGV[9], tonumber(ARGV[10])
local cap = capacity(node)
if not cap then return {'unknown_node'} end
local now = now_ms()
local list = load(node, now)
for _, h in ipairs(list) do
  if h.holder == holder then
    for i, f in ipairs(F) do
      if tonumber(h[f]) ~= tonumber(ARGV[2 + i]) then return {'conflict', row(h)} end
    end
    return {'ok', row(h)}
  end
end
for i = 1, 5 do
  if used(list, i) + tonumber(ARGV[2 + i]) > tonumber(cap[i]) then
    return {'full', cap, rows(list)}
  end
end
local key = P .. 'rsv:' .. id
local h = {id = id, node = node, holder = holder, state = 'pending',
  cpu_millis = ARGV[3], memory_mb = ARGV[4], storage_gb = ARGV[5], gpu = ARGV[6],
  network_mbps = ARGV[7], created_ms = string.format('%d', now),
  expires_ms = string.format('%d', now + lease)}
redis.call('HSET', key, 'node', h.node, 'holder', h.holder, 'state', h.state,
  'cpu_millis', h.cpu_millis, 'memory_mb', h.memory_mb, 'storage_gb', h.storage_gb,
  'gpu', h.gpu, 'network_mbps', h.network_mbps, 'created_ms', h.created_ms,
  'expires_ms', h.expires_ms)
redis.call('PEXPIRE', key, lease + grace)
redis.call('SADD', P .. 'rsvs:' .. node, id)
redis.call('SADD', P .. 'holder:' .. holder, id)
return {'ok', row(h)}
"#;

/// ARGV: id.
const COMMIT: &str = r#"
local h = get(ARGV[1])
if h == nil then return {'not_found'} end
if h.state == 'committed' then return {'ok', row(h)} end
if tonumber(h.expires_ms) <= now_ms() then return {'expired', row(h)} end
local key = P .. 'rsv:' .. h.id
redis.call('HSET', key, 'state', 'committed', 'expires_ms', '0')
redis.call('PERSIST', key)
h.state = 'committed'
h.expires_ms = '0'
return {'ok', row(h)}
"#;

/// ARGV: id. Returns 1 if it existed.
const RELEASE: &str = r#"
local h = get(ARGV[1])
if h == nil then return 0 end
redis.call('DEL', P .. 'rsv:' .. h.id)
redis.call('SREM', P .. 'rsvs:' .. h.node, h.id)
redis.call('SREM', P .. 'holder:' .. h.holder, h.id)
return 1
"#;

/// ARGV: holder. Returns how many reservations existed.
const RELEASE_HOLDER: &str = r#"
local holder = ARGV[1]
local hk = P .. 'holder:' .. holder
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', hk)) do
  local h = get(id)
  if h ~= nil and h.holder == holder then
    redis.call('DEL', P .. 'rsv:' .. id)
    redis.call('SREM', P .. 'rsvs:' .. h.node, id)
    n = n + 1
  end
end
redis.call('DEL', hk)
return n
"#;

/// ARGV: node, or '' for every node. Returns rows.
const LIST: &str = r#"
local now = now_ms()
local nodes
if ARGV[1] == '' then
  nodes = redis.call('SMEMBERS', P .. 'nodes')
  table.sort(nodes)
else
  nodes = {ARGV[1]}
end
local out = {}
for _, n in ipairs(nodes) do
  for _, h in ipairs(load(n, now)) do table.insert(out, row(h)) end
end
return out
"#;

/// ARGV: node.
const USAGE: &str = r#"
local cap = capacity(ARGV[1])
if not cap then return {'unknown_node'} end
return {'ok', cap, rows(load(ARGV[1], now_ms()))}
"#;

/// ARGV: node, 5 capacities, force ('1' or '0').
const SET_CAPACITY: &str = r#"
local node = ARGV[1]
local list = load(node, now_ms())
if ARGV[7] ~= '1' then
  for i = 1, 5 do
    if used(list, i) > tonumber(ARGV[1 + i]) then return {'below', rows(list)} end
  end
end
redis.call('HSET', P .. 'cap:' .. node, 'cpu_millis', ARGV[2], 'memory_mb', ARGV[3],
  'storage_gb', ARGV[4], 'gpu', ARGV[5], 'network_mbps', ARGV[6])
redis.call('SADD', P .. 'nodes', node)
return {'ok', rows(list)}
"#;

/// ARGV: node.
const REMOVE_NODE: &str = r#"
local node = ARGV[1]
if redis.call('EXISTS', P .. 'cap:' .. node) == 0 then return {'absent'} end
local list = load(node, now_ms())
if #list > 0 then return {'in_use', rows(list)} end
local set = P .. 'rsvs:' .. node
for _, id in ipairs(redis.call('SMEMBERS', set)) do
  local h = get(id)
  if h ~= nil then
    redis.call('DEL', P .. 'rsv:' .. id)
    redis.call('SREM', P .. 'holder:' .. h.holder, id)
  end
end
redis.call('DEL', set, P .. 'cap:' .. node)
redis.call('SREM', P .. 'nodes', node)
return {'removed'}
"#;

/// The compiled scripts (EVALSHA, falling back to EVAL after a server restart).
pub(crate) struct Scripts {
    pub reserve: redis::Script,
    pub commit: redis::Script,
    pub release: redis::Script,
    pub release_holder: redis::Script,
    pub list: redis::Script,
    pub usage: redis::Script,
    pub set_capacity: redis::Script,
    pub remove_node: redis::Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        let s = |body: &str| redis::Script::new(&format!("{PRELUDE}\n{body}"));
        Scripts {
            reserve: s(RESERVE),
            commit: s(COMMIT),
            release: s(RELEASE),
            release_holder: s(RELEASE_HOLDER),
            list: s(LIST),
            usage: s(USAGE),
            set_capacity: s(SET_CAPACITY),
            remove_node: s(REMOVE_NODE),
        }
    }
}
