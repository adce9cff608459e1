-- Loaded by every row script (run.sh runs wrk from this directory): prints
-- one line that run.sh parses. Latencies are wrk's (--latency) histogram
-- percentiles, in microseconds.
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d non2xx=%d\n",
      summary.requests, summary.duration,
      latency:percentile(50), latency:percentile(99),
      e.connect + e.read + e.write + e.timeout, e.status))
end
