function render({ model, el }) {
  el.classList.add("wb-browser");
  el.tabIndex = 0;
  // JupyterLab's own single-key shortcuts (j, k, a, 1 ...) must not fire while the grid has focus.
  el.setAttribute("data-lm-suppress-shortcuts", "true");
  const send = (msg) => model.send(msg);
  // The filter bar lives outside the redrawn grid so typing in it is never interrupted.
  const bar = document.createElement("form");
  bar.className = "wb-filters";
  el.appendChild(bar);
  // "l": a box to type a class into (part of its name, or its number); outside the redrawn grid too
  const picker = makePicker(el, { label: "class", key: "l", names: () => model.get("labels"),
                                  submit: (name) => send({ type: "assign_named", name }) });
  el.appendChild(picker.form);
  const root = document.createElement("div");
  el.appendChild(root);
  const expanded = new Set();
  const COLUMNS = [["text", "text"], ["label", "label"], ["given", "original_label"], ["suggested", "suggested_label"],
                   ["p", "suggested_prob"], ["score", "score"], ["issues", null], ["status", "status"]];
  const options = (values, current) => `<option value="">any</option>`
    + values.map((v) => `<option value="${v}"${v === current ? " selected" : ""}>${v}</option>`).join("");
  function drawFilters() {
    if (bar.contains(document.activeElement)) return;  // never rebuild under the analyst's cursor
    const f = model.get("filters") || {};
    const labels = model.get("labels");
    const text = f.regex ?? f.search ?? "";
    // Labels and issue types arrive HTML-escaped from Python; the search text is the analyst's own input.
    bar.innerHTML = `label <select name="label">${options(labels, f.label)}</select>`
      + ` suggested <select name="suggested_label">${options(labels, f.suggested_label)}</select>`
      + ` status <select name="status">${options(model.get("statuses"), f.status)}</select>`
      + ` issue <select name="issue">${options(model.get("issue_types"), f.issue)}</select>`
      + (model.get("splits").length ? ` split <select name="split">${options(model.get("splits"), f.split)}</select>` : "")
      + ` score <input name="score_min" size="4" placeholder="min"> – <input name="score_max" size="4" placeholder="max">`
      + ` <input name="search" size="18" placeholder="search text">`
      + ` <label><input type="checkbox" name="regex"${f.regex ? " checked" : ""}> regex</label>`
      + ` <label><input type="checkbox" name="disagree"${f.disagree ? " checked" : ""}> annotators disagree</label>`
      + ` <label><input type="checkbox" name="unlabelled"${f.unlabelled ? " checked" : ""}> unlabelled</label>`
      + ` <button type="submit">filter</button>`;
    bar.elements.score_min.value = f.score_min ?? "";
    bar.elements.score_max.value = f.score_max ?? "";
    bar.elements.search.value = text;
  }
  function submitFilters() {
    const e = bar.elements;
    send({ type: "filter", filters: {
      label: e.label.value, suggested_label: e.suggested_label.value, status: e.status.value, issue: e.issue.value,
      split: e.split ? e.split.value : "",
      score_min: e.score_min.value, score_max: e.score_max.value, search: e.search.value,
      regex: e.regex.checked, disagree: e.disagree.checked, unlabelled: e.unlabelled.checked } });
  }
  bar.addEventListener("submit", (e) => { e.preventDefault(); submitFilters(); el.focus(); });
  bar.addEventListener("change", (e) => { if (e.target.tagName !== "INPUT" || e.target.type === "checkbox") submitFilters(); });
  el.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
    let key = e.key;
    if ((e.ctrlKey || e.metaKey) && key.toLowerCase() === "z") key = "ctrl+z";
    else if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (key === "l") {
      picker.open();
      e.preventDefault();
      e.stopPropagation();
      return;
    }
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
    // why the cursor's item was flagged (the scan's issue details): one line that keeps its place as the cursor moves
    const current = rows.find((r) => r.cursor);
    html += `<div class="wb-why">${current && current.why ? `<b>why</b> ${current.why}` : ""}</div>`;
    html += `<div class="wb-keys">`
      + picker.buttons((l, i) => `<button class="wb-assign" data-i="${i}">${i < 9 ? (i + 1) + " " : ""}${l}</button>`)
      + `</div>`;
    const order = model.get("order_by") || "";
    const withVotes = rows.some((r) => r.annotators.length > 0);
    const head = COLUMNS.map(([title, col]) => {
      if (!col) return `<th>${title}</th>`;
      const arrow = order === col ? " ▲" : order === "-" + col ? " ▼" : "";
      return `<th class="wb-sort" data-col="${col}" title="sort by ${title}">${title}${arrow}</th>`;
    }).join("");
    html += `<table class="wb-grid"><thead><tr><th></th>${head}${withVotes ? "<th>annotators</th>" : ""}</tr></thead><tbody>`;
    rows.forEach((r, i) => {
      const open = expanded.has(r.item_id);
      html += `<tr class="wb-row${r.cursor ? " wb-cursor" : ""}${r.selected ? " wb-selected" : ""}${r.changed ? " wb-changed" : ""}" data-row="${i}" data-item="${r.item_id}">`
        + `<td>${r.selected ? "✓" : ""}</td><td class="wb-text">${open ? r.text_full : r.text}`
        + `${r.clipped ? ` <a class="wb-more" data-item="${r.item_id}">${open ? "less" : "more"}</a>` : ""}</td>`
        + `<td class="wb-label">${r.label ?? ""}</td><td>${r.original_label ?? ""}</td><td>${r.suggested_label ?? ""}</td>`
        + `<td>${r.suggested_prob ?? ""}</td><td>${r.score ?? ""}</td><td title="${r.why}">${r.issues.join(", ")}</td><td>${r.status}</td>`
        + (withVotes ? `<td class="wb-votes">${r.annotators.map(([a, l]) => `<span class="wb-vote" title="${a}">${a}: <b>${l}</b></span>`).join(" ")}</td>` : "")
        + `</tr>`;
    });
    html += `</tbody></table>`;
    root.innerHTML = html;
    root.querySelectorAll("tr.wb-row").forEach((tr) => tr.addEventListener("click", () => { send({ type: "click", row: Number(tr.dataset.row) }); el.focus(); }));
    root.querySelectorAll("th.wb-sort").forEach((th) => th.addEventListener("click", () => { send({ type: "sort", column: th.dataset.col }); el.focus(); }));
    root.querySelectorAll("a.wb-more").forEach((a) => a.addEventListener("click", (e) => {
      e.stopPropagation();
      const id = a.dataset.item;
      if (expanded.has(id)) expanded.delete(id); else expanded.add(id);
      draw();
    }));
    root.querySelectorAll("button.wb-assign").forEach((b) => b.addEventListener("click", () => { send({ type: "assign", index: Number(b.dataset.i) }); el.focus(); }));
    picker.bind(root);
    const started = model.get("pending_key_at");
    if (started) { model.set("last_latency_ms", performance.now() - started); model.set("pending_key_at", 0); model.save_changes(); }
  }
  ["rows", "counts", "error", "message", "show_help", "page", "labels", "order_by"].forEach((n) => model.on("change:" + n, draw));
  ["filters", "labels", "statuses", "issue_types", "splits"].forEach((n) => model.on("change:" + n, drawFilters));
  model.on("change:labels", picker.refresh);
  drawFilters();
  picker.refresh();
  draw();
}
export default { render };
