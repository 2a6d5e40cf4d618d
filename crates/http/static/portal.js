// The portal's only script: copy buttons. A <button type="button" data-copy="ID"> copies the
// text (or value) of the element #ID. Without script the value stays visible and selectable.
"use strict";
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  const text = ("value" in source ? source.value : source.textContent).trim();
  const done = (label) => {
    button.textContent = label;
    button.setAttribute("aria-label", label);
  };
  const select = () => {
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    done("Selected: press Ctrl+C");
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(() => done("Copied"), select);
  } else {
    select();
  }
});
