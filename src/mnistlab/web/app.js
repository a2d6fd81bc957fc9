// The drawing page: draw on the canvas (mouse, pen or touch), and the digit is
// predicted live by POST /v1/predict. Plain JS, no build step.
"use strict";

const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const seen = document.getElementById("seen");
const seenCtx = seen.getContext("2d");
const result = document.getElementById("result");
const digitEl = document.getElementById("digit");
const probEl = document.getElementById("prob");
const barsEl = document.getElementById("bars");
const errorEl = document.getElementById("error");

const PEN_WIDTH = 18; // px on the 280 px canvas: about MNIST's stroke at 28 px
const LIVE_INTERVAL_MS = 150; // predict at most this often while drawing

let drawing = false;
let hasInk = false;
let strokes = 0; // completed strokes; the result says which stroke it belongs to
let inFlight = false;
let queued = false;
let lastLive = 0;
// Bumped by Clear (and by an upload, which clears first): a reply for an older
// drawing is dropped instead of being drawn beside an empty pad.
let generation = 0;
let controller = null; // aborts the request in flight when the pad is cleared

// -- the probability bars ----------------------------------------------------------------
const bars = [];
for (let d = 0; d < 10; d++) {
  const row = document.createElement("div");
  row.className = "bar-row";
  row.innerHTML = `<span>${d}</span><div class="track"><div class="fill"></div></div>` +
    `<span class="value">&ndash;</span>`;
  barsEl.appendChild(row);
  bars.push(row);
}

function clearPad() {
  generation += 1;
  queued = false;
  if (controller) controller.abort();
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  hasInk = false;
  strokes = 0;
  result.dataset.forStroke = "0";
  digitEl.textContent = "?";
  probEl.textContent = "draw a digit 0-9";
  errorEl.textContent = "";
  for (const row of bars) {
    row.classList.remove("best");
    row.querySelector(".fill").style.width = "0";
    row.querySelector(".value").textContent = "\u2013";
  }
  seenCtx.fillStyle = "#000";
  seenCtx.fillRect(0, 0, 28, 28);
}

// -- drawing -------------------------------------------------------------------------------
function point(ev) {
  const r = pad.getBoundingClientRect();
  return [(ev.clientX - r.left) * (pad.width / r.width), (ev.clientY - r.top) * (pad.height / r.height)];
}

pad.addEventListener("pointerdown", (ev) => {
  ev.preventDefault();
  pad.setPointerCapture(ev.pointerId);
  drawing = true;
  const [x, y] = point(ev);
  ctx.strokeStyle = "#111";
  ctx.fillStyle = "#111";
  ctx.lineWidth = PEN_WIDTH;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.arc(x, y, PEN_WIDTH / 2, 0, 2 * Math.PI); // a dot even without movement
  ctx.fill();
  ctx.beginPath();
  ctx.moveTo(x, y);
  hasInk = true;
});

pad.addEventListener("pointermove", (ev) => {
  if (!drawing) return;
  ev.preventDefault();
  const [x, y] = point(ev);
  ctx.lineTo(x, y);
  ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(x, y);
  const now = performance.now();
  if (now - lastLive > LIVE_INTERVAL_MS) {
    lastLive = now;
    predictCanvas();
  }
});

function endStroke(ev) {
  if (!drawing) return;
  drawing = false;
  strokes += 1;
  predictCanvas();
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

// -- predicting ------------------------------------------------------------------------------
function predictCanvas() {
  if (!hasInk) return;
  if (inFlight) { queued = true; return; } // one request at a time; the latest drawing wins
  const forStroke = strokes;
  const gen = generation;
  inFlight = true; // from now: toBlob is asynchronous too
  pad.toBlob((blob) => {
    if (gen === generation) {
      send(blob, "drawing.png", forStroke);
    } else { // cleared meanwhile: this drawing is gone
      inFlight = controller !== null; // an upload may have started since
      if (queued && !inFlight) { queued = false; predictCanvas(); }
    }
  }, "image/png");
}

// The reply's JSON, or null when it is not JSON (a proxy's HTML error page).
async function readJson(resp) {
  try {
    return await resp.json();
  } catch (err) {
    return null;
  }
}

async function send(blob, name, forStroke) {
  inFlight = true;
  const gen = generation;
  const abort = new AbortController();
  controller = abort;
  try {
    const form = new FormData();
    form.append("file", blob, name);
    const resp = await fetch("/v1/predict?top_k=10&include_input=true",
      { method: "POST", body: form, signal: abort.signal });
    const body = await readJson(resp);
    if (gen !== generation) return; // the pad was cleared: this drawing is gone
    if (!resp.ok) {
      errorEl.textContent = (body && body.error) ||
        `server error ${resp.status}${resp.statusText ? " " + resp.statusText : ""}`;
    } else if (!body) {
      errorEl.textContent = `unexpected reply from the server (status ${resp.status}, not JSON)`;
    } else {
      errorEl.textContent = "";
      show(body);
    }
  } catch (err) {
    if (gen === generation) errorEl.textContent = `cannot reach the server: ${err}`;
  } finally {
    if (gen === generation) result.dataset.forStroke = String(forStroke);
    if (controller === abort) { // the latest request (an upload may have replaced it)
      controller = null;
      inFlight = false;
      if (queued) { queued = false; predictCanvas(); }
    }
  }
}

function show(r) {
  // Abstention (issue 25): no digit, the reason instead; the bars still show the scores.
  const abstained = r.digit === null || r.digit === undefined;
  digitEl.textContent = abstained ? "\u2014" : String(r.digit);
  digitEl.dataset.reason = abstained ? r.reason : "";
  probEl.textContent = abstained
    ? `${r.reason}: ${r.explanation}`
    : `${(100 * r.probability).toFixed(1)}% sure`;
  r.probabilities.forEach((p, d) => {
    const row = bars[d];
    row.classList.toggle("best", d === r.digit);
    row.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    row.querySelector(".value").textContent = `${(100 * p).toFixed(1)}%`;
  });
  if (r.input) {
    const img = seenCtx.createImageData(28, 28);
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const v = Math.round(255 * r.input[y][x]);
        const i = 4 * (28 * y + x);
        img.data[i] = img.data[i + 1] = img.data[i + 2] = v;
        img.data[i + 3] = 255;
      }
    }
    seenCtx.putImageData(img, 0, 0);
  }
}

// -- buttons -----------------------------------------------------------------------------------
document.getElementById("clear").addEventListener("click", clearPad);

document.getElementById("file").addEventListener("change", (ev) => {
  const file = ev.target.files[0];
  if (!file) return;
  clearPad();
  // Show the upload on the pad (scaled to fit), and predict the original file.
  const url = URL.createObjectURL(file);
  const img = new Image();
  img.onload = () => {
    const s = Math.min(pad.width / img.width, pad.height / img.height);
    const w = img.width * s, h = img.height * s;
    ctx.drawImage(img, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
    URL.revokeObjectURL(url);
  };
  img.src = url;
  send(file, file.name, strokes);
  ev.target.value = "";
});

// -- the model's name and test accuracy --------------------------------------------------------
fetch("/v1/model").then((r) => r.json()).then((m) => {
  const acc = m.metrics && m.metrics.test_accuracy;
  const set = m.metrics && m.metrics.dataset === "fashion-mnist" ? "Fashion-MNIST" : "MNIST";
  document.getElementById("model").textContent =
    `model ${m.name} (${m.architecture}, ${m.engine})` +
    (acc ? `, ${(100 * acc).toFixed(2)}% on the ${set} test set` : "");
}).catch(() => {});

clearPad();
