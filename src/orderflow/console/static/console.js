// The Orderflow console: refreshes the page's live part in place, and sends the
// operator actions (redrive, requeue) with the header the console requires of them.
"use strict";

const live = document.getElementById("live");
const flash = document.getElementById("flash");
const every = Number(live && live.dataset.refresh) || 0;
let busy = false;
let last = live ? live.innerHTML : "";

async function refresh() {
  if (busy || document.hidden || !live) return;
  const url = new URL(window.location.href);
  url.searchParams.set("partial", "1");
  try {
    const answer = await fetch(url, { headers: { "X-Orderflow-Console": "1" }, cache: "no-store" });
    if (!answer.ok && answer.status !== 503) return; // 503: the suite is away, and the page says so
    const html = await answer.text();
    if (html !== last && !busy) {
      // What the reader opened stays open: a message's event, the Mermaid text.
      const open = [...live.querySelectorAll("details[open]")].map((d) => {
        if (d.id) return `#${CSS.escape(d.id)}`;
        const row = d.closest("[data-message]");
        return row ? `[data-message="${CSS.escape(row.dataset.message)}"] details` : null;
      });
      live.innerHTML = html;
      last = html;
      for (const selector of open) {
        const details = selector && live.querySelector(selector);
        if (details) details.open = true;
      }
    }
  } catch (_) {
    // the suite stopped or restarts: try again on the next tick
  }
}

function say(text, bad) {
  flash.textContent = text;
  flash.className = bad ? "bad" : "good";
  flash.hidden = false;
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-post]");
  if (!button) return;
  busy = true;
  button.disabled = true;
  try {
    const answer = await fetch(button.dataset.post, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Orderflow-Console": "1" },
      body: button.dataset.body || "{}",
    });
    const payload = await answer.json().catch(() => ({}));
    say(payload.message || payload.error || `${answer.status}`, !answer.ok);
  } catch (error) {
    say(`not sent: ${error}`, true);
  } finally {
    busy = false;
    button.disabled = false;
    refresh();
  }
});

if (every > 0) setInterval(refresh, every);
