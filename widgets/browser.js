function render({ model, el }) {
  el.classList.add("wb-browser");
  el.tabIndex = 0;
  // JupyterLab's own single-key shortcuts (j, k, a, 1 ...) must not fire while the grid has focus.
  el.setAttribute("data-lm-suppress-shortcuts", "true");
  const root = document.createElement("div");
  el.appendChild(root);
  const send = (msg) => model.send(msg);
  el.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
    let key = e.key;
    if ((e.ctrlKey || e.metaKey) && key.toLowerCase() === "z") key = "ctrl+z";
    else if (e.ctrlKey || e.metaKey || e.altKey) return;
    model.set("pending_key_at", performance.now());
    model.save_changes();
    send({ type: "key", key });
    e.preventDefault();
    e.stopPropagation();
  });
  function draw() {
    const rows = model.get("rows");
    const labels = model.get("labels");
    const counts = model.get("counts");
    // Every piece of dataset text arrives HTML-escaped from Python (workbench.review), so it can go in as HTML.
    let html = `<div class="wb-bar"><b>${model.get("title")}</b> · page ${model.get("page") + 1} / ${model.get("pages")}`
      + ` · ${model.get("total")} items · reviewed ${counts.reviewed || 0} · flagged ${counts.flagged || 0}`
      + ` · corrected ${counts.corrected || 0} <span class="wb-msg ${model.get("error") ? "wb-err" : ""}">`
      + `${model.get("error") || model.get("message")}</span></div>`;
    if (model.get("show_help")) html += `<div class="wb-help">${model.get("help")}</div>`;
    html += `<div class="wb-keys">` + labels.map((l, i) => `<button class="wb-assign" data-i="${i}">${i < 9 ? (i + 1) + " " : ""}${l}</button>`).join("") + `</div>`;
    html += `<table class="wb-grid"><thead><tr><th></th><th>text</th><th>label</th><th>given</th><th>suggested</th><th>p</th><th>score</th><th>issues</th><th>status</th></tr></thead><tbody>`;
    rows.forEach((r, i) => {
      html += `<tr class="wb-row${r.cursor ? " wb-cursor" : ""}${r.selected ? " wb-selected" : ""}${r.changed ? " wb-changed" : ""}" data-row="${i}" data-item="${r.item_id}">`
        + `<td>${r.selected ? "✓" : ""}</td><td class="wb-text" title="${r.clipped ? r.text_full : ""}">${r.text}</td>`
        + `<td class="wb-label">${r.label ?? ""}</td><td>${r.original_label ?? ""}</td><td>${r.suggested_label ?? ""}</td>`
        + `<td>${r.suggested_prob ?? ""}</td><td>${r.score ?? ""}</td><td>${r.issues.join(", ")}</td><td>${r.status}</td></tr>`;
    });
    html += `</tbody></table>`;
    root.innerHTML = html;
    root.querySelectorAll("tr.wb-row").forEach((tr) => tr.addEventListener("click", () => { send({ type: "click", row: Number(tr.dataset.row) }); el.focus(); }));
    root.querySelectorAll("button.wb-assign").forEach((b) => b.addEventListener("click", () => { send({ type: "assign", index: Number(b.dataset.i) }); el.focus(); }));
    const started = model.get("pending_key_at");
    if (started) { model.set("last_latency_ms", performance.now() - started); model.set("pending_key_at", 0); model.save_changes(); }
  }
  ["rows", "counts", "error", "message", "show_help", "page", "labels"].forEach((n) => model.on("change:" + n, draw));
  draw();
}
export default { render };
