// Live progress of a dashboard job: polls the job's JSON and updates the
// page. Builds text nodes only (never innerHTML), so nothing from the
// server is interpreted as markup. Without JavaScript the page refreshes
// itself instead (a <noscript> meta refresh).
"use strict";
(function () {
  const box = document.getElementById("job");
  if (!box || box.dataset.state !== "running") return;
  const url = box.dataset.poll;
  function fmtBytes(n) {
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return i === 0 ? n + " B" : n.toFixed(1) + " " + u[i];
  }
  function cell(text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    return td;
  }
  function render(job) {
    const body = document.querySelector("#job-targets tbody");
    if (body) {
      body.replaceChildren();
      for (const t of job.targets) {
        const tr = document.createElement("tr");
        tr.dataset.dest = t.destination;
        tr.appendChild(cell(t.destination));
        tr.appendChild(cell(t.state, "state"));
        const pct = Math.round((t.percent_done || 0) * 100);
        const td = document.createElement("td");
        const bar = document.createElement("progress");
        bar.max = 100;
        bar.value = pct;
        td.appendChild(bar);
        td.appendChild(document.createTextNode(" " + pct + "%"));
        tr.appendChild(td);
        tr.appendChild(cell(t.files_done + " / " + t.total_files, "files"));
        tr.appendChild(cell(fmtBytes(t.bytes_done) + " / " + fmtBytes(t.total_bytes), "bytes"));
        body.appendChild(tr);
      }
    }
    const state = document.getElementById("job-state");
    if (state) state.textContent = job.state;
  }
  async function poll() {
    try {
      const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (r.ok) {
        const job = await r.json();
        if (job && job.state !== "running") { location.reload(); return; }
        if (job) render(job);
      }
    } catch (e) { /* network blip: try again */ }
    setTimeout(poll, 1000);
  }
  setTimeout(poll, 500);
})();
