// hookd admin: progressive enhancements only; every form works without it.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Reveal / hide a secret.
  for (const button of document.querySelectorAll("[data-reveal]")) {
    const input = document.getElementById(button.dataset.reveal);
    button.addEventListener("click", () => {
      const show = input.type === "password";
      input.type = show ? "text" : "password";
      button.textContent = show ? "Hide" : "Reveal";
      button.setAttribute("aria-pressed", String(show));
    });
  }

  // Copy a secret to the clipboard.
  for (const button of document.querySelectorAll("[data-copy]")) {
    const input = document.getElementById(button.dataset.copy);
    const status = (button.closest(".field") || button.closest(".notice"))?.querySelector(".copy-status");
    button.addEventListener("click", async () => {
      let copied = false;
      try {
        await navigator.clipboard.writeText(input.value);
        copied = true;
      } catch {
        const type = input.type;
        input.type = "text";
        input.select();
        copied = document.execCommand("copy");
        input.type = type;
      }
      if (status) status.textContent = copied ? "Copied to the clipboard." : "Copy failed: select the text and copy it by hand.";
    });
  }

  // A new random secret (the server checks it). On an existing webhook it
  // replaces the current one when the form is saved, with the other edits;
  // without this script the button rotates the secret at once instead.
  for (const button of document.querySelectorAll("[data-generate]")) {
    const input = document.getElementById(button.dataset.generate);
    const pending = button.dataset.pending && document.getElementById(button.dataset.pending);
    button.addEventListener("click", (event) => {
      event.preventDefault();
      const bytes = crypto.getRandomValues(new Uint8Array(32));
      input.value = "whsec_" + btoa(String.fromCharCode(...bytes));
      if (pending) pending.value = input.value;
      const status = button.closest(".field")?.querySelector(".copy-status");
      if (status) {
        status.textContent = pending
          ? "New secret generated: it replaces the current one when you save (the old one keeps signing for 24 hours)."
          : "New secret generated; it is saved with the webhook.";
      }
    });
  }

  // Per event category: "Select all", and the `category.*` wildcard, which
  // covers every type of the category (its boxes show ticked and locked; a
  // locked box is not sent, the wildcard says it all).
  for (const fieldset of document.querySelectorAll("fieldset.category")) {
    const box = fieldset.querySelector(".select-all-box");
    if (!box) continue; // not an event category (e.g. a key's permissions)
    const wildcard = fieldset.querySelector(".wildcard-box");
    const events = [...fieldset.querySelectorAll(".event-box")];
    const before = new Map();
    const sync = () => {
      const ticked = events.filter((e) => e.checked).length;
      box.checked = ticked === events.length && events.length > 0;
      box.indeterminate = ticked > 0 && ticked < events.length;
      box.disabled = Boolean(wildcard && wildcard.checked);
    };
    const lock = () => {
      for (const e of events) {
        if (wildcard.checked && !e.disabled) {
          before.set(e, e.checked);
          e.checked = true;
          e.disabled = true;
        } else if (!wildcard.checked && e.disabled) {
          e.disabled = false;
          e.checked = before.get(e) ?? false;
        }
      }
      sync();
    };
    box.addEventListener("change", () => {
      for (const e of events) e.checked = box.checked;
      sync();
    });
    for (const e of events) e.addEventListener("change", sync);
    if (wildcard) {
      wildcard.addEventListener("change", lock);
      lock();
    }
    box.closest("label").hidden = false;
    sync();
  }

  // Filters apply as soon as a choice changes (Apply stays for typing).
  for (const select of document.querySelectorAll("form.filters select")) {
    select.addEventListener("change", () => select.form.requestSubmit());
  }

  // Take the keyboard to the first invalid field after a failed submit, or
  // back to the control an action came from (a row's toggle).
  const invalid = document.querySelector("[aria-invalid='true']");
  const anchor = location.hash && document.getElementById(location.hash.slice(1));
  if (invalid) invalid.focus();
  else if (anchor && anchor.matches("button, a, input")) anchor.focus();

  // A confirmation is said once: the address loses its `done` code, so a
  // reload (or a bookmark) does not say it again.
  const address = new URL(location.href);
  if (address.searchParams.has("done")) {
    address.searchParams.delete("done");
    history.replaceState(history.state, "", address.pathname + address.search + address.hash);
  }

  // A log row opens its delivery when clicked anywhere but on its own
  // controls (its Details link stays for the keyboard).
  for (const row of document.querySelectorAll("tr[data-href]")) {
    row.addEventListener("click", (event) => {
      if (event.target.closest("a, button, form, input, select, textarea")) return;
      if (window.getSelection && String(window.getSelection())) return; // selecting text
      location.href = row.dataset.href;
    });
  }

  // The tenant switcher's free text appears only under "New tenant…".
  for (const select of document.querySelectorAll("select[data-new-tenant]")) {
    const field = document.getElementById(select.dataset.newTenant);
    const input = field.querySelector("input");
    const sync = (focus) => {
      field.hidden = select.value !== "";
      input.required = select.value === "";
      if (focus && !field.hidden) input.focus();
    };
    select.addEventListener("change", () => sync(true));
    sync(false);
  }
  document.documentElement.classList.add("js");

  // Reached only if nothing above threw (the browser tests check it).
  document.documentElement.dataset.js = "ready";
});
