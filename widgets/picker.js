// A box to type a name into (a class in the label browser, an entity type in the sentence view): for sets past the
// nine digit keys. Python matches what was typed (workbench.review.match_label). Prepended to each widget's module.
function makePicker(el, { label, key, names, submit }) {
  const form = document.createElement("form");
  form.className = "wb-picker";
  form.hidden = true;
  const listId = "wb-names-" + Math.random().toString(36).slice(2);
  form.innerHTML = `${label} <input name="name" size="28" autocomplete="off" list="${listId}">`
    + `<datalist id="${listId}"></datalist> <span class="wb-hint">Enter assigns · Esc closes</span>`;
  const input = form.elements.name;
  function close() { form.hidden = true; input.value = ""; el.focus(); }
  function done() { submit(input.value); close(); }
  form.addEventListener("submit", (e) => { e.preventDefault(); done(); });
  // Enter and Esc handled here: an open suggestion list would take the first Enter, and JupyterLab sees the rest
  form.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); e.stopPropagation(); done(); }
    else if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); close(); }
  });
  function open() { form.hidden = false; input.focus(); }
  return {
    form,
    open,
    // names arrive HTML-escaped, so they can go in as HTML; the browser hands back the text they spell
    refresh() { form.querySelector("datalist").innerHTML = names().map((n) => `<option value="${n}">`).join(""); },
    // A button per name, `button(name, i)` writing one; past a dozen names, the nine with digit keys and one
    // button that opens this box: banking77's 77 buttons pushed the label browser's grid out of sight.
    buttons(button) {
      const all = names();
      const shown = all.length > 12 ? all.slice(0, 9) : all;
      return shown.map(button).join("") + (shown.length < all.length
        ? `<button class="wb-more-names">${key}: ${all.length - shown.length} more…</button>` : "");
    },
    // after a redraw: the "more" button opens the box
    bind(root) { root.querySelectorAll(".wb-more-names").forEach((b) => b.addEventListener("click", open)); },
  };
}
