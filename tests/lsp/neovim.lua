-- Drives `bottle lsp` from Neovim's own LSP client (headless), as a user's
-- editor would, and writes what it saw as JSON for tests/lsp.rs to judge.
-- Environment: BOTTLE (the binary), RECIPE (the file to edit), OUT (where
-- the JSON goes). Works with Neovim 0.7 (Debian bookworm) and later.
local bottle, recipe, out = os.getenv("BOTTLE"), os.getenv("RECIPE"), os.getenv("OUT")
local seen = { steps = {} }
local function step(name) table.insert(seen.steps, name) end

local client_id = vim.lsp.start_client({
  name = "bottle",
  cmd = { bottle, "lsp" },
  root_dir = vim.fn.fnamemodify(recipe, ":h"),
})
vim.cmd("edit " .. vim.fn.fnameescape(recipe))
local buf = vim.api.nvim_get_current_buf()
vim.lsp.buf_attach_client(buf, client_id)
local client = vim.lsp.get_client_by_id(client_id)
step("attached")

-- The (0-based) position of `needle` in the buffer, `delta` bytes in.
local function find(needle, delta)
  for i, line in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, false)) do
    local col = string.find(line, needle, 1, true)
    if col then return { line = i - 1, character = col - 1 + (delta or 0) } end
  end
  error("not in the buffer: " .. needle)
end

local function request(method, needle, delta)
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(buf) },
    position = find(needle, delta),
  }
  local r = client.request_sync(method, params, 10000, buf)
  return r and r.result
end

local function diagnostics()
  return vim.tbl_map(function(d)
    return { line = d.lnum, col = d.col, message = d.message }
  end, vim.diagnostic.get(buf))
end

-- The file as saved has a schema error: reported with its place.
vim.wait(20000, function() return #vim.diagnostic.get(buf) > 0 end, 50)
seen.first = diagnostics()
step("diagnosed")

-- Type the fix: that error goes away, the others stay.
local function mentions(text)
  for _, d in ipairs(vim.diagnostic.get(buf)) do
    if string.find(d.message, text, 1, true) then return true end
  end
  return false
end
local at = find("cpus = 400;", 0)
vim.api.nvim_buf_set_text(buf, at.line, at.character + 7, at.line, at.character + 10, { "4" })
vim.wait(20000, function() return not mentions("cpus 400") end, 50)
seen.fixed = diagnostics()
step("fixed")

-- Completion of a field on the line of the bottle's set marked `##`.
local line = find("##", 0).line
local completion = client.request_sync("textDocument/completion", {
  textDocument = { uri = vim.uri_from_bufnr(buf) },
  position = { line = line, character = 0 },
}, 10000, buf)
completion = completion and completion.result
local items = completion and (completion.items or completion) or {}
seen.completion = vim.tbl_map(function(i) return i.label end, items)
seen.agents = vim.tbl_map(function(i) return i.label end,
  request("textDocument/completion", "agents.claude", 7) or {})
local hover = request("textDocument/hover", "toJSON", 1)
seen.hover = hover and hover.contents and hover.contents.value or ""
local def = request("textDocument/definition", "twice 1024", 0)
if def and def[1] then def = def[1] end
seen.definition = def
step("asked")

vim.fn.writefile({ vim.fn.json_encode(seen) }, out)
client.stop()
vim.wait(5000, function() return client.is_stopped() end, 50)
vim.cmd("qa!")
