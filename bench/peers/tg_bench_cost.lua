-- Benchmark peers' shared part: the application a request names and what
-- it costs, charged as Tollgate charges (2 tokens, plus 1 per started
-- 64 KiB of a declared body) so that every limiter does the same work.

local M = {}

local BASE_TOKENS = 2
local QUANTUM_BYTES = 65536

local ceil = math.ceil


-- the application id and the cost in tokens; nil when no id was sent
function M.request()
    local app = ngx.var.http_x_app_id
    if not app then
        return nil
    end

    local cost = BASE_TOKENS
    local length = tonumber(ngx.var.http_content_length)
    if length and length > 0 then
        cost = cost + ceil(length / QUANTUM_BYTES)
    end
    return app, cost
end


return M
