-- Health of an llmfleet.io MLPipeline: Healthy once the desired run is trained and served,
-- Degraded when a stage failed or cannot be placed, or drift is above its threshold.
local hs = {}
if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the llmfleet operator to start the pipeline"
  return hs
end
if obj.status.observedGeneration ~= obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the llmfleet operator to observe generation " .. tostring(obj.metadata.generation)
  return hs
end
local found = {}
for _, condition in ipairs(obj.status.conditions) do
  found[condition.type] = condition
end
local degraded = found["Degraded"]
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = (degraded.reason or "Degraded") .. ": " .. (degraded.message or "")
  return hs
end
local drift = found["DriftDetected"]
if drift ~= nil and drift.status == "True" then
  hs.status = "Degraded"
  hs.message = "DriftDetected: " .. (drift.message or "")
  return hs
end
local ready = found["Ready"]
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "Serving"
  return hs
end
hs.status = "Progressing"
if ready ~= nil and ready.message ~= nil then
  hs.message = (obj.status.currentStage or "") .. ": " .. ready.message
else
  hs.message = "Waiting for the pipeline's stages"
end
return hs
