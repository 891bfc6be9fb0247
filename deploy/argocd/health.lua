-- Argo CD health check for canary-engine's Canary (canary.gitops.dev/Canary).
--
-- Install it as the argocd-cm key resource.customizations.health.canary.gitops.dev_Canary
-- (deploy/argocd/argocd-cm-patch.yaml embeds this file; tests/deploy/test_argocd_health.py
-- runs it). Argo CD evaluates it with gopher-lua (Lua 5.1): `obj` is the Canary, and the
-- script returns {status = ..., message = ...}.
--
--   Healthy      Initialized, Succeeded: the primary serves the promoted release.
--   Progressing  no status yet, Initializing, Progressing, Waiting, WaitingPromotion,
--                Promoting, Finalising, Terminating, Terminated; also any phase while the
--                status is older than the spec (observedGeneration < generation).
--   Degraded     Failed (rolled back: the primary still runs the previous release), and a
--                new release refused as known-bad (status.refused).
--   Suspended    spec.suspend: true, or the canary.gitops.dev/paused annotation: the
--                controller does nothing until resumed.
--   Unknown      a phase this script does not know.
--
-- Waiting (confirm-rollout gate), WaitingPromotion (confirm-promotion gate) and a stalled
-- analysis are Progressing, with the reason in the message: a run is under way and
-- ends when the gate opens, traffic comes or someone runs `canary promote`/`abort`.

local hs = {}

local HEALTH = {
  Initialized = "Healthy",
  Succeeded = "Healthy",
  Initializing = "Progressing",
  Progressing = "Progressing",
  Waiting = "Progressing",
  WaitingPromotion = "Progressing",
  Promoting = "Progressing",
  Finalising = "Progressing",
  Terminating = "Progressing",
  Terminated = "Progressing",
  Failed = "Degraded",
}

local function nonempty(value)
  return type(value) == "string" and value ~= ""
end

-- The message of the condition `kind` (Promoted, AnalysisStalled, ...), or nil.
local function condition_message(status, kind)
  if type(status.conditions) ~= "table" then
    return nil
  end
  for _, condition in ipairs(status.conditions) do
    if condition.type == kind and nonempty(condition.message) then
      return condition.message
    end
  end
  return nil
end

local function truthy(value)
  if value == true then
    return true
  end
  if type(value) == "string" then
    local lowered = string.lower(string.match(value, "^%s*(.-)%s*$"))
    return lowered == "true" or lowered == "yes" or lowered == "1"
  end
  return false
end

local spec = obj.spec or {}
local metadata = obj.metadata or {}
local annotations = metadata.annotations or {}
local status = obj.status or {}
local phase = status.phase

if spec.suspend == true then
  hs.status = "Suspended"
  hs.message = (phase or "Pending") .. ": suspended (spec.suspend), no action until it is false."
  return hs
end
if truthy(annotations["canary.gitops.dev/paused"]) then
  hs.status = "Suspended"
  hs.message = (phase or "Pending") .. ": paused (canary.gitops.dev/paused), `canary resume` continues."
  return hs
end

if not nonempty(phase) then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to initialize the canary."
  return hs
end

local generation = tonumber(metadata.generation)
local observed = tonumber(status.observedGeneration)
if generation ~= nil and observed ~= nil and observed < generation then
  hs.status = "Progressing"
  hs.message = phase .. ": the controller has not acted on generation "
    .. string.format("%d", generation) .. " of the spec yet."
  return hs
end

local message = status.message
if not nonempty(message) then
  message = condition_message(status, "Promoted") or ""
end
local weight = tonumber(status.canaryWeight)
local detail = phase
if weight ~= nil and weight > 0 then
  detail = detail .. " (canary weight " .. string.format("%d", weight) .. "%)"
end
if message ~= "" then
  detail = detail .. ": " .. message
end

if nonempty(status.refused) then
  hs.status = "Degraded"
  hs.message = phase .. ": known-bad release refused: " .. status.refused
  return hs
end

hs.status = HEALTH[phase] or "Unknown"
hs.message = detail
if hs.status == "Unknown" then
  hs.message = "Unknown phase " .. phase .. (message ~= "" and (": " .. message) or "")
end
return hs
