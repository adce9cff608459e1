-- Keep-alive GET /plaintext, one request in flight per connection.
wrk.path = "/plaintext"
dofile("report.lua")
