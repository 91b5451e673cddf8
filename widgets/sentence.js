const PALETTE = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac"];

function render({ model, el }) {
  el.classList.add("wb-browser", "wb-sentence");
  el.tabIndex = 0;
  el.setAttribute("data-lm-suppress-shortcuts", "true");
  const send = (msg) => model.send(msg);
  // "t": a box to type an entity type into (part of its name, or its number), for type sets past nine
  const picker = makePicker(el, { label: "entity type", key: "t", names: () => model.get("types"),
                                  submit: (name) => send({ type: "retag_named", name }) });
  el.appendChild(picker.form);
  const root = document.createElement("div");
  el.appendChild(root);
  el.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT") return;  // typing in the box
    let key = e.key;
    if ((e.ctrlKey || e.metaKey) && key.toLowerCase() === "z") key = "ctrl+z";
    else if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (key === "t") {
      picker.open();
      e.preventDefault();
      e.stopPropagation();
      return;
    }
    send({ type: "key", key });
    e.preventDefault();
    e.stopPropagation();
  });
  function draw() {
    const s = model.get("sentence");
    const types = model.get("types");
    const colour = (t) => (t ? PALETTE[types.indexOf(t) % PALETTE.length] : "transparent");
    // Tokens, tags and types arrive HTML-escaped from Python (workbench.sentence_review).
    let html = `<div class="wb-bar"><b>Sentence</b> ${s.total ? s.index + 1 : 0} / ${s.total} · ${s.item_id}`
      + ` · score ${s.score ?? "-"} · ${s.status ?? ""} <span class="wb-msg ${model.get("error") ? "wb-err" : ""}">`
      + `${model.get("error") || model.get("message")}</span></div>`;
    html += `<div class="wb-why">${s.why ? `<b>why</b> ${s.why}` : ""}</div>`;
    html += `<div class="wb-keys">`
      + picker.buttons((t, i) => `<button class="wb-type" data-t="${t}" style="border-color:${colour(t)}">${i + 1} ${t}</button>`)
      + `<button class="wb-type" data-t="">0 O</button></div><div class="wb-tokens">`;
    (s.tokens || []).forEach((t, i) => {
      html += `<span class="wb-chip${t.cursor ? " wb-chip-cursor" : ""}${t.suggested ? " wb-chip-suggested" : ""}${t.changed ? " wb-chip-changed" : ""}"`
        + ` data-i="${i}" style="background:${t.type ? colour(t.type) + "33" : "transparent"};border-color:${colour(t.type)}"`
        + ` title="${t.tag}${t.suggested ? " → suggested " + t.suggested : ""}">${t.text}<sub>${t.tag === "O" ? "" : t.tag}</sub>`
        + `${t.suggested ? `<sup class="wb-suggest">${t.suggested}</sup>` : ""}</span> `;
    });
    html += `</div><div class="wb-help">${model.get("help")}</div>`;
    root.innerHTML = html;
    root.querySelectorAll(".wb-chip").forEach((c) => c.addEventListener("click", () => { send({ type: "token", index: Number(c.dataset.i) }); el.focus(); }));
    root.querySelectorAll(".wb-type").forEach((b) => b.addEventListener("click", () => { send({ type: "retag", entity: b.dataset.t }); el.focus(); }));
    picker.bind(root);
  }
  ["sentence", "error", "message", "types"].forEach((n) => model.on("change:" + n, draw));
  model.on("change:types", picker.refresh);
  draw();
  picker.refresh();
}
export default { render };
