// Weft's dashboard: polls the stats API every few seconds and streams one
// workload's tap. Plain DOM, no framework: the controller serves this file
// as it is.
"use strict";

const REFRESH_MS = 3000;
// Tap rows kept on the page; older ones scroll away.
const TAP_ROWS = 200;

const $ = (id) => document.getElementById(id);

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "—" : String(text);
  if (className) td.className = className;
  return td;
}

function percent(rate) {
  return rate === null || rate === undefined ? null : (rate * 100).toFixed(2) + "%";
}

function ms(value) {
  return value === null || value === undefined ? null : value.toFixed(1) + "ms";
}

function rps(value) {
  return value.toFixed(1) + "rps";
}

function meshed(m) {
  return m ? m.meshed + "/" + m.total : null;
}

function successClass(rate) {
  if (rate === null || rate === undefined) return "number";
  return rate < 0.95 ? "number bad" : "number good";
}

function fill(tableId, rows, render) {
  const body = $(tableId).tBodies[0];
  const next = document.createElement("tbody");
  for (const row of rows) next.appendChild(render(row));
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    const td = cell("nothing yet", "quiet");
    td.colSpan = $(tableId).tHead.rows[0].cells.length;
    tr.appendChild(td);
    next.appendChild(tr);
  }
  body.replaceWith(next);
}

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new Error(path + ": " + (body.error || response.status));
  return body;
}

function statRow(row, withName, tapButton) {
  const tr = document.createElement("tr");
  tr.dataset.name = row.name;
  tr.dataset.namespace = row.namespace;
  tr.appendChild(cell(withName ? row.namespace : row.name));
  if (withName) tr.appendChild(cell(row.name));
  tr.appendChild(cell(meshed(row.meshed), "number"));
  tr.appendChild(cell(percent(row.success_rate), successClass(row.success_rate)));
  tr.appendChild(cell(rps(row.rps), "number rps"));
  tr.appendChild(cell(ms(row.latency_ms_p50), "number"));
  tr.appendChild(cell(ms(row.latency_ms_p95), "number"));
  tr.appendChild(cell(ms(row.latency_ms_p99), "number"));
  tr.appendChild(cell(row.tcp_connections, "number"));
  if (tapButton) {
    const td = document.createElement("td");
    const button = document.createElement("button");
    button.className = "link";
    button.textContent = "tap";
    button.addEventListener("click", () => {
      $("tap-resource").value = row.namespace + "/" + row.name;
      startTap();
    });
    td.appendChild(button);
    tr.appendChild(td);
  }
  return tr;
}

function edgeRow(edge) {
  const tr = document.createElement("tr");
  tr.appendChild(cell(edge.src_namespace + "/" + edge.src));
  tr.appendChild(cell(edge.dst_namespace + "/" + edge.dst));
  tr.appendChild(cell(edge.secured ? "✓" : "✗", edge.secured ? "good" : "bad"));
  tr.appendChild(cell(rps(edge.rps), "number"));
  tr.appendChild(cell(edge.client_id || "—", "identity"));
  tr.appendChild(cell(edge.server_id || "—", "identity"));
  return tr;
}

function chainRow(workload, verdicts) {
  const tr = document.createElement("tr");
  tr.appendChild(cell(workload.namespace + "/" + workload.pod));
  tr.appendChild(cell(workload.owner ? workload.owner.kind + "/" + workload.owner.name : null));
  const chain = document.createElement("td");
  for (const plugin of workload.plugins) {
    const span = document.createElement("span");
    const [namespace, name] = plugin.resource.split("/");
    const verdict = verdicts.get(plugin.resource) || verdicts.get(namespace + "/" + name);
    const rejected = verdict && !verdict.accepted;
    span.className = rejected ? "plugin bad" : "plugin";
    span.textContent = plugin.name + "@" + plugin.sha256.slice(0, 12);
    span.title = rejected ? "rejected: " + verdict.reason + ": " + verdict.message : "loaded";
    chain.appendChild(span);
  }
  tr.appendChild(chain);
  tr.appendChild(cell(workload.version));
  tr.appendChild(cell(workload.problems.join("; ") || "none", workload.problems.length ? "bad" : "quiet"));
  return tr;
}

function pluginRow(plugin) {
  const tr = document.createElement("tr");
  tr.dataset.name = plugin.namespace + "/" + plugin.name;
  tr.appendChild(cell(plugin.namespace));
  tr.appendChild(cell(plugin.name));
  tr.appendChild(cell(plugin.accepted ? "loaded" : "rejected", plugin.accepted ? "good" : "bad"));
  const why = plugin.accepted ? plugin.message : plugin.reason + ": " + plugin.message;
  tr.appendChild(cell(why || "", plugin.accepted ? "quiet" : "bad reason"));
  tr.appendChild(cell(plugin.sha256 ? plugin.sha256.slice(0, 12) : null, "identity"));
  return tr;
}

function namespaceQuery() {
  const namespace = $("namespace").value;
  return namespace ? "&namespace=" + encodeURIComponent(namespace) : "";
}

async function refresh() {
  const ns = namespaceQuery();
  try {
    const [namespaces, deployments, edges, workloads] = await Promise.all([
      getJson("/api/v1/stat?kind=ns"),
      getJson("/api/v1/stat?kind=deploy" + ns),
      getJson("/api/v1/edges?kind=pod" + ns),
      getJson("/api/v1/workloads?" + ns.slice(1)),
    ]);
    fill("namespaces", namespaces.rows, (row) => statRow(row, false, false));
    fill("workloads", deployments.rows, (row) => statRow(row, true, true));
    fill("edges", edges.edges, edgeRow);
    const verdicts = new Map(workloads.plugins.map((p) => [p.namespace + "/" + p.name, p]));
    fill("chains", workloads.workloads, (w) => chainRow(w, verdicts));
    fill("plugins", workloads.plugins, pluginRow);
    updateChoices(namespaces.rows, deployments.rows);
    $("problem").textContent = "";
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (error) {
    $("problem").textContent = error.message;
  }
}

function updateChoices(namespaces, deployments) {
  const setOptions = (select, values, keepFirst) => {
    const current = select.value;
    const first = keepFirst ? [select.options[0]] : [];
    select.replaceChildren(...first);
    for (const value of values) {
      const option = document.createElement("option");
      option.value = option.textContent = value;
      select.appendChild(option);
    }
    if ([...select.options].some((o) => o.value === current)) select.value = current;
  };
  setOptions($("namespace"), namespaces.map((r) => r.name), true);
  setOptions($("tap-resource"), deployments.map((r) => r.namespace + "/" + r.name), false);
}

// === Tap ===

let tapping = null;
const tapRows = new Map();

function stopTap(reason) {
  if (tapping) tapping.abort();
  tapping = null;
  $("tap-start").disabled = false;
  $("tap-stop").disabled = true;
  if (reason !== undefined) $("tap-status").textContent = reason;
}

async function startTap(event) {
  if (event) event.preventDefault();
  const choice = $("tap-resource").value;
  if (!choice) return;
  stopTap();
  const [namespace, name] = choice.split("/");
  const params = new URLSearchParams({ resource: "deploy/" + name, namespace });
  if ($("tap-path").value) params.set("path", $("tap-path").value);
  const controller = new AbortController();
  tapping = controller;
  $("tap-start").disabled = true;
  $("tap-stop").disabled = false;
  $("tap-target").textContent = "deploy/" + name + " in " + namespace;
  $("tap-status").textContent = "opening…";
  $("tap").tBodies[0].replaceChildren();
  $("tap-errors").replaceChildren();
  tapRows.clear();
  try {
    const response = await fetch("/api/v1/tap?" + params, { signal: controller.signal });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(body.error || "status " + response.status);
    }
    $("tap-status").textContent = "tapping";
    await readEvents(response.body, onTapEvent);
    if (tapping === controller) stopTap("ended");
  } catch (error) {
    if (tapping === controller) stopTap("cannot tap: " + error.message);
  }
}

// Reads a server-sent event stream, calling `handle(type, data)` per event.
async function readEvents(body, handle) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let type = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) type = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (data.length) handle(type, JSON.parse(data.join("\n")));
    }
  }
}

function onTapEvent(type, event) {
  if (type === "end") return;
  if (type === "error" || event.type === "error") {
    // One proxy that cannot be tapped; the others' requests still come.
    const line = document.createElement("div");
    line.textContent = "cannot tap " + (event.proxy || "") + ": " + (event.message || event.error);
    $("tap-errors").appendChild(line);
    return;
  }
  const key = event.proxy + ":" + event.id;
  let row = tapRows.get(key);
  if (event.type === "requestInit") {
    row = document.createElement("tr");
    row.className = "tap-row";
    const values = [event.proxy, event.direction === "inbound" ? "in" : "out", event.source,
      event.tls ? "✓" : "✗", event.peerIdentity || "—", event.method, event.authority, event.path];
    for (const value of values) row.appendChild(cell(value));
    for (const name of ["status", "latency", "answered"]) {
      const td = cell("");
      td.className = name;
      row.appendChild(td);
    }
    tapRows.set(key, row);
    const body = $("tap").tBodies[0];
    body.prepend(row);
    while (body.rows.length > TAP_ROWS) {
      const last = body.rows[body.rows.length - 1];
      tapRows.delete([...tapRows].find(([, r]) => r === last)?.[0]);
      last.remove();
    }
  }
  if (!row) return;
  if (event.type === "responseInit") {
    row.querySelector(".status").textContent = event.status;
    row.querySelector(".status").className = "status " + (event.status >= 500 ? "bad" : "good");
    row.querySelector(".latency").textContent = (event.sinceRequestInitUs / 1000).toFixed(2) + "ms";
  }
  if (event.type === "responseEnd") {
    if (event.status) row.querySelector(".status").textContent = event.status;
    row.querySelector(".answered").textContent = event.answeredBy || event.error || "";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("namespace").addEventListener("change", refresh);
  $("tap-form").addEventListener("submit", startTap);
  $("tap-stop").addEventListener("click", () => stopTap("stopped"));
  // Closing or leaving the page ends the tap at once.
  window.addEventListener("pagehide", () => stopTap());
  refresh();
  setInterval(refresh, REFRESH_MS);
});
