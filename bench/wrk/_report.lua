-- Shared by telegram.lua and wechat.lua: collects each thread's counters and prints one JSON
-- line ("WRK {...}") that bench/channels_throughput.py parses. Latencies are microseconds.
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local passive, success, other = 0, 0, 0
  for _, t in ipairs(threads) do
    passive = passive + (t:get("passive") or 0)
    success = success + (t:get("success") or 0)
    other = other + (t:get("other") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"passive":%d,"success":%d,"other":%d,"wrapped":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout, passive, success, other,
    (threads[1] and threads[1]:get("wrapped")) or 0))
end
