-- wrk script for bench/http_bench.py: POST a workload profile as JSON, count what was sent, report as JSON.
--
-- Environment (set by http_bench.py; all optional):
--   BENCH_BODY          the JSON body (default: the worked example of service/api/openapi_docs.py)
--   BENCH_MAX_REQUESTS  stop after sending this many requests (0 or unset: run for -d only)
--   BENCH_VARY          1: every request another profile (peak_rps 150.000, 150.001, ... 249.999, then again), so
--                       that none is answered from the service's memo of recent profiles
--   BENCH_VARY_OFFSET   with BENCH_VARY: start this many profiles into that sequence (a server's earlier runs sent
--                       the ones before, so none is sent again while the memo could still hold it)
--
-- Run it with one thread (-t1): before the threads start, wrk calls request() once on the first thread's Lua
-- state to check the script (script_verify_request in wrk's source) and sends nothing for it; that call is not
-- counted below, which is only right for the first thread.
--
-- done() prints one line "BENCH_RESULT {...}" with wrk's own figures (latency in microseconds, and every latency
-- recorded as a histogram) plus "sent":
-- the requests written, so that sent - requests is exactly how many were still in flight when wrk stopped
-- (those are answered, and audited, by the server but never counted by wrk).

local body = os.getenv("BENCH_BODY")
if body == nil or body == "" then
  body = '{"name": "fraud-xgb", '
    .. '"workload": {"bound": "cpu", "model_kind": "classic_ml", "model_memory_gib": 2}, '
    .. '"traffic": {"peak_rps": 150, "per_instance_rps": 20, "burstiness": "steady"}, '
    .. '"sla": {"p99_latency_ms": 100, "availability": 0.999}, "target_utilization": 0.7}'
end
local max_requests = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "0") or 0
local vary = os.getenv("BENCH_VARY") == "1"
local vary_offset = tonumber(os.getenv("BENCH_VARY_OFFSET") or "0") or 0
-- The body with its peak_rps value as a format slot (JSON bodies hold no other '%').
local template = string.gsub(body, '("peak_rps"%s*:%s*)[%d%.eE+-]+', "%1%%.3f", 1)

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local prebuilt = nil
calls = 0 -- global: read back from the thread in done(); the first call is wrk's check, not a request

function init(args)
  prebuilt = wrk.format()
end

function request()
  calls = calls + 1
  if max_requests > 0 and calls - 1 >= max_requests then
    wrk.thread:stop() -- this request is still written; the loop ends after it
  end
  if vary then
    return wrk.format(nil, nil, nil, string.format(template, 150 + ((vary_offset + calls) % 100000) / 1000))
  end
  return prebuilt
end

function done(summary, latency, requests)
  local total_sent = 0
  for i, thread in ipairs(threads) do
    local calls = thread:get("calls") or 0
    if i == 1 and calls > 0 then
      calls = calls - 1 -- wrk's check call
    end
    total_sent = total_sent + calls
  end
  local e = summary.errors
  -- Every latency recorded, as [microseconds, count] pairs (wrk 4's stats: #latency distinct values, latency(i)
  -- the i-th value and its count), so that runs can be merged exactly.
  local pairs_out = {}
  for i = 1, #latency do
    local value, count = latency(i)
    pairs_out[i] = string.format("[%d,%d]", value, count)
  end
  io.write(string.format(
    'BENCH_RESULT {"duration_us": %d, "requests": %d, "bytes": %d, "sent": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"latency_us": {"min": %d, "mean": %.1f, "stdev": %.1f, "max": %d, '
      .. '"p50": %d, "p90": %d, "p99": %d, "p999": %d}, "histogram": [%s]}\n',
    summary.duration, summary.requests, summary.bytes, total_sent,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    table.concat(pairs_out, ",")
  ))
end
